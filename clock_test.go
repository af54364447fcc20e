package mcpgate_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/store"
)

// skewedStore is a store shared by machines (store.Clock) whose server's
// clock is off this machine's by off.
type skewedStore struct {
	store.Store
	off atomic.Int64
}

func (s *skewedStore) Now(context.Context) (time.Time, error) {
	return time.Now().Add(time.Duration(s.off.Load())), nil
}

// SEC-80: a gateway whose machine's clock is more than MaxClockSkew off
// a shared store's does not start, and one whose clock drifts so while it
// runs leaves the traffic (/readyz 503 naming the clock): the replicas
// compare the times they write, and a revocation written by one whose
// clock runs a minute behind is never found by the others' reload. Fails
// before this change: the gateway started, and stayed ready.
func TestSEC80_ClockOffTheStoresRefused(t *testing.T) {
	var st *skewedStore
	skewed := func(c *mcpgate.Config) {
		st = &skewedStore{Store: c.Store}
		st.off.Store(int64(2 * time.Minute))
		c.Store = st
	}
	cfg := withStore(mcpgate.Config{SecretKey: make([]byte, 32)})
	skewed(&cfg)
	if _, err := mcpgate.New(context.Background(), cfg); !errors.Is(err, mcpgate.ErrClockSkew) || !strings.Contains(err.Error(), "NTP") {
		t.Fatalf("New with the store's clock 2 minutes ahead: %v, want ErrClockSkew saying what to do", err)
	}

	g := newGateway(t, skewed, func(c *mcpgate.Config) { st.off.Store(int64(time.Second)) })
	if resp, body := g.get(g.url + "/readyz"); resp.StatusCode != 200 {
		t.Fatalf("/readyz with the clocks 1 s apart: %d %s, want 200", resp.StatusCode, body)
	}
	st.off.Store(int64(-2 * time.Minute))
	g.clock.Advance(2 * time.Second) // past the cached answer
	resp, body := g.get(g.url + "/readyz")
	if resp.StatusCode != 503 || !strings.Contains(string(body), "clock") {
		t.Errorf("/readyz with this machine's clock 2 minutes ahead of the store's: %d %s, want 503 naming the clock", resp.StatusCode, body)
	}
}
