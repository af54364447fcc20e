package mcpgate_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/internal/pgtest"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/memory"
	"github.com/mcpgate/mcpgate/store/postgres"
)

// refreshSessionGetter is the optional read of a refresh token with its
// grant's upstream session, as the gateway looks for it.
type refreshSessionGetter interface {
	GetRefreshSession(ctx context.Context, hash []byte, now time.Time) (*store.RefreshToken, *store.Grant, *store.UpstreamSession, error)
}

// refreshWatch is a watchedStore that also passes GetRefreshSession on.
type refreshWatch struct{ *watchedStore }

func (s refreshWatch) GetRefreshSession(ctx context.Context, hash []byte, now time.Time) (*store.RefreshToken, *store.Grant, *store.UpstreamSession, error) {
	s.saw("GetRefreshSession")
	return s.inner.(refreshSessionGetter).GetRefreshSession(ctx, hash, now)
}

// A refresh with the upstream recheck on (RT-3, the default) reads the
// store once before it rotates: the token, its grant and the grant's
// upstream session in one read, on the stores that offer it.
func TestRT3_RefreshReadsTheStoreOnce(t *testing.T) {
	for _, backend := range []string{"memory", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			var st store.Store = memory.New()
			if backend == "postgres" {
				pg, err := postgres.Open(t.Context(), pgtest.Start(t))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { pg.Close() })
				st = pg
			}
			ws := &watchedStore{inner: st}
			g := newGateway(t, func(c *mcpgate.Config) { c.Store = refreshWatch{ws} })
			client, _, tok := g.fullFlow()
			ws.armed.Store(true)
			resp, next := g.refresh(client.ClientID, tok.RefreshToken, nil)
			ws.armed.Store(false)
			if resp.StatusCode != 200 || next.AccessToken == "" {
				t.Fatalf("refresh: %d %+v, want 200", resp.StatusCode, next)
			}
			if seen := ws.seen(); !slices.Equal(seen, []string{"GetRefreshSession", "RotateRefresh"}) {
				t.Errorf("a refresh called %v, want [GetRefreshSession RotateRefresh]", seen)
			}
		})
	}
}
