package authserver

import (
	"strconv"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

// SEC-85: an entry answers for clientTTL from the start of its read, not
// a moment longer, nor after the clock is set back; a use recorded in it
// does not prolong it; the cache never holds more than clientCacheSize
// clients, and makes room only from expired entries.
func TestSEC85_ClientCacheBounds(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	cc := newClientCache()
	c := &store.Client{ID: "c1", CreatedAt: t0.Add(-2 * time.Hour)}
	cc.put(c, t0, t0.Add(10*time.Millisecond))
	if got := cc.get("c1", t0.Add(clientTTL-time.Nanosecond)); got != c {
		t.Fatalf("just within clientTTL of the read's start: %v, want the client", got)
	}
	cc.touched(c, t0.Add(time.Millisecond))
	if got := cc.get("c1", t0.Add(time.Millisecond)); got == c || got == nil || !got.LastUsedAt.Equal(t0.Add(time.Millisecond)) || !c.LastUsedAt.IsZero() {
		t.Fatalf("after touched: %+v (the original %+v), want a copy with the use, the original unchanged", got, c)
	}
	if got := cc.get("c1", t0.Add(clientTTL)); got != nil {
		t.Fatalf("clientTTL after the read's start: %v, want it expired", got)
	}
	cc.put(c, t0, t0.Add(clientTTL))
	if len(cc.entries) != 0 {
		t.Fatal("a read that began clientTTL ago was held")
	}
	cc.put(c, t0, t0)
	if got := cc.get("c1", t0.Add(-time.Second)); got != nil {
		t.Fatal("the clock set back: the entry still answers")
	}

	cc = newClientCache()
	for i := range clientCacheSize {
		cc.put(&store.Client{ID: strconv.Itoa(i)}, t0, t0)
	}
	later := t0.Add(clientTTL / 2)
	cc.put(&store.Client{ID: "fresh"}, later, later)
	cc.put(&store.Client{ID: "fresh2"}, later, later)
	if len(cc.entries) != clientCacheSize || cc.get("fresh", later) != nil {
		t.Fatalf("full of live entries: %d held, the new one held: %v; want %d, no", len(cc.entries), cc.get("fresh", later) != nil, clientCacheSize)
	}
	if cc.get("0", later) == nil {
		t.Fatal("a live entry was dropped to make room")
	}
	after := later.Add(clientTTL) // the next sweep: one per clientTTL
	cc.put(&store.Client{ID: "next"}, after, after)
	if len(cc.entries) != 1 || cc.get("next", after) == nil {
		t.Fatalf("full of expired entries: %d held after a put, want only the new one", len(cc.entries))
	}
}
