package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

func flowEvent(attempt, client, user, step, outcome string, at time.Time) store.FlowEvent {
	return store.FlowEvent{Time: at, Attempt: attempt, ClientID: client, UserID: user, Step: step, Outcome: outcome,
		Details: map[string]string{"redirect_uri": "http://127.0.0.1:33418/cb"}}
}

func attemptsOf(events []store.FlowEvent) []string {
	var out []string
	for _, e := range events {
		if len(out) == 0 || out[len(out)-1] != e.Attempt {
			out = append(out, e.Attempt)
		}
	}
	return out
}

func listFlows(t *testing.T, s store.Store, f store.FlowFilter) []store.FlowEvent {
	t.Helper()
	got, err := s.ListFlowEvents(context.Background(), f)
	if err != nil {
		t.Fatalf("ListFlowEvents(%+v): %v", f, err)
	}
	return got
}

// testFlowEvents: a filter chooses attempts by any of their steps and
// returns every step of them, in append order (SEC-114).
func testFlowEvents(t *testing.T, s store.Store) {
	ctx := context.Background()
	a1 := flowEvent("a1", "c1", "", "authorize", "ok", t0)
	a1.Reason = ""
	a1login := flowEvent("a1", "c1", "local:alice", "login", "access_denied", t0.Add(time.Second))
	a1login.Reason = "refused by the access rules"
	a2 := flowEvent("a2", "c2", "", "authorize", "ok", t0.Add(2*time.Second))
	a2tok := flowEvent("a2", "c2", "local:bob", "token_code", "ok", t0.Add(3*time.Second))
	a3 := flowEvent("a3", "c1", "", "register", "ok", t0.Add(4*time.Second))
	if err := s.AppendFlowEvents(ctx, []store.FlowEvent{a1, a1login, a2}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendFlowEvents(ctx, []store.FlowEvent{a2tok, a3}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendFlowEvents(ctx, nil); err != nil {
		t.Fatalf("empty batch: %v", err)
	}

	all := listFlows(t, s, store.FlowFilter{})
	if len(all) != 5 {
		t.Fatalf("all: %d events, want 5", len(all))
	}
	got := all[1]
	if !got.Time.Equal(a1login.Time) || got.Attempt != "a1" || got.ClientID != "c1" || got.UserID != "local:alice" ||
		got.Step != "login" || got.Outcome != "access_denied" || got.Reason != a1login.Reason ||
		got.Details["redirect_uri"] != "http://127.0.0.1:33418/cb" || len(got.Details) != 1 {
		t.Fatalf("round trip: got %+v, want %+v", got, a1login)
	}
	for _, tc := range []struct {
		f    store.FlowFilter
		want string
	}{
		{store.FlowFilter{}, "[a1 a2 a3]"},
		{store.FlowFilter{ClientID: "c1"}, "[a1 a3]"},
		{store.FlowFilter{UserID: "local:alice"}, "[a1]"}, // its authorize step too
		{store.FlowFilter{UserID: "local:bob", ClientID: "c2"}, "[a2]"},
		{store.FlowFilter{UserID: "local:bob", ClientID: "c1"}, "[]"},
		{store.FlowFilter{Outcome: "failed"}, "[a1]"},
		{store.FlowFilter{Outcome: "access_denied"}, "[a1]"},
		{store.FlowFilter{Outcome: "ok", ClientID: "c2"}, "[a2]"},
		{store.FlowFilter{Limit: 2}, "[a2 a3]"},
		{store.FlowFilter{ClientID: "c1", Limit: 1}, "[a3]"},
		{store.FlowFilter{Since: t0.Add(2 * time.Second)}, "[a2 a3]"},
	} {
		events := listFlows(t, s, tc.f)
		if got := fmt.Sprint(attemptsOf(events)); got != tc.want {
			t.Errorf("ListFlowEvents(%+v): attempts %s, want %s", tc.f, got, tc.want)
		}
		if tc.f.UserID == "local:alice" && len(events) != 2 {
			t.Errorf("user filter: %d events, want both steps of a1", len(events))
		}
	}

	// What a client sent is kept as nearly as a backend can store it.
	odd := flowEvent("a4", "c\x00\xff", "", "authorize", "invalid_request", t0.Add(5*time.Second))
	odd.Details = map[string]string{"redirect_uri": "http://x/\x00\xfe"}
	if err := s.AppendFlowEvents(ctx, []store.FlowEvent{odd}); err != nil {
		t.Fatalf("odd bytes: %v", err)
	}
	if n := len(listFlows(t, s, store.FlowFilter{})); n != 6 {
		t.Fatalf("after odd bytes: %d events, want 6", n)
	}
}

// testDeleteFlowEvents: housekeeping removes the old events and the ones
// beyond the bound, a batch at a time (SEC-114).
func testDeleteFlowEvents(t *testing.T, s store.Store) {
	ctx := context.Background()
	var batch []store.FlowEvent
	for i := range 10 {
		batch = append(batch, flowEvent(fmt.Sprintf("a%02d", i), "c", "", "register", "ok", t0.Add(time.Duration(i)*time.Minute)))
	}
	if err := s.AppendFlowEvents(ctx, batch); err != nil {
		t.Fatal(err)
	}
	// Nothing old, bound not reached.
	if n, err := s.DeleteFlowEvents(ctx, t0, 10, 100); err != nil || n != 0 {
		t.Fatalf("nothing due: deleted %d, %v", n, err)
	}
	// Older than t0+3m: a00..a02, in batches of 2.
	if n, err := s.DeleteFlowEvents(ctx, t0.Add(3*time.Minute), 100, 2); err != nil || n != 2 {
		t.Fatalf("first batch: deleted %d, %v; want 2", n, err)
	}
	if n, err := s.DeleteFlowEvents(ctx, t0.Add(3*time.Minute), 100, 2); err != nil || n != 1 {
		t.Fatalf("second batch: deleted %d, %v; want 1", n, err)
	}
	// Beyond the latest 4: a03..a05 go.
	if n, err := s.DeleteFlowEvents(ctx, t0, 4, 100); err != nil || n != 3 {
		t.Fatalf("bound: deleted %d, %v; want 3", n, err)
	}
	if got := fmt.Sprint(attemptsOf(listFlows(t, s, store.FlowFilter{}))); got != "[a06 a07 a08 a09]" {
		t.Fatalf("left %s, want [a06 a07 a08 a09]", got)
	}
}
