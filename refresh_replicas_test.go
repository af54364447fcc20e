package mcpgate_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/internal/pgtest"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/postgres"
)

// refreshAcross sends n refreshes of the same token, released together,
// request i to replica i mod len(gws).
func refreshAcross(gws []*gw, clientID, rt string, n int) []refreshResult {
	out := make([]refreshResult, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {clientID}}
			resp, err := http.PostForm(gws[i%len(gws)].url+"/token", form)
			if err != nil {
				out[i].err = err
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			out[i].status, out[i].body = resp.StatusCode, string(b)
			out[i].err = json.Unmarshal(b, &out[i].tok)
		})
	}
	close(start)
	wg.Wait()
	return out
}

// pgReplicas starts three gateways, each on a pool of its own, on one
// fresh PostgreSQL database behind one public URL, with grace as their
// refresh grace window and their clocks set to one instant (each gateway's
// test clock starts when it is built). It returns them and a connection to
// the database.
func pgReplicas(t *testing.T, grace time.Duration) ([]*gw, *pgx.Conn) {
	t.Helper()
	dsn := pgtest.Start(t)
	stores := make([]store.Store, 3)
	for i := range stores {
		s, err := postgres.Open(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores[i] = s
	}
	ln, public := loopback(t)
	gws := make([]*gw, len(stores))
	for i, st := range stores {
		var on net.Listener
		if i == 0 {
			on = ln
		}
		gws[i] = newGatewayOn(t, on, func(c *mcpgate.Config) {
			c.Store = st
			c.PublicURL = public
			c.RefreshGrace = grace
		})
	}
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(t.Context()) })
	now := gws[0].clock.Now()
	for _, g := range gws {
		g.clock.Set(now)
	}
	return gws, conn
}

// familyRows is how many refresh tokens the grant of the token hashed hash
// holds in the database, and how many of them are not rotated.
func familyRows(t *testing.T, conn *pgx.Conn, hash []byte) (all, live int) {
	t.Helper()
	err := conn.QueryRow(t.Context(), `SELECT count(*), count(*) FILTER (WHERE rotated_at = 0) FROM refresh_tokens
		WHERE grant_id = (SELECT grant_id FROM refresh_tokens WHERE hash = $1)`, hash).Scan(&all, &live)
	if err != nil {
		t.Fatal(err)
	}
	return all, live
}

// RT-1 across replicas: one refresh token sent n times at once, spread over
// three gateways on one PostgreSQL database. With the grace window (30 s,
// the default) every answer is a 200 with one same pair, so the family
// grows by exactly one token (the database holds the old one, rotated, and
// one successor); its access token works on every replica, its refresh
// token refreshes once more. Once the window has passed, the first token is
// reuse: invalid_grant, and the family ends on every replica (SEC-80).
// With the window off, exactly one of the n wins, every other gets
// invalid_grant, and the reuse the losers are ends the family, the
// winner's tokens included. No answer is ever a 500.
func TestRT1_DuplicateRefreshAcrossReplicas(t *testing.T) {
	for _, n := range []int{3, 12} {
		t.Run(fmt.Sprintf("grace/%d", n), func(t *testing.T) {
			gws, conn := pgReplicas(t, 30*time.Second)
			c, _, tok := gws[0].fullFlow()
			pair := sameSuccess(t, refreshAcross(gws, c.ClientID, tok.RefreshToken, n))
			if pair.RefreshToken == tok.RefreshToken || pair.AccessToken == tok.AccessToken {
				t.Fatalf("RT-1: the refresh answered the old tokens, want new ones")
			}
			if all, live := familyRows(t, conn, tokens.Hash(tok.RefreshToken)); all != 2 || live != 1 {
				t.Fatalf("RT-1: after %d duplicate refreshes the family holds %d refresh tokens, %d not rotated; want 2 and 1", n, all, live)
			}
			now := gws[1].clock.Now()
			old, _, err := gws[1].store.GetRefresh(t.Context(), tokens.Hash(tok.RefreshToken), now)
			if err != nil || old.RotatedAt.IsZero() {
				t.Fatalf("the first refresh token in the store: %+v %v, want it rotated", old, err)
			}
			next, _, err := gws[1].store.GetRefresh(t.Context(), tokens.Hash(pair.RefreshToken), now)
			if err != nil || next.GrantID != old.GrantID || next.Generation != old.Generation+1 || !next.RotatedAt.IsZero() {
				t.Fatalf("the successor in the store: %+v %v, want grant %s, generation %d, not rotated", next, err, old.GrantID, old.Generation+1)
			}
			for i, g := range gws {
				if r, _ := g.mcpInitialize(g.url, pair.AccessToken); r.StatusCode != 200 {
					t.Fatalf("replica %d refuses the access token all got: %d, want 200", i, r.StatusCode)
				}
			}
			resp, after := gws[2].refresh(c.ClientID, pair.RefreshToken, nil)
			if resp.StatusCode != 200 || after.RefreshToken == pair.RefreshToken || after.AccessToken == "" {
				t.Fatalf("the refresh token all got, on another replica: %d %+v, want 200 with a new pair", resp.StatusCode, after)
			}
			for _, g := range gws {
				g.clock.Advance(31 * time.Second)
			}
			revokedAt := time.Now()
			if resp, r := gws[1].refresh(c.ClientID, tok.RefreshToken, nil); resp.StatusCode != 400 || r.Error != "invalid_grant" {
				t.Fatalf("RT-1: the first refresh token after the window: %d %+v, want 400 invalid_grant", resp.StatusCode, r)
			}
			if resp, r := gws[0].refresh(c.ClientID, after.RefreshToken, nil); resp.StatusCode != 400 || r.Error != "invalid_grant" {
				t.Fatalf("RT-1: the family's newest refresh token after a reuse: %d %+v, want 400 invalid_grant", resp.StatusCode, r)
			}
			for _, g := range gws {
				refusedWithin(t, g.url, after.AccessToken, revokedAt)
			}
		})
	}
	for _, n := range []int{3, 12} {
		t.Run(fmt.Sprintf("no grace/%d", n), func(t *testing.T) {
			gws, conn := pgReplicas(t, -1)
			c, _, tok := gws[0].fullFlow()
			results := refreshAcross(gws, c.ClientID, tok.RefreshToken, n)
			answered := time.Now() // the reuse that ends the family came before
			var won []tokenResponse
			for i, r := range results {
				switch {
				case r.err != nil:
					t.Errorf("request %d to replica %d: %v (%d %s)", i, i%3, r.err, r.status, r.body)
				case r.status == 200 && r.tok.AccessToken != "" && r.tok.RefreshToken != "":
					won = append(won, r.tok)
				case r.status != 400 || r.tok.Error != "invalid_grant":
					t.Errorf("RT-1: request %d to replica %d: %d %s, want 200 or 400 invalid_grant", i, i%3, r.status, r.body)
				}
			}
			if len(won) != 1 {
				t.Fatalf("RT-1: %d of %d duplicate refreshes won with the grace window off, want exactly 1", len(won), n)
			}
			if all, live := familyRows(t, conn, tokens.Hash(tok.RefreshToken)); all != 2 || live != 1 {
				t.Fatalf("RT-1: after %d duplicate refreshes the family holds %d refresh tokens, %d not rotated; want 2 and 1", n, all, live)
			}
			for i, g := range gws {
				if resp, r := g.refresh(c.ClientID, won[0].RefreshToken, nil); resp.StatusCode != 400 || r.Error != "invalid_grant" {
					t.Fatalf("RT-1: the winner's refresh token on replica %d after the losers' reuse: %d %+v, want 400 invalid_grant", i, resp.StatusCode, r)
				}
			}
			for _, g := range gws {
				refusedWithin(t, g.url, won[0].AccessToken, answered)
			}
		})
	}
}
