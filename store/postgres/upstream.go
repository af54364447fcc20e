package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

const (
	sqlPutUpstream = `INSERT INTO upstream_sessions (grant_id, connector, user_json, token, checked_at)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (grant_id) DO UPDATE SET connector = excluded.connector, user_json = excluded.user_json,
			token = excluded.token, checked_at = excluded.checked_at, claimed_until = 0`
	sqlGetUpstream   = `SELECT grant_id, connector, user_json, token, checked_at FROM upstream_sessions WHERE grant_id = $1`
	sqlClaimUpstream = `UPDATE upstream_sessions SET claimed_until = $4 WHERE grant_id = $1 AND checked_at = $2 AND claimed_until <= $3`
	sqlHasUpstream   = `SELECT 1 FROM upstream_sessions WHERE grant_id = $1`
)

// ClaimUpstreamRecheck implements store.Store: one statement, which the
// database serialises with any other's on the row.
func (s *Store) ClaimUpstreamRecheck(ctx context.Context, grantID string, checkedAt, now, until time.Time) (bool, error) {
	if !storable(grantID) {
		return false, wrap("claim upstream recheck", store.ErrNotFound)
	}
	tag, err := s.pool.Exec(ctx, sqlClaimUpstream, grantID, nanos(checkedAt), nanos(now), nanos(until))
	if err != nil {
		return false, wrap("claim upstream recheck", err)
	}
	if tag.RowsAffected() == 1 {
		return true, nil
	}
	var one int
	if err := s.pool.QueryRow(ctx, sqlHasUpstream, grantID).Scan(&one); err != nil {
		return false, wrap("claim upstream recheck", err)
	}
	return false, nil
}

// PutUpstreamSession implements store.Store.
func (s *Store) PutUpstreamSession(ctx context.Context, u *store.UpstreamSession) error {
	user, err := encode(u.User)
	if err != nil {
		return fmt.Errorf("postgres: put upstream session: %w", err)
	}
	if _, err := s.pool.Exec(ctx, sqlPutUpstream, u.GrantID, u.Connector, user, u.Token, nanos(u.CheckedAt)); err != nil {
		return wrap("put upstream session", err)
	}
	return nil
}

// GetUpstreamSession implements store.Store.
func (s *Store) GetUpstreamSession(ctx context.Context, grantID string) (*store.UpstreamSession, error) {
	if !storable(grantID) {
		return nil, wrap("get upstream session", store.ErrNotFound)
	}
	var u store.UpstreamSession
	err := s.pool.QueryRow(ctx, sqlGetUpstream, grantID).
		Scan(&u.GrantID, &u.Connector, jsonText{&u.User}, &u.Token, timeCol{&u.CheckedAt})
	if err != nil {
		return nil, wrap("get upstream session", err)
	}
	return &u, nil
}
