package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mcpgate/mcpgate/store"
)

const codeCols = `hash, client_id, redirect_uri, code_challenge, resource, scopes, user_json, grant_id, expires_at, used_at`

// asyncCommit, joined into a statement, makes its own transaction commit
// without waiting for the WAL flush (SEC-86), in the same round trip; the
// setting is the transaction's (set_config's is_local) and never outlives
// it on the pooled connection. Only a code's two statements use it:
//
//   - CreateCode: a code lost by a crash fails one flow at /token with
//     invalid_grant and issues nothing; the client starts the flow again.
//   - ConsumeCode: the exchange that consumed the code answers only after
//     CreateGrant, whose commit waits for the WAL flush, and a flush covers
//     every record before it, from any connection or replica: the
//     consumption is durable before any token is answered. A consumption
//     lost by a crash issued nothing (the crash came before CreateGrant's
//     commit), so the code, still within its minute, can be exchanged once.
//
// Visibility is not affected: a consumption is seen by every other
// session, on every replica, as soon as it commits (PKCE-3).
const asyncCommit = `(SELECT set_config('synchronous_commit', 'off', true)) AS async_commit`

const (
	sqlInsertCode = `INSERT INTO codes (` + codeCols + `)
		SELECT $1::bytea, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text, $8::text, $9::bigint, $10::bigint
		FROM ` + asyncCommit + ` ON CONFLICT DO NOTHING`
	// PKCE-3: of racing consumers the first marks the code; the others
	// wait for its commit, re-check used_at and match nothing. A code of
	// another challenge is not marked (SEC-176).
	sqlUseCode = `UPDATE codes SET used_at = $1 FROM ` + asyncCommit + `
		WHERE hash = $2 AND expires_at > $1 AND used_at = 0 AND code_challenge = $3 RETURNING ` + codeCols
	sqlGetCode = `SELECT ` + codeCols + ` FROM codes WHERE hash = $1 AND expires_at > $2`
)

func scanCode(row pgx.Row) (*store.Code, error) {
	var c store.Code
	err := row.Scan(&c.Hash, &c.ClientID, &c.RedirectURI, &c.CodeChallenge, &c.Resource,
		jsonText{&c.Scopes}, jsonText{&c.User}, &c.GrantID, timeCol{&c.ExpiresAt}, timeCol{&c.UsedAt})
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// codeArgs are sqlInsertCode's arguments for c.
func codeArgs(c *store.Code) ([]any, error) {
	scopes, err := encode(c.Scopes)
	if err != nil {
		return nil, err
	}
	user, err := encode(c.User)
	if err != nil {
		return nil, err
	}
	return []any{c.Hash, c.ClientID, c.RedirectURI, c.CodeChallenge, c.Resource, scopes, user, c.GrantID,
		nanos(c.ExpiresAt), nanos(c.UsedAt)}, nil
}

func (s *Store) CreateCode(ctx context.Context, c *store.Code) error {
	args, err := codeArgs(c)
	if err != nil {
		return fmt.Errorf("postgres: create code: %w", err)
	}
	if err := inserted(s.pool.Exec(ctx, sqlInsertCode, args...)); err != nil {
		return wrap("create code", err)
	}
	return nil
}

func (s *Store) ConsumeCode(ctx context.Context, hash []byte, challenge string, now time.Time) (*store.Code, error) {
	for range raceRetries {
		c, err := scanCode(s.pool.QueryRow(ctx, sqlUseCode, nanos(now), hash, challenge))
		if !errors.Is(err, pgx.ErrNoRows) {
			if err != nil {
				return nil, wrap("consume code", err)
			}
			return c, nil
		}
		// Unknown, expired, or used: this read sees the commit of whoever
		// used it, since the UPDATE waited for it.
		c, err = scanCode(s.pool.QueryRow(ctx, sqlGetCode, hash, nanos(now)))
		if err != nil {
			return nil, wrap("consume code", err)
		}
		if !c.UsedAt.IsZero() {
			return c, wrap("consume code", store.ErrCodeReused) // PKCE-3: c names the grant to revoke
		}
		if c.CodeChallenge != challenge {
			return c, wrap("consume code", store.ErrCodeMismatch) // SEC-176: left unused
		}
	}
	return nil, errors.New("postgres: consume code: the code changed under every attempt")
}

const grantCols = `id, client_id, user_json, resource, scopes, created_at, revoked_at`

func scanGrant(row pgx.Row) (*store.Grant, error) {
	var g store.Grant
	err := row.Scan(&g.ID, &g.ClientID, jsonText{&g.User}, &g.Resource, jsonText{&g.Scopes},
		timeCol{&g.CreatedAt}, timeCol{&g.RevokedAt})
	if err != nil {
		return nil, err
	}
	return &g, nil
}

// A refresh token and its grant, read in one statement (one snapshot). The
// grant's columns are renamed so that sqlRotate's CTE has unique names.
const refreshGrantCols = `r.hash, r.grant_id, r.generation, r.scopes, r.created_at, r.expires_at, r.rotated_at, r.successor,
	g.id AS g_id, g.client_id AS g_client_id, g.user_json AS g_user_json, g.resource AS g_resource,
	g.scopes AS g_scopes, g.created_at AS g_created_at, g.revoked_at AS g_revoked_at`

func scanRefreshGrant(row pgx.Row) (*store.RefreshToken, *store.Grant, error) {
	var t store.RefreshToken
	var g store.Grant
	err := row.Scan(&t.Hash, &t.GrantID, &t.Generation, jsonText{&t.Scopes},
		timeCol{&t.CreatedAt}, timeCol{&t.ExpiresAt}, timeCol{&t.RotatedAt}, &t.Successor,
		&g.ID, &g.ClientID, jsonText{&g.User}, &g.Resource, jsonText{&g.Scopes},
		timeCol{&g.CreatedAt}, timeCol{&g.RevokedAt})
	if err != nil {
		return nil, nil, err
	}
	return &t, &g, nil
}

const (
	// A grant, refused for a disabled local account ($8 names it, "" for
	// none): the account's row is read FOR SHARE, so that a disabling in
	// progress is waited for and seen, and one that comes after waits for
	// this grant, which its revocation then sees (DisableLocalUser revokes
	// in a statement of its own, after it has the row). A grant id taken
	// already inserts nothing.
	grantUnlessDisabled = `WITH u AS (
		SELECT disabled_at FROM local_users WHERE name = $8::text FOR SHARE
	), g AS (
		INSERT INTO grants (` + grantCols + `)
		SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::bigint, $7::bigint
		WHERE NOT EXISTS (SELECT 1 FROM u WHERE disabled_at <> 0)
		ON CONFLICT DO NOTHING RETURNING id
	)`
	sqlInsertGrant = grantUnlessDisabled + `
	SELECT EXISTS (SELECT 1 FROM u WHERE disabled_at <> 0), EXISTS (SELECT 1 FROM g)`
	// A grant and its first refresh token in one statement: a refresh
	// hash taken already is a unique violation that undoes the grant too.
	sqlInsertGrantRefresh = grantUnlessDisabled + `, r AS (
		INSERT INTO refresh_tokens (hash, grant_id, generation, scopes, created_at, expires_at, rotated_at, successor)
		SELECT $9::bytea, id, $10::integer, $11::text, $12::bigint, $13::bigint, $14::bigint, $15::bytea FROM g
		RETURNING 1
	)
	SELECT EXISTS (SELECT 1 FROM u WHERE disabled_at <> 0), EXISTS (SELECT 1 FROM r)`
	sqlGetGrant   = `SELECT ` + grantCols + ` FROM grants WHERE id = $1`
	sqlGetRefresh = `SELECT ` + refreshGrantCols + ` FROM refresh_tokens AS r JOIN grants AS g ON g.id = r.grant_id
		WHERE r.hash = $1 AND (r.expires_at = 0 OR r.expires_at > $2)`
	// RT-1, the winning path in one statement: mark the live, unrotated
	// token of a live grant rotated, with its successor, and insert the
	// next token. Racing rotations of one token queue on its row and
	// re-check rotated_at: one matches. A next hash taken already is a
	// unique violation that undoes the mark.
	sqlRotate = `WITH old AS (
		UPDATE refresh_tokens AS r SET rotated_at = $2, successor = $3
		FROM grants AS g
		WHERE r.hash = $1 AND r.rotated_at = 0 AND (r.expires_at = 0 OR r.expires_at > $2)
			AND g.id = r.grant_id AND g.revoked_at = 0
		RETURNING ` + refreshGrantCols + `
	), next AS (
		INSERT INTO refresh_tokens (hash, grant_id, generation, scopes, created_at, expires_at, rotated_at, successor)
		SELECT $4::bytea, grant_id, generation + 1, scopes, $5::bigint, $6::bigint, $7::bigint, $8::bytea FROM old
	)
	SELECT * FROM old`
	// RT-1: reuse revokes the family, once; the first revocation's time
	// stands. Both revoking statements announce the grant on
	// revokedChannel, delivered when they commit (SEC-80).
	sqlRevokeFamily = `WITH r AS (UPDATE grants SET revoked_at = $2 WHERE id = $1 AND revoked_at = 0 RETURNING id)
		SELECT pg_notify('` + revokedChannel + `', id) FROM r`
	sqlRevokeGrant = `WITH r AS (
		UPDATE grants SET revoked_at = CASE revoked_at WHEN 0 THEN $2 ELSE revoked_at END WHERE id = $1 RETURNING id
	)
	SELECT pg_notify('` + revokedChannel + `', id) FROM r`
	// COLLATE "C": byte order whatever the database's collation, as the
	// sqlite store lists them.
	sqlRevokedSince = `SELECT id FROM grants WHERE revoked_at <> 0 AND revoked_at >= $1 ORDER BY id COLLATE "C"`
)

func (s *Store) CreateGrant(ctx context.Context, g *store.Grant, rt *store.RefreshToken) error {
	if rt != nil && rt.GrantID != "" && rt.GrantID != g.ID {
		return fmt.Errorf("postgres: create grant: refresh token names grant %q, not %q", rt.GrantID, g.ID)
	}
	user, err := encode(g.User)
	if err != nil {
		return fmt.Errorf("postgres: create grant: %w", err)
	}
	scopes, err := encode(g.Scopes)
	if err != nil {
		return fmt.Errorf("postgres: create grant: %w", err)
	}
	local, _ := store.LiveLocalAccount(g) // "" names no account
	args := []any{g.ID, g.ClientID, user, g.Resource, scopes, nanos(g.CreatedAt), nanos(g.RevokedAt), local}
	q := sqlInsertGrant
	if rt != nil {
		rtScopes, err := encode(rt.Scopes)
		if err != nil {
			return fmt.Errorf("postgres: create grant: %w", err)
		}
		q = sqlInsertGrantRefresh
		args = append(args, rt.Hash, rt.Generation, rtScopes, nanos(rt.CreatedAt), nanos(rt.ExpiresAt), nanos(rt.RotatedAt), rt.Successor)
	}
	var disabled, done bool
	switch err := s.pool.QueryRow(ctx, q, args...).Scan(&disabled, &done); {
	case err != nil:
		return wrap("create grant", err)
	case disabled:
		return wrap("create grant", store.ErrAccountDisabled)
	case !done:
		return wrap("create grant", store.ErrConflict)
	}
	return nil
}

func (s *Store) GetGrant(ctx context.Context, id string) (*store.Grant, error) {
	if !storable(id) {
		return nil, wrap("get grant", store.ErrNotFound)
	}
	g, err := scanGrant(s.pool.QueryRow(ctx, sqlGetGrant, id))
	if err != nil {
		return nil, wrap("get grant", err)
	}
	return g, nil
}

// RotateRefresh fills in next.GrantID, next.Generation and next.Scopes,
// which the caller cannot know before the old token is looked up.
func (s *Store) RotateRefresh(ctx context.Context, oldHash []byte, next *store.RefreshToken, successor []byte, now time.Time, grace time.Duration) (*store.Grant, *store.RefreshToken, error) {
	for range raceRetries {
		old, g, err := scanRefreshGrant(s.pool.QueryRow(ctx, sqlRotate, oldHash, nanos(now), successor,
			next.Hash, nanos(next.CreatedAt), nanos(next.ExpiresAt), nanos(next.RotatedAt), next.Successor))
		if err == nil {
			next.GrantID = old.GrantID
			next.Generation = old.Generation + 1
			next.Scopes = append([]string(nil), old.Scopes...)
			return g, old, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return nil, nil, wrap("rotate refresh", err)
		}
		// Unknown, expired, revoked or rotated. This read sees the
		// commit of a racing rotation, which the UPDATE waited for.
		old, g, err = scanRefreshGrant(s.pool.QueryRow(ctx, sqlGetRefresh, oldHash, nanos(now)))
		switch {
		case err != nil:
			return nil, nil, wrap("rotate refresh", err)
		case !g.RevokedAt.IsZero():
			return nil, nil, wrap("rotate refresh", store.ErrNotFound) // a revoked family is gone
		case old.RotatedAt.IsZero():
			continue
		case grace > 0 && now.Before(old.RotatedAt.Add(grace)):
			// A retry or a duplicate in flight: the caller answers with
			// the same pair.
			return g, old, wrap("rotate refresh", store.ErrRefreshRotated)
		}
		// RT-1: a rotated token came back, so someone holds a copy.
		// rotated_at never changes once set, so the verdict stands; the
		// revocation is conditional, and one that finds the family
		// revoked already by a racing reuse reports it gone.
		if err := affected(s.pool.Exec(ctx, sqlRevokeFamily, g.ID, nanos(now))); err != nil {
			return nil, nil, wrap("rotate refresh", err)
		}
		g.RevokedAt = fromNanos(nanos(now))
		return g, old, wrap("rotate refresh", store.ErrRefreshReused)
	}
	return nil, nil, errors.New("postgres: rotate refresh: the token changed under every attempt")
}

func (s *Store) GetRefresh(ctx context.Context, hash []byte, now time.Time) (*store.RefreshToken, *store.Grant, error) {
	t, g, err := scanRefreshGrant(s.pool.QueryRow(ctx, sqlGetRefresh, hash, nanos(now)))
	if err != nil {
		return nil, nil, wrap("get refresh", err)
	}
	return t, g, nil
}

// sqlGetRefreshSession is sqlGetRefresh with the grant's upstream session,
// if any, in the same snapshot: a refresh's one read (RT-3).
const sqlGetRefreshSession = `SELECT ` + refreshGrantCols + `,
		u.connector, u.user_json, u.token, u.checked_at
	FROM refresh_tokens AS r JOIN grants AS g ON g.id = r.grant_id
	LEFT JOIN upstream_sessions AS u ON u.grant_id = g.id
	WHERE r.hash = $1 AND (r.expires_at = 0 OR r.expires_at > $2)`

// GetRefreshSession implements store.RefreshSessionGetter.
func (s *Store) GetRefreshSession(ctx context.Context, hash []byte, now time.Time) (*store.RefreshToken, *store.Grant, *store.UpstreamSession, error) {
	var t store.RefreshToken
	var g store.Grant
	var connector, user *string
	var token []byte
	var checked *int64
	err := s.pool.QueryRow(ctx, sqlGetRefreshSession, hash, nanos(now)).Scan(&t.Hash, &t.GrantID, &t.Generation, jsonText{&t.Scopes},
		timeCol{&t.CreatedAt}, timeCol{&t.ExpiresAt}, timeCol{&t.RotatedAt}, &t.Successor,
		&g.ID, &g.ClientID, jsonText{&g.User}, &g.Resource, jsonText{&g.Scopes},
		timeCol{&g.CreatedAt}, timeCol{&g.RevokedAt},
		&connector, &user, &token, &checked)
	if err != nil {
		return nil, nil, nil, wrap("get refresh", err)
	}
	if connector == nil {
		return &t, &g, nil, nil
	}
	u := &store.UpstreamSession{GrantID: g.ID, Connector: *connector, Token: token, CheckedAt: fromNanos(*checked)}
	if err := (jsonText{&u.User}).Scan(*user); err != nil {
		return nil, nil, nil, fmt.Errorf("postgres: get refresh: upstream session: %w", err)
	}
	return &t, &g, u, nil
}

func (s *Store) RevokeGrant(ctx context.Context, id string, now time.Time) error {
	if !storable(id) {
		return wrap("revoke grant", store.ErrNotFound)
	}
	if err := affected(s.pool.Exec(ctx, sqlRevokeGrant, id, nanos(now))); err != nil {
		return wrap("revoke grant", err)
	}
	return nil
}

func (s *Store) RevokedGrantsSince(ctx context.Context, since time.Time) ([]string, error) {
	rows, err := s.pool.Query(ctx, sqlRevokedSince, nanos(since))
	if err != nil {
		return nil, wrap("revoked grants", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, wrap("revoked grants", err)
	}
	return ids, nil
}
