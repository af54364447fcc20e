package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mcpgate/mcpgate/store"
)

// The operator's verbs (SEC-93, SEC-94), each one statement. A user's
// grants, sessions and codes are found by the "sub" of the user's JSON: a
// scan of the table, which these rare commands afford, rather than an
// index that every grant's insertion would pay for. The revoking verbs
// announce each grant they revoke as RevokeGrant does, when they commit
// (SEC-80); n is read whole (array_agg), and a CTE that calls pg_notify,
// a volatile function, is evaluated once and in full.
const (
	// LIMIT NULL is none.
	sqlListClients = `SELECT ` + clientCols + ` FROM clients ORDER BY created_at DESC, id COLLATE "C" LIMIT $1`
	// SEC-155: the grant of a code spent whose redemption has not stored
	// it yet is stored revoked (f), so that the redemption's CreateGrant
	// conflicts; one it stores meanwhile, which r cannot see, is revoked
	// by f's ON CONFLICT once it commits. The codes are read locked (l),
	// so that one spent meanwhile is waited for and read as spent.
	sqlDeleteClient = `WITH c AS (DELETE FROM clients WHERE id = $1 RETURNING id),
	k AS (DELETE FROM consents WHERE client_id = $1 AND EXISTS (SELECT 1 FROM c)),
	l AS (SELECT hash, grant_id, client_id, user_json, resource, scopes, used_at FROM codes WHERE client_id = $1 FOR UPDATE),
	d AS (DELETE FROM codes WHERE hash IN (SELECT hash FROM l WHERE used_at = 0) AND EXISTS (SELECT 1 FROM c)),
	r AS (UPDATE grants SET revoked_at = $2 WHERE client_id = $1 AND revoked_at = 0 AND EXISTS (SELECT 1 FROM c) RETURNING id),
	f AS (INSERT INTO grants (` + grantCols + `)
		SELECT grant_id, client_id, user_json, resource, scopes, used_at, $2 FROM l
		WHERE used_at <> 0 AND EXISTS (SELECT 1 FROM c) AND NOT EXISTS (SELECT 1 FROM grants WHERE id = l.grant_id)
		ON CONFLICT (id) DO UPDATE SET revoked_at = $2 WHERE grants.revoked_at = 0 RETURNING id),
	n AS (SELECT id, pg_notify('` + revokedChannel + `', id) FROM (SELECT id FROM r UNION ALL SELECT id FROM f) AS x)
	SELECT EXISTS (SELECT 1 FROM c), coalesce((SELECT array_agg(id ORDER BY id COLLATE "C") FROM n), '{}')`
	// A person's grants are found through the index grants_user_sub
	// (SEC-194), which a condition that may also list them all would not use.
	listGrants = `SELECT ` + grantCols + `,
		coalesce((SELECT max(r.created_at) FROM refresh_tokens AS r WHERE r.grant_id = grants.id), 0) FROM grants`
	sqlListAllGrants   = listGrants + ` WHERE (NOT $1 OR revoked_at = 0) ORDER BY created_at DESC, id COLLATE "C" LIMIT $2`
	sqlListUserGrants  = listGrants + ` WHERE (user_json::jsonb)->>'sub' = $1 AND (NOT $2 OR revoked_at = 0) ORDER BY created_at DESC, id COLLATE "C" LIMIT $3`
	sqlListLocalUsers  = `SELECT name, password_hash, groups, created_at, disabled_at, configured FROM local_users ORDER BY name COLLATE "C"`
	sqlEnableLocalUser = `UPDATE local_users SET disabled_at = 0 WHERE name = $1`
	// Disabling is two statements in one transaction: the account's row
	// first, which waits for a CreateGrant that holds it FOR SHARE, then
	// the rest under a snapshot taken after, which sees that grant.
	sqlDisableAccount = `UPDATE local_users SET disabled_at = CASE disabled_at WHEN 0 THEN $2 ELSE disabled_at END WHERE name = $1 RETURNING name`
	sqlEndAccount     = `WITH s AS (DELETE FROM sessions WHERE (user_json::jsonb)->>'sub' = $2),
	d AS (DELETE FROM codes WHERE used_at = 0 AND (user_json::jsonb)->>'sub' = $2),
	r AS (UPDATE grants SET revoked_at = $1 WHERE revoked_at = 0 AND (user_json::jsonb)->>'sub' = $2 RETURNING id),
	n AS (SELECT id, pg_notify('` + revokedChannel + `', id) FROM r)
	SELECT coalesce((SELECT array_agg(id ORDER BY id COLLATE "C") FROM n), '{}')`
)

func scanClient(row pgx.Row) (*store.Client, error) {
	var c store.Client
	err := row.Scan(
		&c.ID, &c.SecretHash, &c.Name, jsonText{&c.RedirectURIs}, jsonText{&c.GrantTypes},
		jsonText{&c.ResponseTypes}, &c.TokenEndpointAuthMethod, &c.ApplicationType, &c.Scope,
		&c.ClientURI, &c.LogoURI, timeCol{&c.CreatedAt}, timeCol{&c.LastUsedAt})
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// ListClients implements store.Store.
func (s *Store) ListClients(ctx context.Context, limit int) ([]*store.Client, error) {
	rows, err := s.pool.Query(ctx, sqlListClients, sqlLimit(limit))
	if err != nil {
		return nil, wrap("list clients", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*store.Client, error) { return scanClient(r) })
	if err != nil {
		return nil, wrap("list clients", err)
	}
	return nonNil(out), nil
}

// DeleteClient implements store.Store.
func (s *Store) DeleteClient(ctx context.Context, id string, now time.Time) ([]string, error) {
	if !storable(id) {
		return nil, wrap("delete client", store.ErrNotFound)
	}
	return s.revoking(ctx, "delete client", sqlDeleteClient, id, nanos(now))
}

// revoking runs q, which answers whether its subject existed and the ids
// of the grants it revoked.
func (s *Store) revoking(ctx context.Context, op, q string, args ...any) ([]string, error) {
	var found bool
	var ids []string
	if err := s.pool.QueryRow(ctx, q, args...).Scan(&found, &ids); err != nil {
		return nil, wrap(op, err)
	}
	if !found {
		return nil, wrap(op, store.ErrNotFound)
	}
	return nonNil(ids), nil
}

// ListGrants implements store.Store.
func (s *Store) ListGrants(ctx context.Context, q store.GrantQuery) ([]*store.Grant, error) {
	if !storable(q.UserID) {
		return []*store.Grant{}, nil
	}
	var rows pgx.Rows
	var err error
	if q.UserID == "" {
		rows, err = s.pool.Query(ctx, sqlListAllGrants, q.Live, sqlLimit(q.Limit))
	} else {
		rows, err = s.pool.Query(ctx, sqlListUserGrants, q.UserID, q.Live, sqlLimit(q.Limit))
	}
	if err != nil {
		return nil, wrap("list grants", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*store.Grant, error) {
		var g store.Grant
		err := r.Scan(&g.ID, &g.ClientID, jsonText{&g.User}, &g.Resource, jsonText{&g.Scopes},
			timeCol{&g.CreatedAt}, timeCol{&g.RevokedAt}, timeCol{&g.LastIssuedAt})
		return &g, err
	})
	if err != nil {
		return nil, wrap("list grants", err)
	}
	return nonNil(out), nil
}

// sqlLimit is a list's limit as PostgreSQL's LIMIT takes it: NULL for
// none.
func sqlLimit(limit int) *int {
	if limit <= 0 {
		return nil
	}
	return &limit
}

// ListLocalUsers implements store.Store.
func (s *Store) ListLocalUsers(ctx context.Context) ([]*store.LocalUser, error) {
	rows, err := s.pool.Query(ctx, sqlListLocalUsers)
	if err != nil {
		return nil, wrap("list local users", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*store.LocalUser, error) {
		var u store.LocalUser
		if err := r.Scan(&u.Name, &u.PasswordHash, jsonText{&u.Groups}, timeCol{&u.CreatedAt}, timeCol{&u.DisabledAt}, &u.Configured); err != nil {
			return nil, err
		}
		if len(u.Groups) == 0 {
			u.Groups = nil
		}
		return &u, nil
	})
	if err != nil {
		return nil, wrap("list local users", err)
	}
	return nonNil(out), nil
}

// EnableLocalUser implements store.Store.
func (s *Store) EnableLocalUser(ctx context.Context, name string) error {
	if !storable(name) {
		return wrap("enable local user", store.ErrNotFound)
	}
	if err := affected(s.pool.Exec(ctx, sqlEnableLocalUser, name)); err != nil {
		return wrap("enable local user", err)
	}
	return nil
}

// DisableLocalUser implements store.Store.
func (s *Store) DisableLocalUser(ctx context.Context, name string, now time.Time) ([]string, error) {
	if !storable(name) {
		return nil, wrap("disable local user", store.ErrNotFound)
	}
	var ids []string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var found string
		if err := tx.QueryRow(ctx, sqlDisableAccount, name, nanos(now)).Scan(&found); err != nil {
			return err
		}
		return tx.QueryRow(ctx, sqlEndAccount, nanos(now), "local:"+name).Scan(&ids)
	})
	if err != nil {
		return nil, wrap("disable local user", err)
	}
	return nonNil(ids), nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
