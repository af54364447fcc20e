package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mcpgate/mcpgate/store"
)

const clientCols = `id, secret_hash, name, redirect_uris, grant_types, response_types,
	token_endpoint_auth_method, application_type, scope, client_uri, logo_uri, created_at, last_used_at`

const (
	sqlInsertClient = `INSERT INTO clients (` + clientCols + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT DO NOTHING`
	sqlGetClient  = `SELECT ` + clientCols + ` FROM clients WHERE id = $1`
	sqlPutConsent = `INSERT INTO consents (user_id, client_id, resource, scopes, redirect_uris, created_at) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (user_id, client_id, resource) DO UPDATE SET scopes = excluded.scopes, redirect_uris = excluded.redirect_uris,
			created_at = excluded.created_at`
	sqlGetConsent = `SELECT scopes, redirect_uris, created_at FROM consents WHERE user_id = $1 AND client_id = $2 AND resource = $3`
	// SEC-155: with the approvals, the codes issued under them not yet
	// redeemed; and the grant of a code spent whose grant is not stored
	// yet, a redemption under way, stored revoked, so that its
	// CreateGrant conflicts (one stored concurrently makes this insert
	// wait for it, then skip it, and EndClientGrants revokes it). The
	// codes are read locked (l): a ConsumeCode that commits meanwhile is
	// waited for and its code read as spent, where the statement's
	// snapshot would show it unused and fence nothing.
	sqlDeleteConsent = `WITH l AS (SELECT hash, grant_id, client_id, user_json, resource, scopes, used_at FROM codes
		WHERE client_id = $2 AND (user_json::jsonb)->>'sub' = $1 FOR UPDATE),
	c AS (DELETE FROM codes WHERE hash IN (SELECT hash FROM l WHERE used_at = 0)),
	f AS (INSERT INTO grants (` + grantCols + `)
		SELECT grant_id, client_id, user_json, resource, scopes, used_at, used_at FROM l WHERE used_at <> 0
		ON CONFLICT DO NOTHING)
	DELETE FROM consents WHERE user_id = $1 AND client_id = $2`
	// SEC-93: an existing account's disabled_at is never written here.
	// SEC-130: the account's sessions end when its password hash or groups
	// change; the DELETE's subquery sees the row as it was before the
	// statement.
	sqlPutLocalUser = `WITH s AS (DELETE FROM sessions WHERE (user_json::jsonb)->>'sub' = 'local:' || $1::text
		AND EXISTS (SELECT 1 FROM local_users WHERE name = $1 AND (password_hash IS DISTINCT FROM $2
			OR coalesce(nullif(groups, 'null'), '[]') <> coalesce(nullif($3::text, 'null'), '[]'))))
	INSERT INTO local_users (name, password_hash, groups, created_at, disabled_at, configured) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash, groups = excluded.groups, created_at = excluded.created_at,
			configured = excluded.configured`
	sqlCreateLocalUser = `INSERT INTO local_users (name, password_hash, groups, created_at, disabled_at, configured) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (name) DO NOTHING`
	sqlGetLocalUser     = `SELECT password_hash, groups, created_at, disabled_at, configured FROM local_users WHERE name = $1`
	sqlCountLocalUsers  = `SELECT count(*) FROM local_users`
	sqlInsertSigningKey = `INSERT INTO signing_keys (id, algorithm, private, public, created_at, retired_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`
	sqlListSigningKeys = `SELECT id, algorithm, private, public, created_at, retired_at
		FROM signing_keys ORDER BY created_at, seq`
)

// SEC-14: a client's last use, and the deletion of the long unused.
const (
	sqlTouchClient = `UPDATE clients SET last_used_at = greatest(last_used_at, $2) WHERE id = $1`
	// One statement picks and deletes a batch. FOR UPDATE makes a client
	// touched meanwhile (TouchClient commits first) be re-checked against
	// its new last use and kept; a touch that comes after finds it gone.
	// The expression is the one clients_used_at indexes.
	sqlDeleteUnusedClients = `WITH doomed AS (
		DELETE FROM clients WHERE id IN (
			SELECT id FROM clients AS c
			WHERE greatest(c.created_at, c.last_used_at) < $1
			AND NOT EXISTS (SELECT 1 FROM codes WHERE client_id = c.id AND used_at = 0 AND expires_at > $2)
			AND NOT EXISTS (SELECT 1 FROM grants AS g JOIN refresh_tokens AS rt ON rt.grant_id = g.id
				WHERE g.client_id = c.id AND g.revoked_at = 0 AND rt.rotated_at = 0 AND (rt.expires_at = 0 OR rt.expires_at > $2))
			LIMIT $3
			FOR UPDATE OF c)
		RETURNING id
	), gone AS (
		DELETE FROM consents WHERE client_id IN (SELECT id FROM doomed)
	)
	SELECT count(*) FROM doomed`
)

func (s *Store) CreateClient(ctx context.Context, c *store.Client) error {
	redirects, err1 := encode(c.RedirectURIs)
	grants, err2 := encode(c.GrantTypes)
	responses, err3 := encode(c.ResponseTypes)
	for _, err := range []error{err1, err2, err3} {
		if err != nil {
			return fmt.Errorf("postgres: create client: %w", err)
		}
	}
	err := inserted(s.pool.Exec(ctx, sqlInsertClient,
		c.ID, c.SecretHash, c.Name, redirects, grants, responses,
		c.TokenEndpointAuthMethod, c.ApplicationType, c.Scope, c.ClientURI, c.LogoURI, nanos(c.CreatedAt), nanos(c.LastUsedAt)))
	if err != nil {
		return wrap("create client", err)
	}
	return nil
}

func (s *Store) GetClient(ctx context.Context, id string) (*store.Client, error) {
	if !storable(id) {
		return nil, wrap("get client", store.ErrNotFound)
	}
	c, err := scanClient(s.pool.QueryRow(ctx, sqlGetClient, id))
	if err != nil {
		return nil, wrap("get client", err)
	}
	return c, nil
}

func (s *Store) TouchClient(ctx context.Context, id string, now time.Time) error {
	if !storable(id) {
		return wrap("touch client", store.ErrNotFound)
	}
	if err := affected(s.pool.Exec(ctx, sqlTouchClient, id, nanos(now))); err != nil {
		return wrap("touch client", err)
	}
	return nil
}

func (s *Store) DeleteUnusedClients(ctx context.Context, unusedSince, now time.Time, limit int) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, sqlDeleteUnusedClients, nanos(unusedSince), nanos(now), limit).Scan(&n); err != nil {
		return 0, wrap("delete unused clients", err)
	}
	return n, nil
}

func (s *Store) PutConsent(ctx context.Context, c *store.Consent) error {
	scopes, err1 := encode(c.Scopes)
	redirects, err2 := encode(c.RedirectURIs)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("postgres: put consent: %w", err)
	}
	if _, err := s.pool.Exec(ctx, sqlPutConsent, c.UserID, c.ClientID, c.Resource, scopes, redirects, nanos(c.CreatedAt)); err != nil {
		return wrap("put consent", err)
	}
	return nil
}

func (s *Store) GetConsent(ctx context.Context, userID, clientID, resource string) (*store.Consent, error) {
	if !storable(userID, clientID, resource) {
		return nil, wrap("get consent", store.ErrNotFound)
	}
	c := store.Consent{UserID: userID, ClientID: clientID, Resource: resource}
	err := s.pool.QueryRow(ctx, sqlGetConsent, userID, clientID, resource).Scan(jsonText{&c.Scopes}, jsonText{&c.RedirectURIs}, timeCol{&c.CreatedAt})
	if err != nil {
		return nil, wrap("get consent", err)
	}
	return &c, nil
}

// DeleteConsent implements store.Store.
func (s *Store) DeleteConsent(ctx context.Context, userID, clientID string) error {
	if !storable(userID, clientID) {
		return nil // no such consent can be stored
	}
	if _, err := s.pool.Exec(ctx, sqlDeleteConsent, userID, clientID); err != nil {
		return wrap("delete consent", err)
	}
	return nil
}

func (s *Store) PutLocalUser(ctx context.Context, u *store.LocalUser) error {
	groups, err := encode(u.Groups)
	if err != nil {
		return fmt.Errorf("postgres: put local user: %w", err)
	}
	if _, err := s.pool.Exec(ctx, sqlPutLocalUser, u.Name, u.PasswordHash, groups, nanos(u.CreatedAt), nanos(u.DisabledAt), u.Configured); err != nil {
		return wrap("put local user", err)
	}
	return nil
}

func (s *Store) CreateLocalUser(ctx context.Context, u *store.LocalUser) error {
	groups, err := encode(u.Groups)
	if err != nil {
		return fmt.Errorf("postgres: create local user: %w", err)
	}
	err = inserted(s.pool.Exec(ctx, sqlCreateLocalUser, u.Name, u.PasswordHash, groups, nanos(u.CreatedAt), nanos(u.DisabledAt), u.Configured))
	if err != nil {
		return wrap("create local user", err)
	}
	return nil
}

func (s *Store) GetLocalUser(ctx context.Context, name string) (*store.LocalUser, error) {
	if !storable(name) {
		return nil, wrap("get local user", store.ErrNotFound)
	}
	u := store.LocalUser{Name: name}
	err := s.pool.QueryRow(ctx, sqlGetLocalUser, name).Scan(&u.PasswordHash, jsonText{&u.Groups}, timeCol{&u.CreatedAt}, timeCol{&u.DisabledAt}, &u.Configured)
	if err != nil {
		return nil, wrap("get local user", err)
	}
	if len(u.Groups) == 0 {
		u.Groups = nil // "null" of a user put without groups
	}
	return &u, nil
}

func (s *Store) CountLocalUsers(ctx context.Context) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, sqlCountLocalUsers).Scan(&n); err != nil {
		return 0, wrap("count local users", err)
	}
	return n, nil
}

func (s *Store) CreateSigningKey(ctx context.Context, k *store.SigningKey) error {
	err := inserted(s.pool.Exec(ctx, sqlInsertSigningKey,
		k.ID, k.Algorithm, k.Private, k.Public, nanos(k.CreatedAt), nanos(k.RetiredAt)))
	if err != nil {
		return wrap("create signing key", err)
	}
	return nil
}

func (s *Store) ListSigningKeys(ctx context.Context) ([]*store.SigningKey, error) {
	rows, err := s.pool.Query(ctx, sqlListSigningKeys)
	if err != nil {
		return nil, wrap("list signing keys", err)
	}
	keys, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*store.SigningKey, error) {
		var k store.SigningKey
		err := row.Scan(&k.ID, &k.Algorithm, &k.Private, &k.Public, timeCol{&k.CreatedAt}, timeCol{&k.RetiredAt})
		return &k, err
	})
	if err != nil {
		return nil, wrap("list signing keys", err)
	}
	if keys == nil {
		keys = []*store.SigningKey{}
	}
	return keys, nil
}
