package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

const codeCols = `hash, client_id, redirect_uri, code_challenge, resource, scopes, user, grant_id, expires_at, used_at`

var (
	sqlInsertCode = ws(`INSERT INTO codes (` + codeCols + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`)
	// The common case of ConsumeCode in one statement; only a miss needs
	// the second look, to tell a reused code, or one of another
	// challenge, from an unknown one.
	sqlUseCode = ws(`UPDATE codes SET used_at = ?1
		WHERE hash = ?2 AND expires_at > ?1 AND used_at = 0 AND code_challenge = ?3 RETURNING ` + codeCols)
	sqlGetCodeW = ws(`SELECT ` + codeCols + ` FROM codes WHERE hash = ? AND expires_at > ?`)
)

func scanCode(row scanner) (*store.Code, error) {
	var c store.Code
	err := row.Scan(blob{&c.Hash}, &c.ClientID, &c.RedirectURI, &c.CodeChallenge, &c.Resource,
		jsonText{&c.Scopes}, jsonText{&c.User}, &c.GrantID, timeCol{&c.ExpiresAt}, timeCol{&c.UsedAt})
	if err != nil {
		return nil, err
	}
	return &c, nil
}

func (s *Store) CreateCode(ctx context.Context, c *store.Code) error {
	scopes, err := encode(c.Scopes)
	if err != nil {
		return fmt.Errorf("sqlite: create code: %w", err)
	}
	user, err := encode(c.User)
	if err != nil {
		return fmt.Errorf("sqlite: create code: %w", err)
	}
	err = s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return inserted(s.txExec(ctx, tx, sqlInsertCode,
			c.Hash, c.ClientID, c.RedirectURI, c.CodeChallenge, c.Resource, scopes, user, c.GrantID,
			nanos(c.ExpiresAt), nanos(c.UsedAt)))
	})
	if err != nil {
		return fmt.Errorf("sqlite: create code: %w", err)
	}
	return nil
}

func (s *Store) ConsumeCode(ctx context.Context, hash []byte, challenge string, now time.Time) (*store.Code, error) {
	var c *store.Code
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		c, err = scanCode(s.txRow(ctx, tx, sqlUseCode, nanos(now), hash, challenge))
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		c, err = scanCode(s.txRow(ctx, tx, sqlGetCodeW, hash, nanos(now)))
		if err != nil {
			return err
		}
		if c.UsedAt.IsZero() {
			return store.ErrCodeMismatch // SEC-176: left unused
		}
		return store.ErrCodeReused // PKCE-3: c goes back so the caller can revoke its grant
	})
	if errors.Is(err, store.ErrCodeReused) || errors.Is(err, store.ErrCodeMismatch) {
		return c, wrap("consume code", err)
	}
	if err != nil {
		return nil, wrap("consume code", err)
	}
	return c, nil
}

const grantCols = `id, client_id, user, resource, scopes, created_at, revoked_at`

func scanGrant(row scanner) (*store.Grant, error) {
	var g store.Grant
	err := row.Scan(&g.ID, &g.ClientID, jsonText{&g.User}, &g.Resource, jsonText{&g.Scopes},
		timeCol{&g.CreatedAt}, timeCol{&g.RevokedAt})
	if err != nil {
		return nil, err
	}
	return &g, nil
}

// refreshCols are the columns an INSERT writes; a SELECT reads the
// successor from refresh_successors as well (see refreshGrantCols).
const refreshCols = `hash, grant_id, generation, scopes, created_at, expires_at, rotated_at, successor`

// scanRefreshGrant scans a row of refreshGrantCols.
func scanRefreshGrant(row scanner) (*store.RefreshToken, *store.Grant, error) {
	var t store.RefreshToken
	var g store.Grant
	err := row.Scan(blob{&t.Hash}, &t.GrantID, &t.Generation, jsonText{&t.Scopes},
		timeCol{&t.CreatedAt}, timeCol{&t.ExpiresAt}, timeCol{&t.RotatedAt}, blob{&t.Successor},
		&g.ID, &g.ClientID, jsonText{&g.User}, &g.Resource, jsonText{&g.Scopes},
		timeCol{&g.CreatedAt}, timeCol{&g.RevokedAt})
	if err != nil {
		return nil, nil, err
	}
	return &t, &g, nil
}

// A refresh token and its grant, in one statement (one snapshot). The
// successor is in refresh_successors, or for a token rotated before
// migration 0003 in refresh_tokens itself; coalesce keeps an empty one
// apart from none.
const refreshGrantCols = `r.hash, r.grant_id, r.generation, r.scopes, r.created_at, r.expires_at, r.rotated_at,
	coalesce(s.successor, r.successor),
	g.id, g.client_id, g.user, g.resource, g.scopes, g.created_at, g.revoked_at`

const selectLiveRefresh = `SELECT ` + refreshGrantCols + ` FROM refresh_tokens AS r
	JOIN grants AS g ON g.id = r.grant_id
	LEFT JOIN refresh_successors AS s ON s.id = r.successor_id
	WHERE r.hash = ? AND (r.expires_at = 0 OR r.expires_at > ?)`

var (
	sqlInsertGrant = ws(`INSERT INTO grants (` + grantCols + `)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`)
	sqlLocalDisabled = ws(`SELECT disabled_at FROM local_users WHERE name = ?`)
	sqlInsertRefresh = ws(`INSERT INTO refresh_tokens (` + refreshCols + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`)
	sqlGetGrant     = rs(`SELECT ` + grantCols + ` FROM grants WHERE id = ?`)
	sqlRotateLookup = ws(selectLiveRefresh)
	sqlGetRefresh   = rs(selectLiveRefresh)
	sqlAddSuccessor = ws(`INSERT INTO refresh_successors (successor) VALUES (?)`)
	sqlMarkRotated  = ws(`UPDATE refresh_tokens SET rotated_at = ?, successor_id = ? WHERE hash = ?`)
	sqlRevokeFamily = ws(`UPDATE grants SET revoked_at = ? WHERE id = ? AND revoked_at = 0`)
	sqlRevokedSince = rs(`SELECT id FROM grants WHERE revoked_at != 0 AND revoked_at >= ? ORDER BY id`)
	// The first revocation's time stands.
	sqlRevokeGrant = ws(`UPDATE grants SET revoked_at = CASE revoked_at WHEN 0 THEN ? ELSE revoked_at END
		WHERE id = ?`)
)

func (s *Store) insertRefresh(ctx context.Context, tx *sql.Tx, t *store.RefreshToken, grantID string, generation int, scopes []string) error {
	enc, err := encode(scopes)
	if err != nil {
		return err
	}
	return inserted(s.txExec(ctx, tx, sqlInsertRefresh,
		t.Hash, grantID, generation, enc, nanos(t.CreatedAt), nanos(t.ExpiresAt), nanos(t.RotatedAt), t.Successor))
}

func (s *Store) CreateGrant(ctx context.Context, g *store.Grant, rt *store.RefreshToken) error {
	if rt != nil && rt.GrantID != "" && rt.GrantID != g.ID {
		return fmt.Errorf("sqlite: create grant: refresh token names grant %q, not %q", rt.GrantID, g.ID)
	}
	user, err := encode(g.User)
	if err != nil {
		return fmt.Errorf("sqlite: create grant: %w", err)
	}
	scopes, err := encode(g.Scopes)
	if err != nil {
		return fmt.Errorf("sqlite: create grant: %w", err)
	}
	err = s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		// In the write transaction, which DisableLocalUser's queues behind
		// or ahead of: the account is read as the disabling left it.
		if name, ok := store.LiveLocalAccount(g); ok {
			var disabled int64
			switch err := s.txRow(ctx, tx, sqlLocalDisabled, name).Scan(&disabled); {
			case err == nil && disabled != 0:
				return store.ErrAccountDisabled
			case err != nil && !errors.Is(err, sql.ErrNoRows):
				return err
			}
		}
		if err := inserted(s.txExec(ctx, tx, sqlInsertGrant,
			g.ID, g.ClientID, user, g.Resource, scopes, nanos(g.CreatedAt), nanos(g.RevokedAt))); err != nil {
			return err
		}
		if rt == nil {
			return nil
		}
		return s.insertRefresh(ctx, tx, rt, g.ID, rt.Generation, rt.Scopes)
	})
	if err != nil {
		return fmt.Errorf("sqlite: create grant: %w", err)
	}
	return nil
}

func (s *Store) GetGrant(ctx context.Context, id string) (*store.Grant, error) {
	g, err := scanGrant(s.row(ctx, sqlGetGrant, id))
	if err != nil {
		return nil, wrap("get grant", err)
	}
	return g, nil
}

// RotateRefresh fills in next.GrantID, next.Generation and next.Scopes, which the caller
// cannot know before the old token is looked up.
func (s *Store) RotateRefresh(ctx context.Context, oldHash []byte, next *store.RefreshToken, successor []byte, now time.Time, grace time.Duration) (*store.Grant, *store.RefreshToken, error) {
	var (
		g   *store.Grant
		old *store.RefreshToken
	)
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		old, g, err = scanRefreshGrant(s.txRow(ctx, tx, sqlRotateLookup, oldHash, nanos(now)))
		if err != nil {
			return err
		}
		if !g.RevokedAt.IsZero() {
			return sql.ErrNoRows // a revoked family is gone
		}
		if !old.RotatedAt.IsZero() {
			if grace > 0 && now.Before(old.RotatedAt.Add(grace)) {
				// A retry or a duplicate in flight: the caller answers
				// with the same pair.
				return store.ErrRefreshRotated
			}
			// RT-1: a rotated token came back, so someone holds a copy.
			// Revoke the family and keep that even though we report an error.
			if _, err := s.txExec(ctx, tx, sqlRevokeFamily, nanos(now), g.ID); err != nil {
				return err
			}
			g.RevokedAt = fromNanos(nanos(now))
			return errCommitted{store.ErrRefreshReused}
		}
		// RFC 6749 §6: the new refresh token has the old one's scope.
		if err := s.insertRefresh(ctx, tx, next, old.GrantID, old.Generation+1, old.Scopes); err != nil {
			return err
		}
		var successorID any // NULL: no successor
		if successor != nil {
			res, err := s.txExec(ctx, tx, sqlAddSuccessor, successor)
			if err != nil {
				return err
			}
			if successorID, err = res.LastInsertId(); err != nil {
				return err
			}
		}
		if _, err := s.txExec(ctx, tx, sqlMarkRotated, nanos(now), successorID, oldHash); err != nil {
			return err
		}
		old.RotatedAt = fromNanos(nanos(now))
		old.Successor = append([]byte(nil), successor...)
		return nil
	})
	if errors.Is(err, store.ErrRefreshReused) || errors.Is(err, store.ErrRefreshRotated) {
		return g, old, wrap("rotate refresh", err)
	}
	if err != nil {
		return nil, nil, wrap("rotate refresh", err)
	}
	next.GrantID = old.GrantID
	next.Generation = old.Generation + 1
	next.Scopes = append([]string(nil), old.Scopes...)
	return g, old, nil
}

func (s *Store) GetRefresh(ctx context.Context, hash []byte, now time.Time) (*store.RefreshToken, *store.Grant, error) {
	t, g, err := scanRefreshGrant(s.row(ctx, sqlGetRefresh, hash, nanos(now)))
	if err != nil {
		return nil, nil, wrap("get refresh", err)
	}
	return t, g, nil
}

func (s *Store) RevokedGrantsSince(ctx context.Context, since time.Time) ([]string, error) {
	rows, err := s.rows(ctx, sqlRevokedSince, nanos(since))
	if err != nil {
		return nil, wrap("revoked grants", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, wrap("revoked grants", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("revoked grants", err)
	}
	return ids, nil
}

func (s *Store) RevokeGrant(ctx context.Context, id string, now time.Time) error {
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return affected(s.txExec(ctx, tx, sqlRevokeGrant, nanos(now), id))
	})
	if err != nil {
		return fmt.Errorf("sqlite: revoke grant: %w", err)
	}
	return nil
}
