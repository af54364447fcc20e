package authserver

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/internal/netlimit"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/ratelimit"
	"github.com/mcpgate/mcpgate/store"
)

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

// trustedProxy reports whether a is one of Options.TrustedProxies. Its
// zone (a link-local peer's interface) is no part of the address a
// network holds.
func (s *Server) trustedProxy(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	for _, p := range s.opts.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// overLimit answers 429 with Retry-After when client is over a rate limit
// of endpoint (SEC-102), and reports whether it did. It is asked only
// about a client the endpoint knows (at /token, authenticated), so that
// requests naming a client they cannot act for do not spend its tokens,
// and made-up client_ids make no buckets. A public client's id is all it
// takes to act for it, and often public (a metadata document's URL): its
// budget is per client address, so that nobody spends its other users'
// (SEC-186).
func (s *Server) overLimit(w http.ResponseWriter, r *http.Request, endpoint string, client *store.Client) bool {
	if s.opts.EndpointLimit == nil {
		return false
	}
	key := client.ID
	if client.Public() {
		key += " " + s.clientAddr(r)
	}
	wait := s.opts.EndpointLimit(endpoint, key)
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

// budgets keeps, per client address, a budget of attempts that refills at
// a steady rate up to its size (a token bucket): an attempt takes one
// before it runs (so that attempts sent at once cannot all pass a check
// none of them has yet spent), and one that turns out not to count gives
// it back (SEC-157). rate.Limiter's reservations would not do: their
// cancellation gives back nothing once the address reserved again since.
type budgets struct {
	mu     sync.Mutex
	per    map[string]*budget
	size   float64
	refill time.Duration // to regain one
	now    func() time.Time
	swept  time.Time
}

type budget struct {
	left float64
	at   time.Time // when left was last brought up to date
}

func newBudgets(n int, per time.Duration, now func() time.Time) *budgets {
	return &budgets{per: map[string]*budget{}, size: float64(n), refill: per / time.Duration(n), now: now}
}

// current brings addr's budget up to now; b.mu is held. Budgets full for
// 10 minutes are swept once a minute.
func (b *budgets) current(addr string, now time.Time) *budget {
	if now.Sub(b.swept) > time.Minute {
		for k, e := range b.per {
			if now.Sub(e.at) > 10*time.Minute {
				delete(b.per, k)
			}
		}
		b.swept = now
	}
	e, ok := b.per[addr]
	if !ok {
		e = &budget{left: b.size, at: now}
		b.per[addr] = e
	}
	if now.After(e.at) {
		e.left = min(b.size, e.left+float64(now.Sub(e.at))/float64(b.refill))
		e.at = now
	}
	return e
}

// take takes one of addr's attempts, if it has one; refund gives it back.
func (b *budgets) take(addr string) (refund func(), ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.current(addr, b.now())
	if e.left < 1 {
		return nil, false
	}
	e.left--
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		e := b.current(addr, b.now())
		e.left = min(b.size, e.left+1)
	}, true
}
