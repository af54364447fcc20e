package memory

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

// AppendFlowEvents implements store.Store.
func (s *Store) AppendFlowEvents(_ context.Context, events []store.FlowEvent) error {
	s.flowMu.Lock()
	defer s.flowMu.Unlock()
	for _, e := range events {
		e.Details = maps.Clone(e.Details)
		s.flows = append(s.flows, e)
	}
	return nil
}

// ListFlowEvents implements store.Store.
func (s *Store) ListFlowEvents(_ context.Context, f store.FlowFilter) ([]store.FlowEvent, error) {
	s.flowMu.Lock()
	defer s.flowMu.Unlock()
	// The latest matching attempts: walk back from the newest event.
	chosen := map[string]bool{}
	for i := len(s.flows) - 1; i >= 0; i-- {
		e := &s.flows[i]
		if e.Time.Before(f.Since) || chosen[e.Attempt] || !store.MatchFlowEvent(e, f) {
			continue
		}
		if f.Limit > 0 && len(chosen) == f.Limit {
			break
		}
		chosen[e.Attempt] = true
	}
	out := []store.FlowEvent{}
	for _, e := range s.flows {
		if chosen[e.Attempt] && !e.Time.Before(f.Since) {
			e.Details = maps.Clone(e.Details)
			out = append(out, e)
		}
	}
	return out, nil
}

// DeleteFlowEvents implements store.Store.
func (s *Store) DeleteFlowEvents(_ context.Context, before time.Time, keep, limit int) (int, error) {
	s.flowMu.Lock()
	defer s.flowMu.Unlock()
	over := max(len(s.flows)-keep, 0)
	n := 0
	s.flows = slices.DeleteFunc(s.flows, func(e store.FlowEvent) bool {
		if n < limit && (over > 0 || e.Time.Before(before)) {
			n++
			over--
			return true
		}
		return false
	})
	return n, nil
}
