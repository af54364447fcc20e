package authserver

import (
	"net/netip"
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

// SEC-170: a trusted proxy's network holds its peers whatever their form:
// a link-local peer with its interface's zone, an IPv4 peer as IPv4-mapped
// IPv6. Fails before this change for the zone: netip.Prefix.Contains
// holds no zoned address, so fe80::/10 trusted no proxy at all.
func TestTrustedProxyZoneAndMapped(t *testing.T) {
	s := &Server{opts: Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("fe80::/10"), netip.MustParsePrefix("10.0.0.0/8")}}}
	for addr, want := range map[string]bool{"fe80::1%eth0": true, "fe80::1": true, "::ffff:10.1.2.3": true, "10.1.2.3": true, "fe90::1%eth0": true, "2001:db8::1": false, "11.0.0.1": false} {
		if got := s.trustedProxy(netip.MustParseAddr(addr)); got != want {
			t.Errorf("trustedProxy(%s) = %v, want %v", addr, got, want)
		}
	}
}
