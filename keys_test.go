package mcpgate_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/internal/pgtest"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/memory"
	"github.com/mcpgate/mcpgate/store/postgres"
	"github.com/mcpgate/mcpgate/store/sqlite"
	"github.com/mcpgate/mcpgate/upstream"
	"github.com/mcpgate/mcpgate/upstream/local"
)

// harnessSecret is the secret key newGateway gives every gateway.
var harnessSecret = bytes.Repeat([]byte{7}, 32)

// sharedStore opens a store that several gateways share: a SQLite file or
// a PostgreSQL database.
func sharedStore(t *testing.T, backend string) store.Store {
	t.Helper()
	var (
		st  store.Store
		err error
	)
	switch backend {
	case "sqlite":
		st, err = sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "mcpgate.db"))
	case "postgres":
		st, err = postgres.Open(t.Context(), pgtest.Start(t))
	default:
		st = memory.New()
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// replicas starts n gateways on st with one public URL (the first's), as
// behind a load balancer; reload[i] is replica i's KeyReload.
func replicas(t *testing.T, st store.Store, reload []time.Duration, opts ...gwOption) []*gw {
	t.Helper()
	ln, public := loopback(t)
	out := make([]*gw, len(reload))
	for i := range reload {
		o := append([]gwOption{func(c *mcpgate.Config) {
			c.Store, c.PublicURL, c.KeyReload = st, public, reload[i]
		}}, opts...)
		if i == 0 {
			out[i] = newGatewayOn(t, ln, o...)
		} else {
			out[i] = newGateway(t, o...)
		}
		out[i].url = public // flows and token requests name the one issuer
		out[i].t.Cleanup(func() { out[i].gw.Close(context.Background()) })
	}
	return out
}

// kidOf is the kid in a JWS's header.
func kidOf(t *testing.T, tok string) string {
	t.Helper()
	head, _, _ := strings.Cut(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}

// jwksKids lists the kids that replica g publishes, asked at its own
// address.
func jwksKids(g *gw, addr string) []string {
	g.t.Helper()
	resp, body := g.get(addr + "/jwks.json")
	if resp.StatusCode != 200 {
		g.t.Fatalf("jwks: %d", resp.StatusCode)
	}
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		g.t.Fatal(err)
	}
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.Kid)
	}
	return out
}

func hasKid(kids []string, kid string) bool {
	for _, k := range kids {
		if k == kid {
			return true
		}
	}
	return false
}

// eventually polls cond every 20 ms until it holds or d has passed.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// mcpOK asks replica g's /mcp (at its own address) with tok and fails
// unless it answers 200.
func mcpOK(g *gw, addr, tok, what string) {
	g.t.Helper()
	if resp, body := g.mcpInitialize(addr, tok); resp.StatusCode != 200 {
		g.t.Fatalf("%s: /mcp answered %d %s, want 200", what, resp.StatusCode, body)
	}
}

// A rotation reaches every replica on one store: each publishes the new
// key within its KeyReload and signs with it only after two (SEC-179), so
// that no token of it exists before every replica's JWKS holds it; the
// replica that has not reloaded yet verifies a token of the new key at
// once (the unknown kid makes it read the keys), and signs with the new
// key from then on. Tokens of the old key keep working everywhere.
func TestKeyRotationAcrossReplicas(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			st := sharedStore(t, backend)
			// A and C reload every 100 ms; B only on an unknown kid. The
			// old key's tokens live through the clocks' advance below.
			rs := replicas(t, st, []time.Duration{100 * time.Millisecond, time.Hour, 100 * time.Millisecond},
				func(c *mcpgate.Config) { c.AccessTokenTTL = 24 * time.Hour })
			a, b, c := rs[0], rs[1], rs[2]
			addrA, addrB, addrC := a.srv.URL, b.srv.URL, c.srv.URL

			client, _, tok := a.fullFlow()
			oldKid := kidOf(t, tok.AccessToken)
			mcpOK(b, addrB, tok.AccessToken, "B, the first token")

			kid, err := mcpgate.RotateSigningKey(t.Context(), st, harnessSecret, a.clock.Now())
			if err != nil {
				t.Fatal(err)
			}
			if kid == oldKid {
				t.Fatalf("rotation kept kid %s", kid)
			}
			if hasKid(jwksKids(b, addrB), kid) {
				t.Fatal("B knew the new key before any reload")
			}
			// A and C publish it within their KeyReload, and do not sign
			// with it yet: B, which publishes it only at a token of it,
			// stands for a replica that has not reloaded yet.
			eventually(t, 10*time.Second, "A and C publishing the new key", func() bool {
				return hasKid(jwksKids(a, addrA), kid) && hasKid(jwksKids(c, addrC), kid)
			})
			rt := tok.RefreshToken
			for _, g := range []*gw{a, c} {
				resp, next := g.on(t).refreshAt(g.srv.URL, client.ClientID, rt)
				if resp != 200 || kidOf(t, next.AccessToken) != oldKid {
					t.Fatalf("refresh within the lead: %d, kid %s; want the old key %s", resp, kidOf(t, next.AccessToken), oldKid)
				}
				rt = next.RefreshToken
			}
			// Past the lead (B's is two hours), A signs with the new key
			// within its KeyReload.
			for _, g := range rs {
				g.clock.Advance(3 * time.Hour)
			}
			var fresh tokenResponse
			eventually(t, 10*time.Second, "A signing with the new key", func() bool {
				resp, next := a.on(t).refreshAt(addrA, client.ClientID, rt)
				if resp != 200 {
					t.Fatalf("refresh at A: %d %+v", resp, next)
				}
				rt, fresh = next.RefreshToken, next
				return kidOf(t, next.AccessToken) == kid
			})
			// B verifies it at once, and then signs with it too.
			mcpOK(b, addrB, fresh.AccessToken, "B, a token of the new key")
			if !hasKid(jwksKids(b, addrB), kid) {
				t.Fatal("B does not publish the new key after verifying a token of it")
			}
			resp, fromB := b.refreshAt(addrB, client.ClientID, rt)
			if resp != 200 || kidOf(t, fromB.AccessToken) != kid {
				t.Fatalf("refresh at B: %d, kid %s; want 200 and the new key %s", resp, kidOf(t, fromB.AccessToken), kid)
			}
			mcpOK(c, addrC, fromB.AccessToken, "C, B's token")
			// The old key's token works everywhere until it expires.
			for i, g := range rs {
				mcpOK(g, g.srv.URL, tok.AccessToken, "the old key's token at replica "+string(rune('A'+i)))
				if kids := jwksKids(g, g.srv.URL); !hasKid(kids, oldKid) || !hasKid(kids, kid) {
					t.Fatalf("replica %c publishes %v, want both %s and %s", 'A'+i, kids, oldKid, kid)
				}
			}
		})
	}
}

// refreshAt refreshes at addr and returns the status and the answer.
func (g *gw) refreshAt(addr, clientID, rt string) (int, tokenResponse) {
	g.t.Helper()
	saved := g.url
	g.url = addr
	resp, tok := g.refresh(clientID, rt, nil)
	g.url = saved
	return resp.StatusCode, tok
}

// A replaced key verifies the tokens it signed until they expire, and
// leaves the JWKS once the last of them has: AccessTokenTTL + the new
// key's lead (two KeyReloads + 80 s) + a KeyReload + 5 minutes after the
// new key was made.
func TestReplacedKeyLeavesJWKSAfterItsTokensExpire(t *testing.T) {
	const ttl, reload = 10 * time.Minute, 50 * time.Millisecond
	g := newGateway(t, func(c *mcpgate.Config) { c.AccessTokenTTL, c.KeyReload = ttl, reload })
	t.Cleanup(func() { g.gw.Close(context.Background()) })
	client, _, tok := g.fullFlow()
	oldKid := kidOf(t, tok.AccessToken)
	rotatedAt := g.clock.Now()
	kid, err := mcpgate.RotateSigningKey(t.Context(), g.store, harnessSecret, rotatedAt)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the new key published", func() bool { return hasKid(jwksKids(g, g.url), kid) })
	g.clock.Advance(ttl - time.Minute)
	mcpOK(g, g.url, tok.AccessToken, "the old key's token before it expires")
	rt := tok.RefreshToken
	eventually(t, 10*time.Second, "the new key signing, past its lead", func() bool {
		resp, next := g.refresh(client.ClientID, rt, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("refresh: %d %+v", resp.StatusCode, next)
		}
		rt = next.RefreshToken
		return kidOf(t, next.AccessToken) == kid
	})
	// Past the old token's life, but not yet past the margin.
	g.clock.Advance(2 * time.Minute)
	time.Sleep(5 * reload) // several reloads at this time
	if !hasKid(jwksKids(g, g.url), oldKid) {
		t.Fatal("the old key left the JWKS before the margin after its last token ran out")
	}
	g.clock.Advance(7 * time.Minute) // past the lead's 80 s and the 5 minutes
	eventually(t, 10*time.Second, "the old key leaving the JWKS", func() bool {
		kids := jwksKids(g, g.url)
		return !hasKid(kids, oldKid) && hasKid(kids, kid)
	})
}

// Under a steady load of token refreshes and MCP calls spread over two
// replicas, two rotations go by and no request fails: every token minted
// on one replica across the switch is accepted by the other.
func TestKeyRotationUnderLoad(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) { testKeyRotationUnderLoad(t, sharedStore(t, backend)) })
	}
}

func testKeyRotationUnderLoad(t *testing.T, st store.Store) {
	rs := replicas(t, st, []time.Duration{100 * time.Millisecond, 300 * time.Millisecond})
	const workers = 4
	type worker struct {
		client string
		rt     string
	}
	ws := make([]worker, workers)
	for i := range ws {
		c, _, tok := rs[0].fullFlow()
		ws[i] = worker{c.ClientID, tok.RefreshToken}
	}
	var (
		stop     atomic.Bool
		requests atomic.Int64
		kidsSeen sync.Map
		failures = make(chan string, workers)
		wg       sync.WaitGroup
	)
	for i := range ws {
		wg.Go(func() {
			for n := 0; !stop.Load(); n++ {
				from, to := rs[n%2], rs[(n+1)%2]
				code, tok := from.on(t).refreshAt(from.srv.URL, ws[i].client, ws[i].rt)
				if code != 200 {
					failures <- "refresh: " + tok.Error
					return
				}
				ws[i].rt = tok.RefreshToken
				kidsSeen.Store(kidOf(t, tok.AccessToken), true)
				resp, body := to.on(t).mcpInitialize(to.srv.URL, tok.AccessToken)
				requests.Add(2)
				if resp.StatusCode != 200 {
					failures <- "mcp: " + string(body)
					return
				}
			}
		})
	}
	var kids []string
	for range 2 {
		time.Sleep(300 * time.Millisecond) // some load before each rotation
		kid, err := mcpgate.RotateSigningKey(t.Context(), st, harnessSecret, rs[0].clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		kids = append(kids, kid)
		time.Sleep(700 * time.Millisecond) // both replicas publish it, neither signs with it
		if _, ok := kidsSeen.Load(kid); ok {
			stop.Store(true)
			wg.Wait()
			t.Fatalf("a token of the new key %s before its lead had passed", kid)
		}
		for _, g := range rs {
			g.clock.Advance(2 * time.Minute) // past the lead: two KeyReloads, 20 s of clocks, the JWKS's minute
		}
		eventually(t, 10*time.Second, "a token of the new key", func() bool { _, ok := kidsSeen.Load(kid); return ok || len(failures) > 0 })
	}
	time.Sleep(300 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Errorf("a request failed across the rotation: %s", f)
	}
	t.Logf("%d requests, keys %v", requests.Load(), kids)
}

// A replica given another secret key than the store's refuses to start,
// with a message that says what to do, whether the store holds keys
// already or the replicas start together on a new store; the right key
// still starts.
func TestSecretKeyMismatchRefusesToStart(t *testing.T) {
	other := bytes.Repeat([]byte{8}, 32)
	start := func(st store.Store, key []byte) error {
		gw, err := mcpgate.New(context.Background(), mcpgate.Config{Store: st, SecretKey: key,
			Connectors: []upstream.Connector{local.New(st, local.Options{})}})
		if err == nil {
			gw.Close(context.Background())
		}
		return err
	}
	wantRefused := func(err error) {
		t.Helper()
		if !errors.Is(err, mcpgate.ErrSecretKeyMismatch) || !strings.Contains(err.Error(), "--secret-key-file") {
			t.Fatalf("err = %v, want ErrSecretKeyMismatch naming --secret-key-file", err)
		}
	}
	for _, backend := range []string{"memory", "sqlite"} {
		t.Run(backend+"/keys made", func(t *testing.T) {
			st := sharedStore(t, backend)
			if err := start(st, harnessSecret); err != nil {
				t.Fatal(err)
			}
			wantRefused(start(st, other))
			if _, err := mcpgate.RotateSigningKey(t.Context(), st, other, time.Now()); !errors.Is(err, mcpgate.ErrSecretKeyMismatch) {
				t.Fatalf("rotation with another key: %v, want ErrSecretKeyMismatch", err)
			}
			if err := start(st, harnessSecret); err != nil {
				t.Fatalf("the store's own key after a refusal: %v", err)
			}
		})
		t.Run(backend+"/together on a new store", func(t *testing.T) {
			st := sharedStore(t, backend)
			errs := make([]error, 2)
			var wg sync.WaitGroup
			for i, key := range [][]byte{harnessSecret, other} {
				wg.Go(func() { errs[i] = start(st, key) })
			}
			wg.Wait()
			winner := 0
			switch {
			case errs[0] == nil && errs[1] != nil:
				wantRefused(errs[1])
			case errs[1] == nil && errs[0] != nil:
				wantRefused(errs[0])
				winner = 1
			default:
				t.Fatalf("errors %v and %v: want exactly one replica started", errs[0], errs[1])
			}
			if err := start(st, [][]byte{harnessSecret, other}[winner]); err != nil {
				t.Fatalf("the winner's key again: %v", err)
			}
		})
	}
}

// The key rotates by itself once it is KeyRotation old; of two replicas
// that find it due at the same moment one makes the new key, and both sign
// with it.
func TestAutomaticKeyRotationOnce(t *testing.T) {
	st := sharedStore(t, "sqlite")
	rs := replicas(t, st, []time.Duration{50 * time.Millisecond, 50 * time.Millisecond},
		func(c *mcpgate.Config) { c.KeyRotation = time.Hour })
	before, err := st.ListSigningKeys(t.Context())
	if err != nil || len(before) != 1 {
		t.Fatalf("%d keys, %v; want 1", len(before), err)
	}
	oldKid := before[0].ID
	clients, rts := make([]string, len(rs)), make([]string, len(rs))
	for i, g := range rs {
		c, _, tok := g.fullFlow()
		clients[i], rts[i] = c.ClientID, tok.RefreshToken
	}
	for _, g := range rs {
		g.clock.Advance(time.Hour)
	}
	eventually(t, 10*time.Second, "the key's successor made", func() bool {
		keys, err := st.ListSigningKeys(t.Context())
		return err == nil && len(keys) > 1
	})
	for _, g := range rs {
		g.clock.Advance(2 * time.Minute) // past its lead
	}
	kids := make([]string, len(rs))
	for i, g := range rs {
		eventually(t, 10*time.Second, "a replica signing with a new key", func() bool {
			code, tok := g.on(t).refreshAt(g.srv.URL, clients[i], rts[i])
			if code != 200 {
				t.Fatalf("refresh at replica %d: %d %s", i, code, tok.Error)
			}
			rts[i], kids[i] = tok.RefreshToken, kidOf(t, tok.AccessToken)
			return kids[i] != oldKid
		})
	}
	after, err := st.ListSigningKeys(t.Context())
	if err != nil || len(after) != 2 {
		t.Fatalf("%d keys after both replicas found the key due, want 2: one rotation", len(after))
	}
	for i := range rs {
		if kids[i] != after[1].ID {
			t.Fatalf("replica %d signs with %s, want the one new key %s", i, kids[i], after[1].ID)
		}
	}
}

// SEC-179: a new key signs only once a JWKS fetched just before it was
// published has gone stale (its max-age), with the clock skew replicas
// may have: a backend using that copy never meets the new kid. Fails
// before: the JWKS could be used 5 minutes, and the new key signed after
// two KeyReloads.
func TestSEC179_NewKeySignsOnceFetchedJWKSAreStale(t *testing.T) {
	const reload = 50 * time.Millisecond
	g := newGateway(t, func(c *mcpgate.Config) { c.KeyReload = reload })
	t.Cleanup(func() { g.gw.Close(context.Background()) })
	client, _, tok := g.fullFlow()
	resp, _ := g.get(g.url + "/jwks.json")
	_, maxAge, _ := strings.Cut(resp.Header.Get("Cache-Control"), "max-age=")
	secs, err := strconv.Atoi(maxAge)
	if err != nil {
		t.Fatalf("Cache-Control %q of the JWKS, want a max-age", resp.Header.Get("Cache-Control"))
	}
	fetched := g.clock.Now()
	kid, err := mcpgate.RotateSigningKey(t.Context(), g.store, harnessSecret, fetched)
	if err != nil {
		t.Fatal(err)
	}
	rt := tok.RefreshToken
	for {
		time.Sleep(3 * reload) // the gateway reads the keys at this time
		resp, next := g.refresh(client.ClientID, rt, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("refresh: %d %+v", resp.StatusCode, next)
		}
		rt = next.RefreshToken
		if kidOf(t, next.AccessToken) == kid {
			break
		}
		if g.clock.Now().Sub(fetched) > 10*time.Minute {
			t.Fatal("the new key does not sign 10 minutes after it was made")
		}
		g.clock.Advance(5 * time.Second)
	}
	if age, stale := g.clock.Now().Sub(fetched), time.Duration(secs)*time.Second+2*mcpgate.MaxClockSkew; age < stale {
		t.Fatalf("the new key signs %v after a JWKS without it was fetched, which may be used %d s (and clocks differ up to %v)", age, secs, 2*mcpgate.MaxClockSkew)
	}
}
