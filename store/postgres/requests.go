package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mcpgate/mcpgate/store"
)

const authRequestCols = `id, client_id, redirect_uri, state, code_challenge, resource, scopes,
	connector, upstream_state_hash, created_at, expires_at, sign_in`

const (
	sqlInsertAuthRequest = `INSERT INTO auth_requests (` + authRequestCols + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING`
	sqlGetAuthRequest = `SELECT ` + authRequestCols + ` FROM auth_requests WHERE id = $1 AND expires_at > $2`
	sqlLiveRequest    = `SELECT true FROM auth_requests WHERE id = $1 AND expires_at > $2`
	// DEP-6: set once. A second writer waits for the first and then finds
	// the state set; a state another request holds is a unique violation.
	sqlAttachState = `UPDATE auth_requests SET connector = $2, upstream_state_hash = $3
		WHERE id = $1 AND expires_at > $4 AND upstream_state_hash IS NULL`
	sqlReplaceState = `UPDATE auth_requests SET connector = $2, upstream_state_hash = $4
		WHERE id = $1 AND expires_at > $5 AND upstream_state_hash = $3`
	sqlTakeAuthRequest = `DELETE FROM auth_requests
		WHERE upstream_state_hash = $1 AND expires_at > $2 RETURNING ` + authRequestCols
	sqlGetAuthRequestByState = `SELECT ` + authRequestCols + ` FROM auth_requests
		WHERE upstream_state_hash = $1 AND expires_at > $2`
	sqlDeleteAuthRequest = `DELETE FROM auth_requests WHERE id = $1`
	sqlInsertSession     = `INSERT INTO sessions (hash, user_json, created_at, expires_at)
		VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`
	sqlGetSession    = `SELECT hash, user_json, created_at, expires_at FROM sessions WHERE hash = $1 AND expires_at > $2`
	sqlDeleteSession = `DELETE FROM sessions WHERE hash = $1`
)

func scanAuthRequest(row pgx.Row) (*store.AuthRequest, error) {
	var r store.AuthRequest
	err := row.Scan(&r.ID, &r.ClientID, &r.RedirectURI, byteString{&r.State}, &r.CodeChallenge, &r.Resource,
		jsonText{&r.Scopes}, &r.Connector, &r.UpstreamStateHash, timeCol{&r.CreatedAt}, timeCol{&r.ExpiresAt}, &r.SignIn)
	if err != nil {
		return nil, err
	}
	return &r, nil
}

func (s *Store) CreateAuthRequest(ctx context.Context, r *store.AuthRequest) error {
	scopes, err := encode(r.Scopes)
	if err != nil {
		return fmt.Errorf("postgres: create auth request: %w", err)
	}
	err = inserted(s.pool.Exec(ctx, sqlInsertAuthRequest,
		r.ID, r.ClientID, r.RedirectURI, []byte(r.State), r.CodeChallenge, r.Resource, scopes,
		r.Connector, r.UpstreamStateHash, nanos(r.CreatedAt), nanos(r.ExpiresAt), r.SignIn))
	if err != nil {
		return wrap("create auth request", err)
	}
	return nil
}

func (s *Store) GetAuthRequest(ctx context.Context, id string, now time.Time) (*store.AuthRequest, error) {
	if !storable(id) {
		return nil, wrap("get auth request", store.ErrNotFound)
	}
	r, err := scanAuthRequest(s.pool.QueryRow(ctx, sqlGetAuthRequest, id, nanos(now)))
	if err != nil {
		return nil, wrap("get auth request", err)
	}
	return r, nil
}

// updateState runs an UPDATE of one request's upstream state (attach or
// replace). No row changed means the request is gone or expired
// (ErrNotFound) or its state is not the one the update expects
// (ErrConflict): a second statement, which sees any racing writer's
// commit, tells the two apart.
func (s *Store) updateState(ctx context.Context, id string, now time.Time, q string, args ...any) error {
	if !storable(id) {
		return store.ErrNotFound
	}
	tag, err := s.pool.Exec(ctx, q, args...)
	if err != nil || tag.RowsAffected() > 0 {
		return err
	}
	var live bool
	if err := s.pool.QueryRow(ctx, sqlLiveRequest, id, nanos(now)).Scan(&live); err != nil {
		return err
	}
	return store.ErrConflict
}

func (s *Store) AttachUpstreamState(ctx context.Context, id, connector string, stateHash []byte, now time.Time) error {
	if len(stateHash) == 0 {
		return errors.New("postgres: attach upstream state: empty state hash")
	}
	if err := s.updateState(ctx, id, now, sqlAttachState, id, connector, stateHash, nanos(now)); err != nil {
		return wrap("attach upstream state", err)
	}
	return nil
}

func (s *Store) TakeAuthRequestByUpstreamState(ctx context.Context, stateHash []byte, now time.Time) (*store.AuthRequest, error) {
	r, err := scanAuthRequest(s.pool.QueryRow(ctx, sqlTakeAuthRequest, stateHash, nanos(now)))
	if err != nil {
		return nil, wrap("take auth request", err)
	}
	return r, nil
}

func (s *Store) GetAuthRequestByUpstreamState(ctx context.Context, stateHash []byte, now time.Time) (*store.AuthRequest, error) {
	r, err := scanAuthRequest(s.pool.QueryRow(ctx, sqlGetAuthRequestByState, stateHash, nanos(now)))
	if err != nil {
		return nil, wrap("get auth request by upstream state", err)
	}
	return r, nil
}

func (s *Store) ReplaceUpstreamState(ctx context.Context, id, connector string, oldHash, newHash []byte, now time.Time) error {
	if len(oldHash) == 0 || len(newHash) == 0 {
		return errors.New("postgres: replace upstream state: empty state hash")
	}
	if err := s.updateState(ctx, id, now, sqlReplaceState, id, connector, oldHash, newHash, nanos(now)); err != nil {
		return wrap("replace upstream state", err)
	}
	return nil
}

func (s *Store) DeleteAuthRequest(ctx context.Context, id string) error {
	if !storable(id) {
		return wrap("delete auth request", store.ErrNotFound)
	}
	if err := affected(s.pool.Exec(ctx, sqlDeleteAuthRequest, id)); err != nil {
		return wrap("delete auth request", err)
	}
	return nil
}

func (s *Store) CreateSession(ctx context.Context, ss *store.Session) error {
	user, err := encode(ss.User)
	if err != nil {
		return fmt.Errorf("postgres: create session: %w", err)
	}
	err = inserted(s.pool.Exec(ctx, sqlInsertSession, ss.Hash, user, nanos(ss.CreatedAt), nanos(ss.ExpiresAt)))
	if err != nil {
		return wrap("create session", err)
	}
	return nil
}

func (s *Store) GetSession(ctx context.Context, hash []byte, now time.Time) (*store.Session, error) {
	var ss store.Session
	err := s.pool.QueryRow(ctx, sqlGetSession, hash, nanos(now)).
		Scan(&ss.Hash, jsonText{&ss.User}, timeCol{&ss.CreatedAt}, timeCol{&ss.ExpiresAt})
	if err != nil {
		return nil, wrap("get session", err)
	}
	return &ss, nil
}

// DeleteSession implements store.Store.
func (s *Store) DeleteSession(ctx context.Context, hash []byte) error {
	if err := affected(s.pool.Exec(ctx, sqlDeleteSession, hash)); err != nil {
		return wrap("delete session", err)
	}
	return nil
}
