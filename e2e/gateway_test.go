package e2e

import (
	"bytes"
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/store/sqlite"
	"github.com/mcpgate/mcpgate/upstream"
	"github.com/mcpgate/mcpgate/upstream/local"
)

// startGateway serves the gateway built from cfg on a loopback test
// server, with local accounts for alice and the other name/password pairs
// given. Unset, the store is SQLite in a temporary directory and the secret
// key a fixed one. The server, the gateway's backends and the store are
// closed when the test ends.
func startGateway(t *testing.T, ctx context.Context, cfg mcpgate.Config, users ...[2]string) *httptest.Server {
	t.Helper()
	if cfg.Store == nil {
		st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "mcpgate.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		cfg.Store = st
	}
	if cfg.SecretKey == nil {
		cfg.SecretKey = bytes.Repeat([]byte{1}, 32)
	}
	lc := local.New(cfg.Store, local.Options{})
	for _, u := range append([][2]string{{user, password}}, users...) {
		if err := lc.SetUser(ctx, u[0], u[1]); err != nil {
			t.Fatal(err)
		}
	}
	cfg.Connectors = append(cfg.Connectors, upstream.Connector(lc))
	g, err := mcpgate.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.Close(cctx); err != nil {
			t.Errorf("closing the gateway: %v", err)
		}
	})
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return srv
}
