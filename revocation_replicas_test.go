package mcpgate_test

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/internal/pgtest"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/postgres"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

// revocationBound is SEC-80's: a grant revoked through one gateway is
// refused by every other on the same store within it.
const revocationBound = time.Second

// reloadOnly hides a store's RevocationFeed: its gateway learns of other
// gateways' revocations from the periodic reload alone, as when its
// listener is down.
type reloadOnly struct{ store.Store }

// notifyOnly is a PostgreSQL store whose periodic reload finds nothing: its
// gateway learns of other gateways' revocations from NOTIFY alone.
type notifyOnly struct{ *postgres.Store }

func (notifyOnly) RevokedGrantsSince(context.Context, time.Time) ([]string, error) { return nil, nil }

// replicaStores opens n stores on one database, each with a pool of its
// own as n processes would have, in the way each case names.
func replicaStores(t *testing.T, backend string, n int) []store.Store {
	t.Helper()
	var dsn, path string
	if strings.HasPrefix(backend, "postgres") {
		dsn = pgtest.Start(t)
	} else {
		path = filepath.Join(t.TempDir(), "mcpgate.db")
	}
	stores := make([]store.Store, n)
	for i := range stores {
		var st store.Store
		if dsn != "" {
			s, err := postgres.Open(t.Context(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			st = s
			switch backend {
			case "postgres, reload only":
				st = reloadOnly{s}
			case "postgres, NOTIFY only":
				st = notifyOnly{s}
			}
		} else {
			s, err := sqlite.Open(t.Context(), path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			st = s
		}
		stores[i] = st
	}
	return stores
}

// newReplicas starts a gateway on each store, all behind one public URL
// (the first gateway's, where the flows run), as behind a load balancer,
// each with opts too.
func newReplicas(t *testing.T, stores []store.Store, opts ...gwOption) []*gw {
	t.Helper()
	ln, public := loopback(t)
	gws := make([]*gw, len(stores))
	for i, st := range stores {
		var on net.Listener
		if i == 0 {
			on = ln
		}
		gws[i] = newGatewayOn(t, on, append(opts, func(c *mcpgate.Config) {
			c.Store = st
			c.PublicURL = public
		})...)
	}
	return gws
}

// guardAnswer is the status of an MCP request with token at base: 401 when
// the token check refuses it; anything else (the backend's answer to a
// request outside any session) when it passes.
func guardAnswer(t *testing.T, base, token string) int {
	req, _ := http.NewRequest("POST", base+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("MCP request to %s: %v", base, err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// refusedWithin polls base with token until its token check refuses it and
// returns how long after revokedAt the refusing request was sent (a slow
// answer is not counted against the bound), or fails the test when none is
// refused within the bound.
func refusedWithin(t *testing.T, base, token string, revokedAt time.Time) time.Duration {
	t.Helper()
	for {
		sent := time.Now()
		if sent.Sub(revokedAt) > revocationBound {
			t.Errorf("SEC-80: %s still takes the access token of a grant revoked %v ago, want refused within %v",
				base, sent.Sub(revokedAt).Round(time.Millisecond), revocationBound)
			return sent.Sub(revokedAt)
		}
		if guardAnswer(t, base, token) == http.StatusUnauthorized {
			return sent.Sub(revokedAt)
		}
		time.Sleep(5 * time.Millisecond) // the poll's pace, not a wait for a result
	}
}

// SEC-80: a grant revoked through one gateway has its access tokens refused
// by the other gateways on the same store within a second: on PostgreSQL
// (NOTIFY and the reload), by NOTIFY alone, by the reload alone (a gateway
// whose listener is down), and on one SQLite file. Every way a grant ends
// through a gateway is one of two store writes: RevokeGrant (/revoke here;
// also PKCE-3's replay, access rules and RT-3's upstream end at a refresh,
// Gateway.RevokeGrant) and the family RotateRefresh revokes on reuse
// (RT-1). The delays are logged.
func TestSEC80_RevokedOnOneGatewayRefusedByTheOthers(t *testing.T) {
	for _, backend := range []string{"postgres", "postgres, NOTIFY only", "postgres, reload only", "sqlite"} {
		t.Run(backend, func(t *testing.T) {
			gws := newReplicas(t, replicaStores(t, backend, 3))
			c, others := gws[0], gws[1:]
			for _, how := range []string{"/revoke", "refresh token reuse"} {
				client, _, tok := c.fullFlow()
				for _, o := range others {
					if got := guardAnswer(t, o.url, tok.AccessToken); got == http.StatusUnauthorized {
						t.Fatalf("%s: another gateway refuses a live grant's access token: %d", how, got)
					}
				}
				revokedAt := time.Now() // the bound runs from the revoking request
				switch how {
				case "/revoke":
					c.revokeToken(client.ClientID, tok.AccessToken, "access_token")
				case "refresh token reuse":
					if resp, _ := c.refresh(client.ClientID, tok.RefreshToken, nil); resp.StatusCode != 200 {
						t.Fatalf("refresh: %d, want 200", resp.StatusCode)
					}
					c.clock.Advance(time.Minute) // past the grace window
					if resp, r := c.refresh(client.ClientID, tok.RefreshToken, nil); resp.StatusCode != 400 || r.Error != "invalid_grant" {
						t.Fatalf("RT-1: a reused refresh token: %d %q, want 400 invalid_grant", resp.StatusCode, r.Error)
					}
				}
				var wg sync.WaitGroup
				delays := make([]time.Duration, len(others))
				for i, o := range others {
					wg.Go(func() { delays[i] = refusedWithin(t, o.url, tok.AccessToken, revokedAt) })
				}
				wg.Wait()
				t.Logf("%s, %s: refused by the other gateways after %v", backend, how, delays)
			}
		})
	}
}

// listeners returns the pids of the connections listening for revocations
// on the database of conn.
func listeners(t *testing.T, conn *pgx.Conn) []int32 {
	t.Helper()
	rows, _ := conn.Query(t.Context(), `SELECT pid FROM pg_stat_activity
		WHERE datname = current_database() AND query = 'LISTEN mcpgate_revoked' ORDER BY pid`)
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatal(err)
	}
	return pids
}

// waitListeners polls until n connections other than those in old listen.
func waitListeners(t *testing.T, conn *pgx.Conn, n int, old []int32) []int32 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		pids := listeners(t, conn)
		if len(pids) == n && !slices.ContainsFunc(pids, func(p int32) bool { return slices.Contains(old, p) }) {
			return pids
		}
		if time.Now().After(deadline) {
			t.Fatalf("listening connections %v after 30 s, want %d new ones (old: %v)", pids, n, old)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// SEC-80: a gateway whose listening connection the database ends listens
// again on a new one, by itself: with the reload blinded, a revocation
// made after that reaches it by NOTIFY within the bound. The failure is
// logged as a warning.
func TestSEC80_ListenerReconnects(t *testing.T) {
	dsn := pgtest.Start(t)
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	var stores []store.Store
	for range 2 {
		s, err := postgres.Open(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores = append(stores, notifyOnly{s})
	}
	gws := newReplicas(t, stores)
	old := waitListeners(t, conn, 2, nil)
	if _, err := conn.Exec(t.Context(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = ANY($1)`, old); err != nil {
		t.Fatal(err)
	}
	waitListeners(t, conn, 2, old)

	client, _, tok := gws[0].fullFlow()
	if got := guardAnswer(t, gws[1].url, tok.AccessToken); got == http.StatusUnauthorized {
		t.Fatalf("the other gateway refuses a live grant's access token: %d", got)
	}
	revokedAt := time.Now()
	gws[0].revokeToken(client.ClientID, tok.AccessToken, "access_token")
	t.Logf("after its listener was ended, refused by the other gateway after %v", refusedWithin(t, gws[1].url, tok.AccessToken, revokedAt))
	for _, g := range gws {
		if !strings.Contains(g.logs.String(), "listening for other gateways' revocations failed") {
			t.Errorf("a gateway's log says nothing of its listener's failure:\n%s", g.logs.String())
		}
	}
}
