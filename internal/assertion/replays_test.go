package assertion

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

func useOnce(t *testing.T, r *Replays, client, jti string, life time.Duration) error {
	t.Helper()
	return r.Use(client, &Verified{ID: jti, Expiry: t0.Add(life)}, t0)
}

// SEC-128: one client that fills the table (anyone may publish a document
// and sign as many assertions as they like) makes room out of its own
// assertions: another client is still accepted, and its assertion is still
// refused when replayed, while the table stays within its bound. Fails
// before this change: the other client got ErrReplaysFull.
func TestSEC128_ReplaysFullOfOneClient(t *testing.T) {
	const max = 10
	r := NewReplays(max)
	flood := func(from, n int) {
		t.Helper()
		for i := range n {
			if err := useOnce(t, r, "https://flood.example/c.json", fmt.Sprint(from+i), 10*time.Minute); err != nil {
				t.Fatalf("assertion %d of the flooding client: %v, want it accepted", from+i, err)
			}
		}
	}
	flood(0, max)
	const chat = "https://chatgpt.example/client.json"
	if err := useOnce(t, r, chat, "c1", 5*time.Minute); err != nil {
		t.Fatalf("another client's assertion while one client fills the table: %v, want it accepted", err)
	}
	flood(max, 3*max)
	if err := useOnce(t, r, chat, "c1", 5*time.Minute); !errors.Is(err, ErrReplayed) {
		t.Fatalf("the other client's assertion replayed after the flood: %v, want ErrReplayed: a flood evicts only its own", err)
	}
	if err := useOnce(t, r, "https://flood.example/c.json", fmt.Sprint(4*max-1), 10*time.Minute); !errors.Is(err, ErrReplayed) {
		t.Fatalf("the flooding client's last assertion replayed: %v, want ErrReplayed", err)
	}
	if n := len(r.seen); n > max {
		t.Fatalf("the table holds %d assertions, want at most %d", n, max)
	}
}

// SEC-128: the table keeps a digest of each client_id and jti, not the
// strings: a client_id may be 2 KB and a jti 256 bytes, and 100,000 of
// those would hold 230 MB. Fails before this change: 1,000 assertions of
// such clients kept over 2 MB.
func TestSEC128_ReplaysHoldDigests(t *testing.T) {
	r := NewReplays(100_000)
	long := "https://c.example/" + strings.Repeat("p", 2000)
	before := liveHeap()
	for i := range 1000 {
		client := fmt.Sprintf("%s/%d", long, i)
		jti := fmt.Sprintf("%0256d", i)
		if err := useOnce(t, r, client, jti, 10*time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	held := int64(liveHeap()) - int64(before)
	runtime.KeepAlive(r)
	if held > 1<<20 {
		t.Fatalf("1,000 remembered assertions hold %d bytes, want under 1 MiB: the strings are kept, not digests", held)
	}
}

// check verifies what Replays relies on: the bound, each client's count
// of the live entries of its queue, and the heap of clients.
func (r *Replays) check(t *testing.T) {
	t.Helper()
	if len(r.seen) > r.max {
		t.Fatalf("%d assertions held, want at most %d", len(r.seen), r.max)
	}
	total := 0
	for c, h := range r.clients {
		live := 0
		for _, e := range h.queue {
			if until, ok := r.seen[e.key]; ok && until == e.until {
				live++
			}
		}
		if h.client != c || h.live != live || live == 0 || r.byMost[h.index] != h {
			t.Fatalf("client holds %d live assertions, counts %d (index %d)", live, h.live, h.index)
		}
		total += live
	}
	if total != len(r.seen) || len(r.byMost) != len(r.clients) {
		t.Fatalf("clients hold %d assertions of %d, heap of %d for %d clients", total, len(r.seen), len(r.byMost), len(r.clients))
	}
	for i := 1; i < len(r.byMost); i++ {
		if r.byMost[(i-1)/2].live < r.byMost[i].live {
			t.Fatalf("heap out of order at %d", i)
		}
	}
}

// SEC-128: under a mix of clients, lifetimes, jti values used again and
// time going by, the table stays within its bound and consistent, and a
// full table takes an assertion only from a client that holds the most.
func TestSEC128_ReplaysStayConsistent(t *testing.T) {
	r := NewReplays(50)
	now := t0
	evictions, replays := 0, 0
	for i := range 5000 {
		client := fmt.Sprintf("https://c%d.example/c.json", i%7*(i%3))
		jti := fmt.Sprint(i % 40)
		life := time.Duration(1+i%11) * time.Minute
		counts := map[digest]int{}
		most := 0
		for c, h := range r.clients {
			counts[c] = h.live
			most = max(most, h.live)
		}
		full := len(r.seen) >= r.max
		err := r.Use(client, &Verified{ID: jti, Expiry: now.Add(life)}, now)
		if err != nil && !errors.Is(err, ErrReplayed) {
			t.Fatalf("Use: %v", err)
		}
		r.check(t)
		if errors.Is(err, ErrReplayed) {
			replays++
		}
		if full && err == nil && now.Sub(r.swept) > 0 {
			evictions++
			// No sweep ran: one assertion went, from a client holding the most.
			for c, n := range counts {
				if h := r.clients[c]; h == nil && n < most || h != nil && h.live < n && n < most {
					t.Fatalf("step %d: a client holding %d, not the most (%d), lost an assertion", i, n, most)
				}
			}
		}
		now = now.Add(time.Duration(i%5) * 100 * time.Millisecond)
	}
	if evictions < 100 || replays < 100 {
		t.Fatalf("%d evictions and %d replays: the mix does not test a full table and replays", evictions, replays)
	}
}

// liveHeap is the heap in use once the collector has run: what the values
// still referenced hold.
func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
