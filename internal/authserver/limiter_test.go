package authserver

import (
	"testing"
	"time"
)

// SEC-157: an attempt given back is given back whatever time it took and
// whatever the address tried meanwhile: sign-ins that succeed never use up
// an address's budget, and the failures still do.
func TestBudgetRefund(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { return now }
	const addr = "192.0.2.1"

	b := newBudgets(guessesPerMinute, time.Minute, clock)
	for i := range 3 * guessesPerMinute {
		refund, ok := b.take(addr)
		if !ok {
			t.Fatalf("successful sign-in %d from one address refused", i+1)
		}
		now = now.Add(100 * time.Millisecond) // the bcrypt
		refund()
	}
	for i := range guessesPerMinute {
		if _, ok := b.take(addr); !ok {
			t.Fatalf("failure %d refused, want %d allowed", i+1, guessesPerMinute)
		}
	}
	if _, ok := b.take(addr); ok {
		t.Errorf("failure %d allowed, want it refused", guessesPerMinute+1)
	}

	// A success whose check straddles a refused attempt, and one that
	// waited for a slot while the address failed again, get theirs back.
	b = newBudgets(guessesPerMinute, time.Minute, clock)
	for range guessesPerMinute - 1 {
		b.take(addr)
	}
	refund, _ := b.take(addr) // the last one: a success being checked
	if _, ok := b.take(addr); ok {
		t.Fatal("an attempt past the budget allowed")
	}
	refund()
	if _, ok := b.take(addr); !ok {
		t.Error("after a success's refund, with a refused attempt during its check: refused, want allowed")
	}

	b = newBudgets(guessesPerMinute, time.Minute, clock)
	for range 10 {
		b.take(addr)
	}
	refund, _ = b.take(addr)
	now = now.Add(3500 * time.Millisecond) // waited for a slot
	b.take(addr)                           // a failure meanwhile
	refund()
	left := 0
	for ; left < 2*guessesPerMinute; left++ {
		if _, ok := b.take(addr); !ok {
			break
		}
	}
	if left < 10 {
		t.Errorf("%d attempts left after 11 failures, 1 refunded success and 3.5 s, want at least 10", left)
	}
}
