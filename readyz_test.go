package mcpgate_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/memory"
)

// SEC-13: /readyz answers 200 only while the store takes a write; a store
// that cannot write is a 503 with a short reason and none of the store's
// error text. /healthz (liveness) is not changed by it.
func TestSEC13_ReadyzReportsUnwritableStore(t *testing.T) {
	g := newGateway(t, withFaultyStore)
	resp, body := g.get(g.url + "/readyz")
	if resp.StatusCode != 200 || decode[map[string]string](t, body)["status"] != "ok" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("/readyz with a working store: %d %v %s, want 200 {\"status\":\"ok\"}, no-store", resp.StatusCode, resp.Header, body)
	}
	g.faulty().failWrites.Store(true)
	g.clock.Advance(2 * time.Second) // past the cached answer
	resp, body = g.get(g.url + "/readyz")
	got := decode[map[string]string](t, body)
	if resp.StatusCode != 503 || got["status"] != "unavailable" || got["reason"] == "" {
		t.Errorf("/readyz while the store cannot write: %d %s, want 503 with status unavailable and a reason", resp.StatusCode, body)
	}
	if strings.Contains(string(body), "disk") || strings.Contains(string(body), "sqlite") {
		t.Errorf("/readyz shows the store's error: %s", body)
	}
	if !strings.Contains(g.logs.String(), "database or disk is full") {
		t.Errorf("the log lacks the store's error, which the operator needs:\n%s", g.logs.String())
	}
	if resp, _ := g.get(g.url + "/healthz"); resp.StatusCode != 200 {
		t.Errorf("/healthz while only writes fail: %d, want 200 (liveness: a restart does not free a disk)", resp.StatusCode)
	}
	g.faulty().failWrites.Store(false)
	g.clock.Advance(2 * time.Second)
	if resp, body := g.get(g.url + "/readyz"); resp.StatusCode != 200 {
		t.Errorf("/readyz once the store writes again: %d %s, want 200", resp.StatusCode, body)
	}
}

// SEC-97: a gateway that cannot read its signing keys from the store for
// four KeyReloads (a minute at least) says it is not ready, since another
// replica may have replaced the key it signs with; once it reads them
// again it is ready again.
func TestSEC97_ReadyzReportsStaleSigningKeys(t *testing.T) {
	g := newGateway(t, withFaultyStore, func(c *mcpgate.Config) { c.KeyReload = 20 * time.Millisecond })
	if resp, body := g.get(g.url + "/readyz"); resp.StatusCode != 200 {
		t.Fatalf("/readyz with keys just read: %d %s, want 200", resp.StatusCode, body)
	}
	g.faulty().failKeys.Store(true)
	g.clock.Advance(2 * time.Minute)
	resp, body := g.get(g.url + "/readyz")
	got := decode[map[string]string](t, body)
	if resp.StatusCode != 503 || got["status"] != "unavailable" || !strings.Contains(got["reason"], "signing keys") {
		t.Errorf("/readyz after 2m without reading the signing keys: %d %s, want 503 naming the signing keys", resp.StatusCode, body)
	}
	if strings.Contains(string(body), "disk") || strings.Contains(string(body), "sqlite") {
		t.Errorf("/readyz shows the store's error: %s", body)
	}
	if resp, _ := g.get(g.url + "/healthz"); resp.StatusCode != 200 {
		t.Errorf("/healthz while the keys cannot be read: %d, want 200", resp.StatusCode)
	}
	g.faulty().failKeys.Store(false)
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, body := g.get(g.url + "/readyz")
		if resp.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz once the keys can be read again: still %d %s after 15 s, want 200", resp.StatusCode, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stuckRevocations is a store whose reads of the revoked grants hang
// while stuck is set, as on a pooled connection whose server vanished;
// it hides the store's feed, as such a connection silences it too.
type stuckRevocations struct {
	store.Store
	stuck *atomic.Bool
}

func (s stuckRevocations) RevokedGrantsSince(ctx context.Context, since time.Time) ([]string, error) {
	if s.stuck.Load() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return s.Store.RevokedGrantsSince(ctx, since)
}

// SEC-214: a gateway that cannot read the revocations of the others
// (their reload hangs, or fails) leaves the traffic within seconds: it
// would take revoked tokens meanwhile. Fails before: /readyz said ok for
// as long as the read hung.
func TestSEC214_StaleRevocationsNotReady(t *testing.T) {
	stuck := &atomic.Bool{}
	g := newGateway(t, func(c *mcpgateConfig) { c.Store = stuckRevocations{Store: memory.New(), stuck: stuck} })
	if resp, body := g.get(g.url + "/readyz"); resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz: %d %s, want 200", resp.StatusCode, body)
	}
	// until polls /readyz for want, for at most 20 s.
	until := func(want int, what string) {
		t.Helper()
		var status int
		var body []byte
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			var resp *http.Response
			resp, body = g.get(g.url + "/readyz")
			if status = resp.StatusCode; status == want && (want == http.StatusOK || strings.Contains(string(body), "revocations")) {
				return
			}
		}
		t.Fatalf("%s: /readyz still %d %s after 20 s", what, status, body)
	}
	stuck.Store(true)
	until(http.StatusServiceUnavailable, "with the revocations' reads hanging")
	stuck.Store(false)
	until(http.StatusOK, "once they read again")
}
