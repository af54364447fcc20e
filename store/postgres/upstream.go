package postgres

import (
	"context"
	"fmt"

	"github.com/mcpgate/mcpgate/store"
)

const (
	sqlPutUpstream = `INSERT INTO upstream_sessions (grant_id, connector, user_json, token, checked_at)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (grant_id) DO UPDATE SET connector = excluded.connector, user_json = excluded.user_json,
			token = excluded.token, checked_at = excluded.checked_at`
	sqlGetUpstream = `SELECT grant_id, connector, user_json, token, checked_at FROM upstream_sessions WHERE grant_id = $1`
)

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
