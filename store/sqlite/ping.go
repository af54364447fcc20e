package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

var (
	sqlPingWrite  = ws(`INSERT INTO ping (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at`)
	sqlPingDelete = ws(`DELETE FROM ping WHERE id = 1`)
	sqlPingRead   = rs(`SELECT count(*) FROM ping`)
)

// Ping writes and deletes the ping row through the writer, so that it
// commits (and syncs) as every write does, then reads on the read pool.
func (s *Store) Ping(ctx context.Context) error {
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := s.txExec(ctx, tx, sqlPingWrite, time.Now().UnixNano()); err != nil {
			return err
		}
		_, err := s.txExec(ctx, tx, sqlPingDelete)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	var n int
	if err := s.row(ctx, sqlPingRead).Scan(&n); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}
