package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

const clientCols = `id, secret_hash, name, redirect_uris, grant_types, response_types,
	token_endpoint_auth_method, application_type, scope, client_uri, logo_uri, created_at, last_used_at`

var (
	sqlInsertClient = ws(`INSERT INTO clients (` + clientCols + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`)
	sqlGetClient  = rs(`SELECT ` + clientCols + ` FROM clients WHERE id = ?`)
	sqlPutConsent = ws(`INSERT INTO consents (user_id, client_id, resource, scopes, redirect_uris, created_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (user_id, client_id, resource) DO UPDATE SET scopes = excluded.scopes, redirect_uris = excluded.redirect_uris,
			created_at = excluded.created_at`)
	sqlGetConsent    = rs(`SELECT scopes, redirect_uris, created_at FROM consents WHERE user_id = ? AND client_id = ? AND resource = ?`)
	sqlDeleteConsent = ws(`DELETE FROM consents WHERE user_id = ? AND client_id = ?`)
	// SEC-155: the codes issued under the approvals, not yet redeemed.
	sqlDeleteUnusedCodes = ws(`DELETE FROM codes WHERE client_id = ?2 AND used_at = 0 AND json_extract(user, '$.sub') = ?1`)
	// SEC-155: the grant of a code spent whose grant is not stored yet, a
	// redemption under way, stored revoked, so that its CreateGrant
	// conflicts.
	sqlFenceSpentCodes = ws(`INSERT INTO grants (` + grantCols + `)
		SELECT grant_id, client_id, user, resource, scopes, used_at, used_at FROM codes
		WHERE client_id = ?2 AND used_at != 0 AND json_extract(user, '$.sub') = ?1
		ON CONFLICT DO NOTHING`)
	// SEC-93: an existing account's disabled_at is never written here.
	sqlPutLocalUser = ws(`INSERT INTO local_users (name, password_hash, groups, created_at, disabled_at, configured) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash, groups = excluded.groups, created_at = excluded.created_at,
			configured = excluded.configured`)
	sqlCreateLocalUser = ws(`INSERT INTO local_users (name, password_hash, groups, created_at, disabled_at, configured) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (name) DO NOTHING`)
	// SEC-130: run before the put, it compares the account as stored.
	// groupsChanged is true when ?3 is not the account's groups as
	// stored. No groups are written [] or null (a nil list; [] is the
	// column's default, for accounts from before groups were stored),
	// which are the same groups.
	groupsChanged             = `coalesce(nullif(groups, 'null'), '[]') IS NOT coalesce(nullif(?3, 'null'), '[]')`
	sqlEndChangedUserSessions = ws(`DELETE FROM sessions WHERE json_extract(user, '$.sub') = 'local:' || ?1
		AND EXISTS (SELECT 1 FROM local_users WHERE name = ?1 AND (password_hash IS NOT ?2 OR ` + groupsChanged + `))`)
	sqlGetLocalUser     = rs(`SELECT password_hash, groups, created_at, disabled_at, configured FROM local_users WHERE name = ?`)
	sqlCountLocalUsers  = rs(`SELECT count(*) FROM local_users`)
	sqlInsertSigningKey = ws(`INSERT INTO signing_keys (id, algorithm, private, public, created_at, retired_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`)
	sqlListSigningKeys = rs(`SELECT id, algorithm, private, public, created_at, retired_at
		FROM signing_keys ORDER BY created_at, rowid`)
)

// SEC-14: a client's last use, and the deletion of the long unused.
var (
	sqlTouchClient = ws(`UPDATE clients SET last_used_at = max(last_used_at, ?2) WHERE id = ?1`)
	// The clients DeleteUnusedClients may delete: the expression is the
	// one clients_used_at indexes.
	sqlUnusedClients = ws(`SELECT id FROM clients AS c
		WHERE max(c.created_at, c.last_used_at) < ?1
		AND NOT EXISTS (SELECT 1 FROM codes WHERE client_id = c.id AND used_at = 0 AND expires_at > ?2)
		AND NOT EXISTS (SELECT 1 FROM grants AS g JOIN refresh_tokens AS rt ON rt.grant_id = g.id
			WHERE g.client_id = c.id AND g.revoked_at = 0 AND rt.rotated_at = 0 AND (rt.expires_at = 0 OR rt.expires_at > ?2))
		LIMIT ?3`)
	sqlDeleteClient         = ws(`DELETE FROM clients WHERE id = ?`)
	sqlDeleteClientConsents = ws(`DELETE FROM consents WHERE client_id = ?`)
)

func (s *Store) CreateClient(ctx context.Context, c *store.Client) error {
	redirects, err := encode(c.RedirectURIs)
	if err != nil {
		return fmt.Errorf("sqlite: create client: %w", err)
	}
	grants, err := encode(c.GrantTypes)
	if err != nil {
		return fmt.Errorf("sqlite: create client: %w", err)
	}
	responses, err := encode(c.ResponseTypes)
	if err != nil {
		return fmt.Errorf("sqlite: create client: %w", err)
	}
	err = s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return inserted(s.txExec(ctx, tx, sqlInsertClient,
			c.ID, c.SecretHash, c.Name, redirects, grants, responses,
			c.TokenEndpointAuthMethod, c.ApplicationType, c.Scope, c.ClientURI, c.LogoURI, nanos(c.CreatedAt), nanos(c.LastUsedAt)))
	})
	if err != nil {
		return fmt.Errorf("sqlite: create client: %w", err)
	}
	return nil
}

func (s *Store) GetClient(ctx context.Context, id string) (*store.Client, error) {
	c, err := scanClient(s.row(ctx, sqlGetClient, id))
	if err != nil {
		return nil, wrap("get client", err)
	}
	return c, nil
}

func (s *Store) TouchClient(ctx context.Context, id string, now time.Time) error {
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return affected(s.txExec(ctx, tx, sqlTouchClient, id, nanos(now)))
	})
	if err != nil {
		return fmt.Errorf("sqlite: touch client: %w", err)
	}
	return nil
}

// DeleteUnusedClients finds and deletes one batch in one write op, so
// that a client used meanwhile is either seen as used or deleted before
// that use, never half of both.
func (s *Store) DeleteUnusedClients(ctx context.Context, unusedSince, now time.Time, limit int) (int, error) {
	var n int
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		n = 0
		rows, err := tx.StmtContext(ctx, s.wst[sqlUnusedClients]).QueryContext(ctx, nanos(unusedSince), nanos(now), limit)
		if err != nil {
			return err
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return err
		}
		for _, id := range ids {
			if _, err := s.txExec(ctx, tx, sqlDeleteClient, id); err != nil {
				return err
			}
			if _, err := s.txExec(ctx, tx, sqlDeleteClientConsents, id); err != nil {
				return err
			}
		}
		n = len(ids)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete unused clients: %w", err)
	}
	return n, nil
}

func (s *Store) PutConsent(ctx context.Context, c *store.Consent) error {
	scopes, err1 := encode(c.Scopes)
	redirects, err2 := encode(c.RedirectURIs)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("sqlite: put consent: %w", err)
	}
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := s.txExec(ctx, tx, sqlPutConsent,
			c.UserID, c.ClientID, c.Resource, scopes, redirects, nanos(c.CreatedAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: put consent: %w", err)
	}
	return nil
}

func (s *Store) GetConsent(ctx context.Context, userID, clientID, resource string) (*store.Consent, error) {
	c := store.Consent{UserID: userID, ClientID: clientID, Resource: resource}
	err := s.row(ctx, sqlGetConsent, userID, clientID, resource).Scan(jsonText{&c.Scopes}, jsonText{&c.RedirectURIs}, timeCol{&c.CreatedAt})
	if err != nil {
		return nil, wrap("get consent", err)
	}
	return &c, nil
}

// DeleteConsent implements store.Store.
func (s *Store) DeleteConsent(ctx context.Context, userID, clientID string) error {
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := s.txExec(ctx, tx, sqlDeleteConsent, userID, clientID); err != nil {
			return err
		}
		if _, err := s.txExec(ctx, tx, sqlDeleteUnusedCodes, userID, clientID); err != nil {
			return err
		}
		_, err := s.txExec(ctx, tx, sqlFenceSpentCodes, userID, clientID)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete consent: %w", err)
	}
	return nil
}

func (s *Store) PutLocalUser(ctx context.Context, u *store.LocalUser) error {
	groups, err := encode(u.Groups)
	if err != nil {
		return fmt.Errorf("sqlite: put local user: %w", err)
	}
	err = s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := s.txExec(ctx, tx, sqlEndChangedUserSessions, u.Name, u.PasswordHash, groups); err != nil {
			return err
		}
		_, err := s.txExec(ctx, tx, sqlPutLocalUser,
			u.Name, u.PasswordHash, groups, nanos(u.CreatedAt), nanos(u.DisabledAt), u.Configured)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: put local user: %w", err)
	}
	return nil
}

func (s *Store) CreateLocalUser(ctx context.Context, u *store.LocalUser) error {
	groups, err := encode(u.Groups)
	if err != nil {
		return fmt.Errorf("sqlite: create local user: %w", err)
	}
	err = s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return inserted(s.txExec(ctx, tx, sqlCreateLocalUser,
			u.Name, u.PasswordHash, groups, nanos(u.CreatedAt), nanos(u.DisabledAt), u.Configured))
	})
	if err != nil {
		return fmt.Errorf("sqlite: create local user: %w", err)
	}
	return nil
}

func (s *Store) GetLocalUser(ctx context.Context, name string) (*store.LocalUser, error) {
	u := store.LocalUser{Name: name}
	err := s.row(ctx, sqlGetLocalUser, name).
		Scan(blob{&u.PasswordHash}, jsonText{&u.Groups}, timeCol{&u.CreatedAt}, timeCol{&u.DisabledAt}, &u.Configured)
	if err != nil {
		return nil, wrap("get local user", err)
	}
	if len(u.Groups) == 0 {
		u.Groups = nil // "[]" of a row from before groups, "null" of one put without
	}
	return &u, nil
}

func (s *Store) CountLocalUsers(ctx context.Context) (int, error) {
	var n int
	if err := s.row(ctx, sqlCountLocalUsers).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: count local users: %w", err)
	}
	return n, nil
}

func (s *Store) CreateSigningKey(ctx context.Context, k *store.SigningKey) error {
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return inserted(s.txExec(ctx, tx, sqlInsertSigningKey,
			k.ID, k.Algorithm, k.Private, k.Public, nanos(k.CreatedAt), nanos(k.RetiredAt)))
	})
	if err != nil {
		return fmt.Errorf("sqlite: create signing key: %w", err)
	}
	return nil
}

func (s *Store) ListSigningKeys(ctx context.Context) ([]*store.SigningKey, error) {
	rows, err := s.rows(ctx, sqlListSigningKeys)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list signing keys: %w", err)
	}
	defer rows.Close()
	keys := []*store.SigningKey{}
	for rows.Next() {
		var k store.SigningKey
		if err := rows.Scan(&k.ID, &k.Algorithm, blob{&k.Private}, blob{&k.Public},
			timeCol{&k.CreatedAt}, timeCol{&k.RetiredAt}); err != nil {
			return nil, fmt.Errorf("sqlite: list signing keys: %w", err)
		}
		keys = append(keys, &k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list signing keys: %w", err)
	}
	return keys, nil
}
