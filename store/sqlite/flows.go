package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

// The flow debugger's events. A batch is one multi-row INSERT, so that a
// recorder flushing a hundred events costs one op of the single writer.
const flowCols = `at, attempt, client_id, user_id, step, outcome, reason, details`

var (
	// The attempts are chosen first, then all their events read: the
	// filter matches one step (a login names the user, an authorize step
	// may not) but the timeline needs every step.
	sqlListFlowEvents = rs(`SELECT ` + flowCols + ` FROM flow_events WHERE at >= ?1 AND attempt IN (
		SELECT attempt FROM flow_events WHERE at >= ?1
			AND (?2 = '' OR client_id = ?2) AND (?3 = '' OR user_id = ?3)
			AND (?4 = '' OR outcome = ?4 OR (?4 = 'failed' AND outcome <> 'ok'))
		GROUP BY attempt ORDER BY max(seq) DESC LIMIT ?5)
		ORDER BY seq`)
	// Old events go by the index on at; the ones beyond the bound by the
	// primary key, below the seq that the keep-th latest has.
	sqlDeleteFlowEvents = ws(`DELETE FROM flow_events WHERE seq IN (
		SELECT seq FROM flow_events WHERE at < ?1
			OR seq <= coalesce((SELECT seq FROM flow_events ORDER BY seq DESC LIMIT 1 OFFSET ?2), 0)
		ORDER BY seq LIMIT ?3)`)
)

// AppendFlowEvents implements store.Store.
func (s *Store) AppendFlowEvents(ctx context.Context, events []store.FlowEvent) error {
	if len(events) == 0 {
		return nil
	}
	var q strings.Builder
	q.WriteString(`INSERT INTO flow_events (` + flowCols + `) VALUES `)
	args := make([]any, 0, 8*len(events))
	for i, e := range events {
		details, err := encode(e.Details)
		if err != nil {
			return fmt.Errorf("sqlite: append flow events: %w", err)
		}
		if e.Details == nil {
			details = "{}"
		}
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?)")
		args = append(args, nanos(e.Time), e.Attempt, e.ClientID, e.UserID, e.Step, e.Outcome, e.Reason, details)
	}
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := s.txExec(ctx, tx, q.String(), args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: append flow events: %w", err)
	}
	return nil
}

// ListFlowEvents implements store.Store.
func (s *Store) ListFlowEvents(ctx context.Context, f store.FlowFilter) ([]store.FlowEvent, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := s.rows(ctx, sqlListFlowEvents, nanos(f.Since), f.ClientID, f.UserID, f.Outcome, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list flow events: %w", err)
	}
	out, err := collect(rows, func(r scanner) (store.FlowEvent, error) {
		var e store.FlowEvent
		err := r.Scan(timeCol{&e.Time}, &e.Attempt, &e.ClientID, &e.UserID, &e.Step, &e.Outcome, &e.Reason, jsonText{&e.Details})
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: list flow events: %w", err)
	}
	return out, nil
}

// DeleteFlowEvents implements store.Store.
func (s *Store) DeleteFlowEvents(ctx context.Context, before time.Time, keep, limit int) (int, error) {
	var n int64
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := s.txExec(ctx, tx, sqlDeleteFlowEvents, nanos(before), keep, limit)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete flow events: %w", err)
	}
	return int(n), nil
}
