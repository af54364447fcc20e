package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

var (
	sqlPutUpstream = ws(`INSERT OR REPLACE INTO upstream_sessions (grant_id, connector, user, token, checked_at)
		VALUES (?, ?, ?, ?, ?)`)
	sqlGetUpstream   = rs(`SELECT grant_id, connector, user, token, checked_at FROM upstream_sessions WHERE grant_id = ?`)
	sqlClaimUpstream = ws(`UPDATE upstream_sessions SET claimed_until = ? WHERE grant_id = ? AND checked_at = ? AND claimed_until <= ?`)
	sqlHasUpstream   = ws(`SELECT 1 FROM upstream_sessions WHERE grant_id = ?`)
)

// ClaimUpstreamRecheck implements store.Store, in one write transaction.
// PutUpstreamSession's INSERT OR REPLACE writes a whole row, whose
// claimed_until is then its default, 0: the claim ends.
func (s *Store) ClaimUpstreamRecheck(ctx context.Context, grantID string, checkedAt, now, until time.Time) (bool, error) {
	claimed := false
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := s.txExec(ctx, tx, sqlClaimUpstream, nanos(until), grantID, nanos(checkedAt), nanos(now))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			claimed = n == 1
			return err
		}
		var one int
		return s.txRow(ctx, tx, sqlHasUpstream, grantID).Scan(&one)
	})
	if err != nil {
		return false, wrap("claim upstream recheck", err)
	}
	return claimed, nil
}

// PutUpstreamSession implements store.Store.
func (s *Store) PutUpstreamSession(ctx context.Context, u *store.UpstreamSession) error {
	user, err := encode(u.User)
	if err != nil {
		return fmt.Errorf("sqlite: put upstream session: %w", err)
	}
	err = s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := s.txExec(ctx, tx, sqlPutUpstream, u.GrantID, u.Connector, user, u.Token, nanos(u.CheckedAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: put upstream session: %w", err)
	}
	return nil
}

// GetUpstreamSession implements store.Store.
func (s *Store) GetUpstreamSession(ctx context.Context, grantID string) (*store.UpstreamSession, error) {
	var u store.UpstreamSession
	err := s.row(ctx, sqlGetUpstream, grantID).
		Scan(&u.GrantID, &u.Connector, jsonText{&u.User}, blob{&u.Token}, timeCol{&u.CheckedAt})
	if err != nil {
		return nil, wrap("get upstream session", err)
	}
	return &u, nil
}
