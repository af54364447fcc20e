package postgres

import (
	"context"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

const (
	// The same user's binding moves its expiry; another user's stays
	// until it has expired (store.Store.PutMCPSession).
	sqlPutMCPSession = `INSERT INTO mcp_sessions (resource, hash, user_id, expires_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (resource, hash) DO UPDATE SET user_id = excluded.user_id, expires_at = excluded.expires_at
		WHERE mcp_sessions.user_id = excluded.user_id OR mcp_sessions.expires_at <= $5`
	sqlGetMCPSession = `SELECT resource, hash, user_id, expires_at FROM mcp_sessions
		WHERE resource = $1 AND hash = $2 AND expires_at > $3`
	sqlDeleteMCPSession = `DELETE FROM mcp_sessions WHERE resource = $1 AND hash = $2`
)

// PutMCPSession implements store.Store.
func (s *Store) PutMCPSession(ctx context.Context, m *store.MCPSession, now time.Time) error {
	err := inserted(s.pool.Exec(ctx, sqlPutMCPSession, m.Resource, m.Hash, m.UserID, nanos(m.ExpiresAt), nanos(now)))
	if err != nil {
		return wrap("put mcp session", err)
	}
	return nil
}

// GetMCPSession implements store.Store.
func (s *Store) GetMCPSession(ctx context.Context, resource string, hash []byte, now time.Time) (*store.MCPSession, error) {
	if !storable(resource) {
		return nil, wrap("get mcp session", store.ErrNotFound)
	}
	var m store.MCPSession
	err := s.pool.QueryRow(ctx, sqlGetMCPSession, resource, hash, nanos(now)).
		Scan(&m.Resource, &m.Hash, &m.UserID, timeCol{&m.ExpiresAt})
	if err != nil {
		return nil, wrap("get mcp session", err)
	}
	return &m, nil
}

// DeleteMCPSession implements store.Store.
func (s *Store) DeleteMCPSession(ctx context.Context, resource string, hash []byte) error {
	if !storable(resource) {
		return wrap("delete mcp session", store.ErrNotFound)
	}
	if err := affected(s.pool.Exec(ctx, sqlDeleteMCPSession, resource, hash)); err != nil {
		return wrap("delete mcp session", err)
	}
	return nil
}
