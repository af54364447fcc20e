package postgres

import (
	"context"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/mcpgate/mcpgate/store"
)

// The flow debugger's events; see the SQLite store for the queries' shape.
const (
	flowCols          = `at, attempt, client_id, user_id, step, outcome, reason, details`
	sqlListFlowEvents = `SELECT ` + flowCols + ` FROM flow_events WHERE at >= $1 AND attempt IN (
		SELECT attempt FROM flow_events WHERE at >= $1
			AND ($2 = '' OR client_id = $2) AND ($3 = '' OR user_id = $3)
			AND ($4 = '' OR outcome = $4 OR ($4 = 'failed' AND outcome <> 'ok'))
		GROUP BY attempt ORDER BY max(seq) DESC LIMIT $5)
		ORDER BY seq`
	sqlDeleteFlowEvents = `DELETE FROM flow_events WHERE seq IN (
		SELECT seq FROM flow_events WHERE at < $1
			OR seq <= coalesce((SELECT seq FROM flow_events ORDER BY seq DESC LIMIT 1 OFFSET $2), 0)
		ORDER BY seq LIMIT $3)`
)

// AppendFlowEvents implements store.Store: one multi-row INSERT, one round
// trip.
func (s *Store) AppendFlowEvents(ctx context.Context, events []store.FlowEvent) error {
	if len(events) == 0 {
		return nil
	}
	rows := make([][]any, 0, len(events))
	for _, e := range events {
		d := make(map[string]string, len(e.Details))
		for k, v := range e.Details {
			d[textSafe(k)] = textSafe(v)
		}
		details, err := encode(d)
		if err != nil {
			return wrap("append flow events", err)
		}
		rows = append(rows, []any{nanos(e.Time), textSafe(e.Attempt), textSafe(e.ClientID), textSafe(e.UserID),
			textSafe(e.Step), textSafe(e.Outcome), textSafe(e.Reason), details})
	}
	var q strings.Builder
	q.WriteString(`INSERT INTO flow_events (` + flowCols + `) VALUES `)
	args := make([]any, 0, 8*len(rows))
	for i, r := range rows {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteByte('(')
		for j := range r {
			if j > 0 {
				q.WriteString(", ")
			}
			args = append(args, r[j])
			q.WriteByte('$')
			q.WriteString(strconv.Itoa(len(args)))
		}
		q.WriteByte(')')
	}
	if _, err := s.pool.Exec(ctx, q.String(), args...); err != nil {
		return wrap("append flow events", err)
	}
	return nil
}

// textSafe makes s storable in a text column (see storable): what a
// client sent is recorded as nearly as it came.
func textSafe(s string) string {
	if storable(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, string(utf8.RuneError)), "\x00", string(utf8.RuneError))
}

// ListFlowEvents implements store.Store.
func (s *Store) ListFlowEvents(ctx context.Context, f store.FlowFilter) ([]store.FlowEvent, error) {
	var limit *int
	if f.Limit > 0 {
		limit = &f.Limit
	}
	rows, err := s.pool.Query(ctx, sqlListFlowEvents, nanos(f.Since), textSafe(f.ClientID), textSafe(f.UserID), textSafe(f.Outcome), limit)
	if err != nil {
		return nil, wrap("list flow events", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.FlowEvent, error) {
		var e store.FlowEvent
		err := r.Scan(timeCol{&e.Time}, &e.Attempt, &e.ClientID, &e.UserID, &e.Step, &e.Outcome, &e.Reason, jsonText{&e.Details})
		return e, err
	})
	if err != nil {
		return nil, wrap("list flow events", err)
	}
	if out == nil {
		out = []store.FlowEvent{}
	}
	return out, nil
}

// DeleteFlowEvents implements store.Store.
func (s *Store) DeleteFlowEvents(ctx context.Context, before time.Time, keep, limit int) (int, error) {
	tag, err := s.pool.Exec(ctx, sqlDeleteFlowEvents, nanos(before), keep, limit)
	if err != nil {
		return 0, wrap("delete flow events", err)
	}
	return int(tag.RowsAffected()), nil
}
