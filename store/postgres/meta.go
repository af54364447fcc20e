package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
)

const (
	sqlInsertMeta = `INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING RETURNING value`
	sqlGetMeta    = `SELECT value FROM meta WHERE name = $1`
)

// PutMetaOnce inserts, and when the name is taken reads the stored value
// in a second statement: an insert that lost to a concurrent one waits for
// it to commit, but a read in the same statement would use a snapshot
// taken before that commit and find nothing.
func (s *Store) PutMetaOnce(ctx context.Context, name string, value []byte) ([]byte, error) {
	var stored []byte
	err := s.pool.QueryRow(ctx, sqlInsertMeta, name, value).Scan(&stored)
	if errors.Is(err, pgx.ErrNoRows) {
		err = s.pool.QueryRow(ctx, sqlGetMeta, name).Scan(&stored)
	}
	if err != nil {
		return nil, wrap("put meta", err)
	}
	return stored, nil
}
