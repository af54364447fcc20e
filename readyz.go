package mcpgate

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"
)

// readiness remembers the last store write check for a second, so that
// /readyz, which anyone may call, costs at most one committed write a
// second whatever the rate of calls.
type readiness struct {
	mu  sync.Mutex
	at  time.Time
	err error
}

// readyz answers 200 while the store takes a write and the signing keys
// and revocations are fresh, and 503 with a short reason otherwise
// (SEC-13, SEC-97, SEC-214).
// Unlike /healthz, which only needs the store to answer, it is the check
// to route traffic on: a gateway whose store cannot write cannot issue a
// code, a token or a revocation. The store's error goes to the log only.
func (g *Gateway) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	reason := ""
	switch err := g.storeWritable(r.Context()); {
	case errors.Is(err, ErrClockSkew):
		reason = "this machine's clock is off the store's"
	case err != nil:
		reason = "the store cannot take a write"
	case !g.keysFresh():
		reason = "the signing keys could not be read from the store"
	case !g.revocations.fresh():
		reason = "the revocations could not be read from the store"
	default:
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
		return
	}
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write([]byte(`{"status":"unavailable","reason":"` + reason + `"}` + "\n"))
}

// keysFresh reports whether the signing keys were read from the store
// within keysStale (SEC-97). A gateway that cannot read them goes on
// signing with the key it holds, which other replicas, or `mcpgate keys
// rotate`, may have replaced: once three KeyReloads plus five minutes have passed
// after the replacement, the others no longer verify what it signs. So it
// leaves the traffic well before then, at four KeyReloads (one minute at
// least, so that one slow listing is no outage). The reason of each
// failed reading is in the log already.
func (g *Gateway) keysFresh() bool {
	age := g.now().Sub(time.Unix(0, g.keysReadAt.Load()))
	return age < g.keysStale
}

// storeWritable pings the store, at most once a second; callers meanwhile
// share the last answer. The ping does not end with the caller's request,
// so that a client hanging up is never remembered as a failure.
func (g *Gateway) storeWritable(ctx context.Context) error {
	g.ready.mu.Lock()
	defer g.ready.mu.Unlock()
	now := g.now()
	if age := now.Sub(g.ready.at); !g.ready.at.IsZero() && age >= 0 && age < time.Second {
		return g.ready.err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := g.store.Ping(ctx)
	if err != nil {
		g.log.Error("readiness: the store cannot take a write", "err", err.Error())
	} else if err = CheckClock(ctx, g.store); err != nil {
		// A replica whose clock drifted writes times the others misread
		// (a revocation they never reload, SEC-80): out of the traffic.
		g.log.Error("readiness: "+err.Error(), "max_skew", MaxClockSkew)
	}
	g.ready.at, g.ready.err = now, err
	return err
}
