package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/mcpgate/mcpgate/store"
)

const clientCols = `id, secret_hash, name, redirect_uris, grant_types, response_types,
	token_endpoint_auth_method, application_type, scope, client_uri, logo_uri, created_at`

var (
	sqlInsertClient = ws(`INSERT INTO clients (` + clientCols + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`)
	sqlGetClient  = rs(`SELECT ` + clientCols + ` FROM clients WHERE id = ?`)
	sqlPutConsent = ws(`INSERT INTO consents (user_id, client_id, scopes, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, created_at = excluded.created_at`)
	sqlGetConsent   = rs(`SELECT scopes, created_at FROM consents WHERE user_id = ? AND client_id = ?`)
	sqlPutLocalUser = ws(`INSERT INTO local_users (name, password_hash, created_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash, created_at = excluded.created_at`)
	sqlGetLocalUser     = rs(`SELECT password_hash, created_at FROM local_users WHERE name = ?`)
	sqlCountLocalUsers  = rs(`SELECT count(*) FROM local_users`)
	sqlInsertSigningKey = ws(`INSERT INTO signing_keys (id, algorithm, private, public, created_at, retired_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`)
	sqlListSigningKeys = rs(`SELECT id, algorithm, private, public, created_at, retired_at
		FROM signing_keys ORDER BY created_at, rowid`)
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
			c.TokenEndpointAuthMethod, c.ApplicationType, c.Scope, c.ClientURI, c.LogoURI, nanos(c.CreatedAt)))
	})
	if err != nil {
		return fmt.Errorf("sqlite: create client: %w", err)
	}
	return nil
}

func (s *Store) GetClient(ctx context.Context, id string) (*store.Client, error) {
	var c store.Client
	err := s.row(ctx, sqlGetClient, id).Scan(
		&c.ID, blob{&c.SecretHash}, &c.Name, jsonText{&c.RedirectURIs}, jsonText{&c.GrantTypes},
		jsonText{&c.ResponseTypes}, &c.TokenEndpointAuthMethod, &c.ApplicationType, &c.Scope,
		&c.ClientURI, &c.LogoURI, timeCol{&c.CreatedAt})
	if err != nil {
		return nil, wrap("get client", err)
	}
	return &c, nil
}

func (s *Store) PutConsent(ctx context.Context, c *store.Consent) error {
	scopes, err := encode(c.Scopes)
	if err != nil {
		return fmt.Errorf("sqlite: put consent: %w", err)
	}
	err = s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := s.txExec(ctx, tx, sqlPutConsent,
			c.UserID, c.ClientID, scopes, nanos(c.CreatedAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: put consent: %w", err)
	}
	return nil
}

func (s *Store) GetConsent(ctx context.Context, userID, clientID string) (*store.Consent, error) {
	c := store.Consent{UserID: userID, ClientID: clientID}
	err := s.row(ctx, sqlGetConsent, userID, clientID).Scan(jsonText{&c.Scopes}, timeCol{&c.CreatedAt})
	if err != nil {
		return nil, wrap("get consent", err)
	}
	return &c, nil
}

func (s *Store) PutLocalUser(ctx context.Context, u *store.LocalUser) error {
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := s.txExec(ctx, tx, sqlPutLocalUser,
			u.Name, u.PasswordHash, nanos(u.CreatedAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: put local user: %w", err)
	}
	return nil
}

func (s *Store) GetLocalUser(ctx context.Context, name string) (*store.LocalUser, error) {
	u := store.LocalUser{Name: name}
	err := s.row(ctx, sqlGetLocalUser, name).
		Scan(blob{&u.PasswordHash}, timeCol{&u.CreatedAt})
	if err != nil {
		return nil, wrap("get local user", err)
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
