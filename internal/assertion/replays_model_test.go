package assertion

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// keyOf is Replays' key of client's jti.
func keyOf(client, jti string) digest {
	c := sha256.Sum256([]byte(client))
	return digest(sha256.Sum256(append(c[:], jti...)))
}

// SEC-128: Replays decides as a plain map of every assertion accepted,
// each until its expiry, would, but for the assertions a full table gave
// up: a live one it holds is refused, one that is not live (new, or used
// before and expired since) is accepted, an assertion is forgotten only
// when the table was full and one at a time, and the table holds nothing
// the map does not. With room for all, it is the map exactly.
func TestSEC128_ReplaysAgreeWithAMap(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit int
		seed  uint64
	}{
		{"full table", 24, 1},
		{"full table, other seed", 40, 2},
		{"room for all", 1 << 20, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(tc.seed, 128))
			r := NewReplays(tc.limit)
			model := map[digest]int64{} // every assertion accepted: until, in Unix ns
			given := map[digest]bool{}  // given up by a full table while live
			now := t0
			forgotten, refusedLive, acceptedAgain := 0, 0, 0
			for step := range 20_000 {
				client := fmt.Sprintf("https://c%d.example/c.json", rng.IntN(5)*rng.IntN(3))
				jti := fmt.Sprint(rng.IntN(30))
				key := keyOf(client, jti)
				at := now.UnixNano()
				before := make(map[digest]int64, len(r.seen))
				for k, u := range r.seen {
					before[k] = u
				}
				full := len(r.seen) >= r.max
				exp := now.Add(time.Duration(1+rng.IntN(600)) * time.Second)
				err := r.Use(client, &Verified{ID: jti, Expiry: exp}, now)
				if err != nil && !errors.Is(err, ErrReplayed) {
					t.Fatalf("step %d: Use: %v", step, err)
				}
				mu, inModel := model[key]
				modelLive := inModel && at < mu
				ru, inTable := before[key]
				switch tableLive := inTable && at < ru; {
				case tableLive && err == nil:
					t.Fatalf("step %d: a live assertion the table holds was accepted again", step)
				case !modelLive && err != nil:
					t.Fatalf("step %d: an assertion never accepted, or expired, was refused: %v", step, err)
				case modelLive && err == nil && !given[key]:
					t.Fatalf("step %d: a live assertion the table never gave up was accepted again", step)
				case tableLive:
					refusedLive++
				case inModel && !modelLive:
					acceptedAgain++
				}
				if err == nil {
					model[key] = exp.Add(Leeway).UnixNano()
					delete(given, key)
					if r.seen[key] != model[key] {
						t.Fatalf("step %d: the accepted assertion is not held until its expiry", step)
					}
				}
				lost := 0
				for k, u := range before {
					if _, ok := r.seen[k]; !ok && at < u && k != key {
						lost++
						given[k] = true
					}
				}
				if lost > 0 && (!full || lost > 1) {
					t.Fatalf("step %d: %d live assertions forgotten, table full before: %v; want at most one, from a full table", step, lost, full)
				}
				forgotten += lost
				for k, u := range r.seen {
					if model[k] != u {
						t.Fatalf("step %d: the table holds an assertion the map does not", step)
					}
				}
				r.check(t)
				now = now.Add(time.Duration(rng.IntN(4000)) * time.Millisecond)
			}
			if refusedLive < 100 || acceptedAgain < 100 || (tc.limit < 100) != (forgotten > 100) {
				t.Fatalf("%d replays refused, %d accepted again after expiry, %d forgotten: the mix does not test what it should", refusedLive, acceptedAgain, forgotten)
			}
		})
	}
}

// SEC-128: of the requests that present one assertion at once, exactly one
// is accepted.
func TestSEC128_ReplaysOneWinner(t *testing.T) {
	r := NewReplays(100)
	for round := range 50 {
		const n = 8
		var wg sync.WaitGroup
		errs := make(chan error, n)
		start := make(chan struct{})
		for range n {
			wg.Go(func() {
				<-start
				errs <- r.Use("https://c.example/c.json", &Verified{ID: fmt.Sprint(round), Expiry: t0.Add(time.Minute)}, t0)
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		won := 0
		for err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, ErrReplayed):
				t.Fatal(err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d of %d requests accepted, want exactly 1", round, won, n)
		}
	}
}

// SEC-128: requests reach Use in another order than their clocks were
// read (one waited for its client's key set): an assertion that a sweep
// at a later time dropped as expired is not accepted again by a request
// whose time was read before. Fails before this change: the replay was
// accepted.
func TestSEC128_ReplaysSweptNotAcceptedAgain(t *testing.T) {
	r := NewReplays(100)
	v := &Verified{ID: "j1", Expiry: t0}
	if err := r.Use("https://c.example/c.json", v, t0.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	// Another request, its time read once the assertion expired, sweeps.
	if err := r.Use("https://other.example/c.json", &Verified{ID: "x", Expiry: t0.Add(5 * time.Minute)}, t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	// The replay, its time read while the assertion still lived.
	if err := r.Use("https://c.example/c.json", v, t0.Add(30*time.Second)); err == nil {
		t.Fatal("an assertion used once, then swept at a later time, was accepted again by a request of an earlier time")
	}
}
