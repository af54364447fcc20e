package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	sqlPingWrite  = `INSERT INTO ping (id, at) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET at = excluded.at`
	sqlPingDelete = `DELETE FROM ping WHERE id = $1`
	sqlPingRead   = `SELECT count(*) FROM ping`
)

// Ping writes and deletes the ping row in one transaction, whose commit
// waits for the WAL flush as every write's does (a read-only standby, a
// full disk or a lost primary fail it), then reads (SEC-13). The row is
// this Store's own (SEC-195): when every replica wrote one row, a replica
// whose host vanished between its write and its commit held that row's
// lock until the server noticed, which may take hours, and every other
// replica's Ping waited on it, all unready at once.
func (s *Store) Ping(ctx context.Context) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, sqlPingWrite, s.pingID, time.Now().UnixNano()); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, sqlPingDelete, s.pingID)
		return err
	})
	if err != nil {
		return wrap("ping", err)
	}
	var n int
	if err := s.pool.QueryRow(ctx, sqlPingRead).Scan(&n); err != nil {
		return wrap("ping", err)
	}
	return nil
}

// Now implements store.Clock: the database server's time.
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	var t time.Time
	if err := s.pool.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&t); err != nil {
		return time.Time{}, wrap("now", err)
	}
	return t, nil
}
