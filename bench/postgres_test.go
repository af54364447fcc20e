package bench

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/postgres"
)

// The harness's own server starts (as the postgres user under root), takes
// mcpgate's migrations and a write, and leaves nothing behind when stopped.
func TestStartPostgres(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv, err := StartPostgres(ctx, PostgresOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			srv.Stop()
		}
	}()
	if !strings.HasPrefix(srv.DSN, "postgres://postgres@127.0.0.1:") || !strings.Contains(srv.Desc, "fsync on") {
		t.Errorf("DSN %q, Desc %q", srv.DSN, srv.Desc)
	}
	st, err := postgres.Open(ctx, srv.DSN)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateClient(ctx, &store.Client{ID: "c1", RedirectURIs: []string{"http://127.0.0.1:1/cb"}, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetClient(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	st.Close()
	stopped = true
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(srv.dir); !os.IsNotExist(err) {
		t.Errorf("%s left behind (%v)", srv.dir, err)
	}
}

func TestPostgresBinariesMissing(t *testing.T) {
	_, err := postgresBinaries(t.TempDir(), t.TempDir()+"/*/bin")
	if err == nil || !strings.Contains(err.Error(), "-dsn") {
		t.Fatalf("err %v, want one that names -dsn", err)
	}
}
