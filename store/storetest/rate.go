package storetest

import (
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

// AddRateHit counts per key and window: each call one more, another key
// or window a counter of its own, any bytes a key.
func testAddRateHit(t *testing.T, s store.Store) {
	ctx := t.Context()
	w1, w2 := t0, t0.Add(time.Minute)
	hit := func(key string, window time.Time, want int) {
		t.Helper()
		n, err := s.AddRateHit(ctx, key, window, window.Add(time.Minute))
		must(t, "add rate hit", err)
		if n != want {
			t.Errorf("AddRateHit(%q, %v) = %d, want %d", key, window, n, want)
		}
	}
	for i := 1; i <= 3; i++ {
		hit("register 127.0.0.1", w1, i)
	}
	hit("register 127.0.0.2", w1, 1)
	hit("register 127.0.0.1", w2, 1)
	hit("register 127.0.0.1", w1, 4)
	hit("a\x00b\xff", w1, 1)
	hit("a\x00b\xff", w1, 2)
	hit("a", w1, 1)
}

// Concurrent hits of one key and window each get a different count, 1 to
// the number of callers: none is lost, none counted twice.
func raceAddRateHit(t *testing.T, s store.Store) {
	ctx := t.Context()
	counts := make([]int, racers)
	errs := race(func(i int) error {
		n, err := s.AddRateHit(ctx, "register 127.0.0.1", t0, t0.Add(time.Minute))
		counts[i] = n
		return err
	})
	seen := make(map[int]bool)
	for i, err := range errs {
		must(t, "add rate hit", err)
		if counts[i] < 1 || counts[i] > racers || seen[counts[i]] {
			t.Errorf("racer %d got count %d; counts %v, want each of 1..%d once", i, counts[i], counts, racers)
		}
		seen[counts[i]] = true
	}
}
