package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

// The operator's verbs (SEC-93, SEC-94). A user's grants, sessions and
// codes are found by the "sub" of the user column's JSON: a scan of the
// table, which these rare commands afford, rather than an index that every
// grant's insertion would pay for.
const listGrants = `SELECT ` + grantCols + `,
	coalesce((SELECT max(r.created_at) FROM refresh_tokens AS r WHERE r.grant_id = grants.id), 0) FROM grants`

var (
	// LIMIT -1 is none.
	sqlListClients               = rs(`SELECT ` + clientCols + ` FROM clients ORDER BY created_at DESC, id LIMIT ?`)
	sqlDeleteUnusedCodesOfClient = ws(`DELETE FROM codes WHERE client_id = ? AND used_at = 0`)
	sqlRevokeClientGrants        = ws(`UPDATE grants SET revoked_at = ? WHERE client_id = ? AND revoked_at = 0 RETURNING id`)
	// SEC-155: the grant of a code spent whose redemption has not stored
	// it yet, stored here for sqlRevokeClientGrants to revoke in the same
	// transaction, so that the redemption's CreateGrant conflicts.
	sqlFenceSpentCodesOfClient = ws(`INSERT INTO grants (` + grantCols + `)
		SELECT grant_id, client_id, user, resource, scopes, used_at, 0 FROM codes WHERE client_id = ? AND used_at != 0
		ON CONFLICT DO NOTHING`)
	// A person's grants are found through the index grants_user_sub
	// (SEC-194), which a condition that may also list them all would not use.
	sqlListAllGrants      = rs(listGrants + ` WHERE (? = 0 OR revoked_at = 0) ORDER BY created_at DESC, id LIMIT ?`)
	sqlListUserGrants     = rs(listGrants + ` WHERE json_extract(user, '$.sub') = ? AND (? = 0 OR revoked_at = 0) ORDER BY created_at DESC, id LIMIT ?`)
	sqlListLocalUsers     = rs(`SELECT name, password_hash, groups, created_at, disabled_at, configured FROM local_users ORDER BY name`)
	sqlEnableLocalUser    = ws(`UPDATE local_users SET disabled_at = 0 WHERE name = ?`)
	sqlDisableLocalUser   = ws(`UPDATE local_users SET disabled_at = CASE disabled_at WHEN 0 THEN ? ELSE disabled_at END WHERE name = ?`)
	sqlDeleteUserSessions = ws(`DELETE FROM sessions WHERE json_extract(user, '$.sub') = ?`)
	sqlDeleteUserCodes    = ws(`DELETE FROM codes WHERE used_at = 0 AND json_extract(user, '$.sub') = ?`)
	sqlRevokeUserGrants   = ws(`UPDATE grants SET revoked_at = ? WHERE revoked_at = 0 AND json_extract(user, '$.sub') = ? RETURNING id`)
)

func scanClient(row scanner) (*store.Client, error) {
	var c store.Client
	err := row.Scan(
		&c.ID, blob{&c.SecretHash}, &c.Name, jsonText{&c.RedirectURIs}, jsonText{&c.GrantTypes},
		jsonText{&c.ResponseTypes}, &c.TokenEndpointAuthMethod, &c.ApplicationType, &c.Scope,
		&c.ClientURI, &c.LogoURI, timeCol{&c.CreatedAt}, timeCol{&c.LastUsedAt})
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// ListClients implements store.Store.
func (s *Store) ListClients(ctx context.Context, limit int) ([]*store.Client, error) {
	rows, err := s.rows(ctx, sqlListClients, sqlLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("sqlite: list clients: %w", err)
	}
	out, err := collect(rows, scanClient)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list clients: %w", err)
	}
	return out, nil
}

// DeleteClient implements store.Store.
func (s *Store) DeleteClient(ctx context.Context, id string, now time.Time) ([]string, error) {
	var revoked []string
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		revoked = nil
		if err := affected(s.txExec(ctx, tx, sqlDeleteClient, id)); err != nil {
			return err
		}
		for _, q := range []string{sqlDeleteClientConsents, sqlDeleteUnusedCodesOfClient, sqlFenceSpentCodesOfClient} {
			if _, err := s.txExec(ctx, tx, q, id); err != nil {
				return err
			}
		}
		var err error
		revoked, err = s.revokeReturning(ctx, tx, sqlRevokeClientGrants, nanos(now), id)
		return err
	})
	if err != nil {
		return nil, wrap("delete client", err)
	}
	return revoked, nil
}

// revokeReturning runs q, an UPDATE of grants RETURNING id, in tx and
// returns the ids in byte order.
func (s *Store) revokeReturning(ctx context.Context, tx *sql.Tx, q string, args ...any) ([]string, error) {
	rows, err := tx.StmtContext(ctx, s.wst[q]).QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	ids, err := collect(rows, func(r scanner) (string, error) {
		var id string
		return id, r.Scan(&id)
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(ids)
	return ids, nil
}

// ListGrants implements store.Store.
func (s *Store) ListGrants(ctx context.Context, q store.GrantQuery) ([]*store.Grant, error) {
	var rows *sql.Rows
	var err error
	if q.UserID == "" {
		rows, err = s.rows(ctx, sqlListAllGrants, q.Live, sqlLimit(q.Limit))
	} else {
		rows, err = s.rows(ctx, sqlListUserGrants, q.UserID, q.Live, sqlLimit(q.Limit))
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: list grants: %w", err)
	}
	out, err := collect(rows, func(r scanner) (*store.Grant, error) {
		var g store.Grant
		err := r.Scan(&g.ID, &g.ClientID, jsonText{&g.User}, &g.Resource, jsonText{&g.Scopes},
			timeCol{&g.CreatedAt}, timeCol{&g.RevokedAt}, timeCol{&g.LastIssuedAt})
		return &g, err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: list grants: %w", err)
	}
	return out, nil
}

// sqlLimit is a list's limit as SQLite's LIMIT takes it: -1 for none.
func sqlLimit(limit int) int {
	if limit <= 0 {
		return -1
	}
	return limit
}

// ListLocalUsers implements store.Store.
func (s *Store) ListLocalUsers(ctx context.Context) ([]*store.LocalUser, error) {
	rows, err := s.rows(ctx, sqlListLocalUsers)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list local users: %w", err)
	}
	out, err := collect(rows, func(r scanner) (*store.LocalUser, error) {
		var u store.LocalUser
		if err := r.Scan(&u.Name, blob{&u.PasswordHash}, jsonText{&u.Groups}, timeCol{&u.CreatedAt}, timeCol{&u.DisabledAt}, &u.Configured); err != nil {
			return nil, err
		}
		if len(u.Groups) == 0 {
			u.Groups = nil
		}
		return &u, nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: list local users: %w", err)
	}
	return out, nil
}

// DisableLocalUser implements store.Store.
// EnableLocalUser implements store.Store.
func (s *Store) EnableLocalUser(ctx context.Context, name string) error {
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return affected(s.txExec(ctx, tx, sqlEnableLocalUser, name))
	})
	if err != nil {
		return wrap("enable local user", err)
	}
	return nil
}

func (s *Store) DisableLocalUser(ctx context.Context, name string, now time.Time) ([]string, error) {
	userID := "local:" + name
	var revoked []string
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		revoked = nil
		if err := affected(s.txExec(ctx, tx, sqlDisableLocalUser, nanos(now), name)); err != nil {
			return err
		}
		for _, q := range []string{sqlDeleteUserSessions, sqlDeleteUserCodes} {
			if _, err := s.txExec(ctx, tx, q, userID); err != nil {
				return err
			}
		}
		var err error
		revoked, err = s.revokeReturning(ctx, tx, sqlRevokeUserGrants, nanos(now), userID)
		return err
	})
	if err != nil {
		return nil, wrap("disable local user", err)
	}
	return revoked, nil
}

// collect scans every row with scan and closes rows. The slice is never
// nil.
func collect[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, v)
	}
	return out, errors.Join(rows.Err(), rows.Close())
}
