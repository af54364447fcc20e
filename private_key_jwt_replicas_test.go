package mcpgate_test

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/store"
)

// SEC-129: a private_key_jwt client's assertion is accepted once on every
// replica sharing the store, not once on each. A refresh request copied
// whole (its refresh token and its assertion) and sent to the other
// replica within the grace window is invalid_client; the same refresh with
// a new assertion, the client's own retry, still gets the first answer's
// tokens there (RT-1). An assertion used at one replica's /introspect is
// refused at the other's /revoke. Fails before this change: each replica
// kept its own table, and the copied request got the new tokens.
func TestSEC129_AssertionOnceAcrossReplicas(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			docs := newDocHost(t)
			stA, stB := sharedStores(t, backend)
			gws := newReplicas(t, []store.Store{stA, stB}, withDocHost(docs))
			a, b := gws[0], gws[1]
			c := newPKJClient(t, a, docs)
			ar, code := c.code()
			status, tok, body := c.exchange(ar, code, c.assertion())
			if status != 200 || tok.RefreshToken == "" {
				t.Fatalf("code exchange at replica A: %d %s, want 200 with a refresh token", status, body)
			}

			refresh := c.form(c.assertion(), "grant_type", "refresh_token", "refresh_token", tok.RefreshToken)
			resp, body1 := a.postForm(a.url+"/token", refresh)
			first := decode[tokenResponse](t, body1)
			if resp.StatusCode != 200 || first.AccessToken == "" {
				t.Fatalf("refresh at replica A: %d %s, want 200", resp.StatusCode, body1)
			}
			for name, g := range map[string]*gw{"B": b, "A": a} {
				resp, body := g.postForm(g.url+"/token", refresh)
				if resp.StatusCode != 401 || !strings.Contains(string(body), `"invalid_client"`) || !strings.Contains(string(body), "used before") {
					t.Errorf("the refresh request copied whole, at replica %s: %d %s, want 401 invalid_client, the assertion used before", name, resp.StatusCode, body)
				}
			}
			retry := c.form(c.assertion(), "grant_type", "refresh_token", "refresh_token", tok.RefreshToken)
			resp, body2 := b.postForm(b.url+"/token", retry)
			if again := decode[tokenResponse](t, body2); resp.StatusCode != 200 || again.AccessToken != first.AccessToken {
				t.Fatalf("the client's retry at replica B, with a new assertion, within the grace window: %d %s, want 200 with the first answer's tokens (RT-1)", resp.StatusCode, body2)
			}

			once := c.assertion()
			if resp, body := a.postForm(a.url+"/introspect", c.form(once, "token", first.AccessToken)); resp.StatusCode != 200 {
				t.Fatalf("introspection at replica A: %d %s, want 200", resp.StatusCode, body)
			}
			if resp, body := b.postForm(b.url+"/revoke", c.form(once, "token", first.RefreshToken)); resp.StatusCode != 401 {
				t.Errorf("revocation at replica B with the assertion replica A took: %d %s, want 401", resp.StatusCode, body)
			}
			if r, _ := b.mcpInitialize(b.url, first.AccessToken); r.StatusCode != 200 {
				t.Errorf("the access token after the refused revocation: %d, want 200 (nothing revoked)", r.StatusCode)
			}

			// One assertion sent at once, eight times, over both replicas:
			// the count is atomic, so exactly one is accepted.
			racing := c.form(c.assertion(), "token", first.AccessToken)
			statuses := make([]int, 8)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range statuses {
				g := []*gw{a, b}[i%2]
				wg.Go(func() {
					<-start
					resp, err := http.PostForm(g.url+"/introspect", racing)
					if err != nil {
						t.Error(err)
						return
					}
					resp.Body.Close()
					statuses[i] = resp.StatusCode
				})
			}
			close(start)
			wg.Wait()
			if ok := slices.Index(statuses, 200); ok < 0 || slices.Index(statuses[ok+1:], 200) >= 0 || slices.ContainsFunc(statuses, func(s int) bool { return s != 200 && s != 401 }) {
				t.Errorf("one assertion sent 8 times at once over two replicas: statuses %v, want one 200 and 401 for the rest", statuses)
			}
		})
	}
}

// SEC-129: a store that cannot count an assertion's use refuses the
// request (500 server_error, never the store's error text), since an
// uncounted assertion could be used again; the code stays unused, and the
// client's next request with a new assertion redeems it once the store
// counts again.
func TestSEC129_UncountedAssertionRefused(t *testing.T) {
	docs := newDocHost(t)
	g := newGateway(t, withDocHost(docs), withFaultyStore)
	c := newPKJClient(t, g, docs)
	ar, code := c.code()
	g.faulty().failCount.Store(true)
	status, _, body := c.exchange(ar, code, c.assertion())
	if status != 500 || !strings.Contains(body, `"server_error"`) || strings.Contains(body, "disk") {
		t.Fatalf("code exchange while the store cannot count: %d %s, want 500 server_error without the store's error", status, body)
	}
	g.faulty().failCount.Store(false)
	if status, tok, body := c.exchange(ar, code, c.assertion()); status != 200 || tok.AccessToken == "" {
		t.Fatalf("the same code with a new assertion once the store counts: %d %s, want 200", status, body)
	}
}

// SEC-129: only an assertion that verifies, from a client within its rate
// limits, is counted, since each count is a row in the store: a made-up
// or tampered one writes nothing, nor one over a limit of /token, /revoke
// or /introspect (SEC-102), which an operator may then use to bound what a
// client's flood of its own assertions adds to the store. A counted
// assertion stays refused as long as it could verify, past the minute
// boundaries a count per window would reset at.
func TestSEC129_CountedOnlyWhenVerifiedAndWithinLimits(t *testing.T) {
	docs := newDocHost(t)
	g := newGateway(t, withDocHost(docs), withFaultyStore, func(c *mcpgateConfig) {
		for _, ep := range []string{"token", "revoke", "introspect"} {
			c.RateLimits = append(c.RateLimits, mcpgate.RateLimit{Endpoints: []string{ep}, Per: "client", Rate: mcpgate.Rate{N: 1, Per: time.Hour}})
		}
	})
	c := newPKJClient(t, g, docs)
	counts := func() int64 { return g.faulty().counts.Load() }

	ar, code := c.code()
	before := counts()
	forged := c.assertionWith(newRSAKey(t), jose.RS256, c.kid, nil)
	if status, _, body := c.exchange(ar, code, forged); status != 401 {
		t.Fatalf("an assertion signed by another key: %d %s, want 401", status, body)
	}
	if n := counts() - before; n != 0 {
		t.Errorf("a refused assertion made %d counts in the store, want none", n)
	}
	status, tok, body := c.exchange(ar, code, c.assertion())
	if status != 200 {
		t.Fatalf("code exchange: %d %s, want 200", status, body)
	}
	for _, ep := range []string{"/introspect", "/revoke"} {
		if resp, body := g.postForm(g.url+ep, c.form(c.assertion(), "token", tok.AccessToken)); resp.StatusCode != 200 {
			t.Fatalf("first %s of the hour: %d %s, want 200", ep, resp.StatusCode, body)
		}
	}
	before = counts()
	for _, ep := range []string{"/token", "/introspect", "/revoke"} {
		f := c.form(c.assertion(), "token", tok.AccessToken, "grant_type", "refresh_token", "refresh_token", tok.RefreshToken)
		if resp, body := g.postForm(g.url+ep, f); resp.StatusCode != http.StatusTooManyRequests {
			t.Errorf("second %s of the hour: %d %s, want 429 (SEC-102)", ep, resp.StatusCode, body)
		}
	}
	if n := counts() - before; n != 0 {
		t.Errorf("requests over their limit made %d counts in the store, want none", n)
	}

	// Past a minute's boundary, within the assertion's life: on a gateway
	// without limits, so that only the count can refuse it.
	h := newGateway(t, withDocHost(docs))
	d := newPKJClient(t, h, docs)
	ar, code = d.code()
	if status, tok, body = d.exchange(ar, code, d.assertion()); status != 200 {
		t.Fatalf("code exchange: %d %s, want 200", status, body)
	}
	used := d.assertion()
	if resp, body := h.postForm(h.url+"/introspect", d.form(used, "token", tok.AccessToken)); resp.StatusCode != 200 {
		t.Fatalf("introspection: %d %s, want 200", resp.StatusCode, body)
	}
	h.clock.Advance(2 * time.Minute)
	if resp, body := h.postForm(h.url+"/introspect", d.form(used, "token", tok.AccessToken)); resp.StatusCode != 401 || !strings.Contains(string(body), "used before") {
		t.Errorf("the same assertion 2 minutes later: %d %s, want 401, used before", resp.StatusCode, body)
	}
}
