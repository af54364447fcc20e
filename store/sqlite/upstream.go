package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/mcpgate/mcpgate/store"
)

var (
	sqlPutUpstream = ws(`INSERT OR REPLACE INTO upstream_sessions (grant_id, connector, user, token, checked_at)
		VALUES (?, ?, ?, ?, ?)`)
	sqlGetUpstream = rs(`SELECT grant_id, connector, user, token, checked_at FROM upstream_sessions WHERE grant_id = ?`)
)

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
