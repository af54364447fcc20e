package authserver

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/mcpgate/mcpgate/internal/netlimit"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/ratelimit"
	"github.com/mcpgate/mcpgate/store"
)

// limiter keeps a token bucket per client address. The map is swept of
// idle entries so that it stays bounded.
type limiter struct {
	mu      sync.Mutex
	perAddr map[string]*limiterEntry
	every   rate.Limit
	burst   int
	now     func() time.Time
	swept   time.Time
}

type limiterEntry struct {
	lim  *rate.Limiter
	seen time.Time
}

func newLimiter(n int, per time.Duration, now func() time.Time) *limiter {
	return &limiter{perAddr: map[string]*limiterEntry{}, every: rate.Every(per / time.Duration(n)), burst: n, now: now}
}

// peerAddr is the address a request is limited by: the connection's
// peer, as a client-supplied X-Forwarded-For is not trusted.
func peerAddr(r *http.Request) string {
	addr, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		addr = r.RemoteAddr
	}
	return addr
}

// clientAddr is the request's client as the per-address limits count it
// (SEC-138): the TCP peer, or, when that is a trusted proxy, the last
// X-Forwarded-For entry that is no trusted proxy. Each proxy appends the
// address it saw, so the entries a client wrote itself come before those
// and are never read; an entry that is no address ends the walk at the
// proxy before it. An IPv6 client counts by its /64 (netlimit.Client).
func (s *Server) clientAddr(r *http.Request) string {
	peer := peerAddr(r)
	client, err := netip.ParseAddr(peer)
	if err != nil {
		return peer
	}
	if s.trustedProxy(client) {
		var hops []string
		for _, v := range r.Header.Values("X-Forwarded-For") {
			hops = append(hops, strings.Split(v, ",")...)
		}
		for i := len(hops) - 1; i >= 0; i-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break
			}
			if client = a; !s.trustedProxy(a) {
				break
			}
		}
	}
	return netlimit.Client(client).String()
}

// trustedProxy reports whether a is one of Options.TrustedProxies.
func (s *Server) trustedProxy(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.opts.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// allow reports whether addr may proceed.
func (l *limiter) allow(addr string) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.entry(addr, now).lim.AllowN(now, 1)
}

// reserve takes one of addr's tokens, if it has one, for an attempt whose
// outcome decides whether it was spent: refund gives it back (a login
// that succeeded). Taken before the attempt, so that attempts sent at
// once cannot all pass a check that none of them has yet spent.
func (l *limiter) reserve(addr string) (refund func(), ok bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.entry(addr, now).lim.ReserveN(now, 1)
	if !r.OK() || r.DelayFrom(now) > 0 {
		r.CancelAt(now)
		return nil, false
	}
	// Cancelled as of its own time: rate.Reservation gives nothing back
	// at a later one, which every attempt's work reaches.
	return func() { r.CancelAt(now) }, true
}

// entry is addr's bucket, made if missing; l.mu is held. Buckets idle for
// 10 minutes are swept once a minute.
func (l *limiter) entry(addr string, now time.Time) *limiterEntry {
	if now.Sub(l.swept) > time.Minute {
		for k, e := range l.perAddr {
			if now.Sub(e.seen) > 10*time.Minute {
				delete(l.perAddr, k)
			}
		}
		l.swept = now
	}
	e, ok := l.perAddr[addr]
	if !ok {
		e = &limiterEntry{lim: rate.NewLimiter(l.every, l.burst)}
		l.perAddr[addr] = e
	}
	e.seen = now
	return e
}

// overLimit answers 429 with Retry-After when client is over a rate limit
// of endpoint (SEC-102), and reports whether it did. It is asked only
// about a client the endpoint knows (at /token, authenticated), so that
// requests naming a client they cannot act for do not spend its tokens,
// and made-up client_ids make no buckets.
func (s *Server) overLimit(w http.ResponseWriter, r *http.Request, endpoint string, client *store.Client) bool {
	if s.opts.EndpointLimit == nil {
		return false
	}
	wait := s.opts.EndpointLimit(endpoint, client.ID)
	if wait <= 0 {
		return false
	}
	secs := strconv.Itoa(ratelimit.RetryAfter(wait))
	s.log.Info("rate limited", "endpoint", endpoint, "client_id", truncate(client.ID, 200), "retry_after", secs)
	w.Header().Set("Retry-After", secs)
	oauth.WriteJSON(w, r, s.log, &oauth.Error{Code: oauth.TemporarilyUnavailable,
		Description: "too many requests from this client; try again in " + secs + " s", Status: http.StatusTooManyRequests})
	return true
}
