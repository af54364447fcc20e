package audit

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// SEC-112: Recent keeps the last n events, newest first, and no more
// however many it is given.
func TestSEC112_RecentIsBounded(t *testing.T) {
	r := NewRecent(3, func() time.Time { return time.Unix(0, 0) })
	if got := r.Last(); len(got) != 0 {
		t.Fatalf("empty: %v", got)
	}
	r.Record(context.Background(), Event{Tool: "t0"})
	if got := r.Last(); len(got) != 1 || got[0].Tool != "t0" {
		t.Fatalf("one event: %+v", got)
	}
	for i := 1; i < 1000; i++ {
		r.Record(context.Background(), Event{Tool: fmt.Sprint("t", i)})
	}
	got := r.Last()
	if len(got) != 3 || got[0].Tool != "t999" || got[1].Tool != "t998" || got[2].Tool != "t997" {
		t.Fatalf("after 1000 events: %+v, want t999, t998, t997", got)
	}
	if len(r.ring) != 3 {
		t.Fatalf("the ring grew to %d", len(r.ring))
	}
}

// Tee gives every event to each recorder.
func TestTee(t *testing.T) {
	a, b := NewRecent(2, nil), NewRecent(2, nil)
	Tee(a, b).Record(context.Background(), Event{Tool: "x"})
	if len(a.Last()) != 1 || len(b.Last()) != 1 {
		t.Fatalf("tee: %d and %d events, want 1 and 1", len(a.Last()), len(b.Last()))
	}
}
