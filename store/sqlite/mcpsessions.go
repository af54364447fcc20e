package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

var (
	// The same user's binding moves its expiry; another user's stays
	// until it has expired (store.Store.PutMCPSession).
	sqlPutMCPSession = ws(`INSERT INTO mcp_sessions (resource, hash, user_id, expires_at) VALUES (?1, ?2, ?3, ?4)
		ON CONFLICT (resource, hash) DO UPDATE SET user_id = excluded.user_id, expires_at = excluded.expires_at
		WHERE mcp_sessions.user_id = excluded.user_id OR mcp_sessions.expires_at <= ?5`)
	sqlGetMCPSession = rs(`SELECT resource, hash, user_id, expires_at FROM mcp_sessions
		WHERE resource = ? AND hash = ? AND expires_at > ?`)
	sqlDeleteMCPSession = ws(`DELETE FROM mcp_sessions WHERE resource = ? AND hash = ?`)
)

// PutMCPSession implements store.Store.
func (s *Store) PutMCPSession(ctx context.Context, m *store.MCPSession, now time.Time) error {
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return inserted(s.txExec(ctx, tx, sqlPutMCPSession, m.Resource, m.Hash, m.UserID, nanos(m.ExpiresAt), nanos(now)))
	})
	if err != nil {
		return fmt.Errorf("sqlite: put mcp session: %w", err)
	}
	return nil
}

// GetMCPSession implements store.Store.
func (s *Store) GetMCPSession(ctx context.Context, resource string, hash []byte, now time.Time) (*store.MCPSession, error) {
	var m store.MCPSession
	err := s.row(ctx, sqlGetMCPSession, resource, hash, nanos(now)).
		Scan(&m.Resource, blob{&m.Hash}, &m.UserID, timeCol{&m.ExpiresAt})
	if err != nil {
		return nil, wrap("get mcp session", err)
	}
	return &m, nil
}

// DeleteMCPSession implements store.Store.
func (s *Store) DeleteMCPSession(ctx context.Context, resource string, hash []byte) error {
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return affected(s.txExec(ctx, tx, sqlDeleteMCPSession, resource, hash))
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete mcp session: %w", err)
	}
	return nil
}
