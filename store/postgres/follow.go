package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mcpgate/mcpgate/store"
)

var _ store.RevocationFeed = (*Store)(nil)

// revokedChannel is the NOTIFY channel that carries the id of each grant
// revoked; NOTIFY is per database, so deployments on other databases of one
// server do not hear each other.
const revokedChannel = "mcpgate_revoked"

// FollowRevocations listens on its own connection rather than one of the
// pool's: it holds it for as long as ctx lasts, and the pool is sized for
// requests. A connection that fails ends the call; the caller reconnects.
func (s *Store) FollowRevocations(ctx context.Context, listening func(), revoked func(grantID string)) error {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("postgres: follow revocations: %w", err)
	}
	defer func() {
		closing, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = conn.Close(closing)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+revokedChannel); err != nil {
		return fmt.Errorf("postgres: follow revocations: %w", err)
	}
	listening()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("postgres: follow revocations: %w", err)
		}
		if n.Channel == revokedChannel {
			revoked(n.Payload)
		}
	}
}
