package audit

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
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

// SEC-112: the ring's bound is on bytes too: a tool name is the client's
// text, as long as a request body, and each kept text is cut at
// MaxRecentText bytes (on a character's boundary, marked with "…"), so
// that 200 calls with megabyte names hold kilobytes, not 200 MB.
func TestSEC112_RecentTextIsBounded(t *testing.T) {
	r := NewRecent(2, nil)
	long := strings.Repeat("é", 1<<19) // 1 MiB, two bytes a character
	r.Record(context.Background(), Event{Tool: "a" + long, User: long, Client: long, Resource: long, RequestID: long, Outcome: Outcome(long)})
	r.Record(context.Background(), Event{Tool: "search", User: "local:alice"})
	got := r.Last()
	if got[0].Tool != "search" || got[0].User != "local:alice" {
		t.Errorf("short texts changed: %+v", got[0].Event)
	}
	e := got[1]
	for name, v := range map[string]string{"tool": e.Tool, "user": e.User, "client": e.Client, "resource": e.Resource, "request id": e.RequestID, "outcome": string(e.Outcome)} {
		if len(v) > MaxRecentText+len("…") || !strings.HasSuffix(v, "…") || !utf8.ValidString(v) {
			t.Errorf("%s kept %d bytes (valid UTF-8 %v), want at most %d and cut with …", name, len(v), utf8.ValidString(v), MaxRecentText+len("…"))
		}
	}
	if !strings.HasPrefix(e.Tool, "aéé") {
		t.Errorf("tool %.10q…, want the name's beginning kept", e.Tool)
	}
}
