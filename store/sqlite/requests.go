package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

const authRequestCols = `id, client_id, redirect_uri, state, code_challenge, resource, scopes,
	connector, upstream_state_hash, created_at, expires_at, sign_in`

var (
	sqlInsertAuthRequest = ws(`INSERT INTO auth_requests (` + authRequestCols + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`)
	sqlGetAuthRequest  = rs(`SELECT ` + authRequestCols + ` FROM auth_requests WHERE id = ? AND expires_at > ?`)
	sqlAttachedState   = ws(`SELECT upstream_state_hash IS NOT NULL FROM auth_requests WHERE id = ? AND expires_at > ?`)
	sqlStateTaken      = ws(`SELECT count(*) FROM auth_requests WHERE upstream_state_hash = ?`)
	sqlAttachState     = ws(`UPDATE auth_requests SET connector = ?, upstream_state_hash = ? WHERE id = ?`)
	sqlTakeAuthRequest = ws(`DELETE FROM auth_requests
		WHERE upstream_state_hash = ? AND expires_at > ? RETURNING ` + authRequestCols)
	sqlGetAuthRequestByState = rs(`SELECT ` + authRequestCols + ` FROM auth_requests
		WHERE upstream_state_hash = ? AND expires_at > ?`)
	sqlCurrentState      = ws(`SELECT upstream_state_hash FROM auth_requests WHERE id = ? AND expires_at > ?`)
	sqlDeleteAuthRequest = ws(`DELETE FROM auth_requests WHERE id = ?`)
	sqlInsertSession     = ws(`INSERT INTO sessions (hash, user, created_at, expires_at)
		VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`)
	sqlGetSession    = rs(`SELECT hash, user, created_at, expires_at FROM sessions WHERE hash = ? AND expires_at > ?`)
	sqlDeleteSession = ws(`DELETE FROM sessions WHERE hash = ?`)
)

func scanAuthRequest(row scanner) (*store.AuthRequest, error) {
	var r store.AuthRequest
	err := row.Scan(&r.ID, &r.ClientID, &r.RedirectURI, &r.State, &r.CodeChallenge, &r.Resource,
		jsonText{&r.Scopes}, &r.Connector, blob{&r.UpstreamStateHash}, timeCol{&r.CreatedAt}, timeCol{&r.ExpiresAt}, &r.SignIn)
	if err != nil {
		return nil, err
	}
	return &r, nil
}

func (s *Store) CreateAuthRequest(ctx context.Context, r *store.AuthRequest) error {
	scopes, err := encode(r.Scopes)
	if err != nil {
		return fmt.Errorf("sqlite: create auth request: %w", err)
	}
	err = s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return inserted(s.txExec(ctx, tx, sqlInsertAuthRequest,
			r.ID, r.ClientID, r.RedirectURI, r.State, r.CodeChallenge, r.Resource, scopes,
			r.Connector, r.UpstreamStateHash, nanos(r.CreatedAt), nanos(r.ExpiresAt), r.SignIn))
	})
	if err != nil {
		return fmt.Errorf("sqlite: create auth request: %w", err)
	}
	return nil
}

func (s *Store) GetAuthRequest(ctx context.Context, id string, now time.Time) (*store.AuthRequest, error) {
	r, err := scanAuthRequest(s.row(ctx, sqlGetAuthRequest, id, nanos(now)))
	if err != nil {
		return nil, wrap("get auth request", err)
	}
	return r, nil
}

func (s *Store) AttachUpstreamState(ctx context.Context, id, connector string, stateHash []byte, now time.Time) error {
	if len(stateHash) == 0 {
		return errors.New("sqlite: attach upstream state: empty state hash")
	}
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var attached bool
		err := s.txRow(ctx, tx, sqlAttachedState, id, nanos(now)).Scan(&attached)
		if err != nil {
			return err
		}
		if attached {
			return store.ErrConflict // DEP-6: the state is set once
		}
		var taken int
		if err := s.txRow(ctx, tx, sqlStateTaken, stateHash).Scan(&taken); err != nil {
			return err
		}
		if taken > 0 {
			return store.ErrConflict
		}
		_, err = s.txExec(ctx, tx, sqlAttachState, connector, stateHash, id)
		return err
	})
	if err != nil {
		return wrap("attach upstream state", err)
	}
	return nil
}

func (s *Store) TakeAuthRequestByUpstreamState(ctx context.Context, stateHash []byte, now time.Time) (*store.AuthRequest, error) {
	var r *store.AuthRequest
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		r, err = scanAuthRequest(s.txRow(ctx, tx, sqlTakeAuthRequest, stateHash, nanos(now)))
		return err
	})
	if err != nil {
		return nil, wrap("take auth request", err)
	}
	return r, nil
}

func (s *Store) GetAuthRequestByUpstreamState(ctx context.Context, stateHash []byte, now time.Time) (*store.AuthRequest, error) {
	r, err := scanAuthRequest(s.row(ctx, sqlGetAuthRequestByState, stateHash, nanos(now)))
	if err != nil {
		return nil, wrap("get auth request by upstream state", err)
	}
	return r, nil
}

func (s *Store) ReplaceUpstreamState(ctx context.Context, id, connector string, oldHash, newHash []byte, now time.Time) error {
	if len(oldHash) == 0 || len(newHash) == 0 {
		return errors.New("sqlite: replace upstream state: empty state hash")
	}
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var current []byte
		if err := s.txRow(ctx, tx, sqlCurrentState, id, nanos(now)).Scan(blob{&current}); err != nil {
			return err
		}
		if !bytes.Equal(current, oldHash) {
			return store.ErrConflict // another caller replaced it first
		}
		var taken int
		if err := s.txRow(ctx, tx, sqlStateTaken, newHash).Scan(&taken); err != nil {
			return err
		}
		if taken > 0 {
			return store.ErrConflict
		}
		_, err := s.txExec(ctx, tx, sqlAttachState, connector, newHash, id)
		return err
	})
	if err != nil {
		return wrap("replace upstream state", err)
	}
	return nil
}

func (s *Store) DeleteAuthRequest(ctx context.Context, id string) error {
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return affected(s.txExec(ctx, tx, sqlDeleteAuthRequest, id))
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete auth request: %w", err)
	}
	return nil
}

func (s *Store) CreateSession(ctx context.Context, ss *store.Session) error {
	user, err := encode(ss.User)
	if err != nil {
		return fmt.Errorf("sqlite: create session: %w", err)
	}
	err = s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return inserted(s.txExec(ctx, tx, sqlInsertSession,
			ss.Hash, user, nanos(ss.CreatedAt), nanos(ss.ExpiresAt)))
	})
	if err != nil {
		return fmt.Errorf("sqlite: create session: %w", err)
	}
	return nil
}

func (s *Store) GetSession(ctx context.Context, hash []byte, now time.Time) (*store.Session, error) {
	var ss store.Session
	err := s.row(ctx, sqlGetSession, hash, nanos(now)).
		Scan(blob{&ss.Hash}, jsonText{&ss.User}, timeCol{&ss.CreatedAt}, timeCol{&ss.ExpiresAt})
	if err != nil {
		return nil, wrap("get session", err)
	}
	return &ss, nil
}

// DeleteSession implements store.Store.
func (s *Store) DeleteSession(ctx context.Context, hash []byte) error {
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return affected(s.txExec(ctx, tx, sqlDeleteSession, hash))
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete session: %w", err)
	}
	return nil
}
