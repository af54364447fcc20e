package authserver

import (
	"testing"
	"time"
)

// SEC-157: a check given back is given back whatever time its attempt
// took: sign-ins that succeed, however many, never use up an address's
// budget, and the failures still do.
func TestLimiterRefundAfterTheAttempt(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	l := newLimiter(guessesPerMinute, time.Minute, func() time.Time { return now })
	for i := range 3 * guessesPerMinute {
		refund, ok := l.reserve("192.0.2.1")
		if !ok {
			t.Fatalf("successful sign-in %d from one address refused", i+1)
		}
		now = now.Add(100 * time.Millisecond) // the bcrypt
		refund()
	}
	for i := range guessesPerMinute {
		if _, ok := l.reserve("192.0.2.1"); !ok {
			t.Fatalf("failure %d refused, want %d allowed", i+1, guessesPerMinute)
		}
		now = now.Add(time.Millisecond)
	}
	if _, ok := l.reserve("192.0.2.1"); ok {
		t.Errorf("failure %d allowed, want it refused", guessesPerMinute+1)
	}
}
