package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

var (
	sqlInsertMeta = ws(`INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`)
	sqlGetMetaTx  = ws(`SELECT value FROM meta WHERE name = ?`)
)

// PutMetaOnce inserts and reads back in one write transaction: the first
// writer's value is the one every caller reads.
func (s *Store) PutMetaOnce(ctx context.Context, name string, value []byte) ([]byte, error) {
	var stored []byte
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := s.txExec(ctx, tx, sqlInsertMeta, name, value); err != nil {
			return err
		}
		return s.txRow(ctx, tx, sqlGetMetaTx, name).Scan(blob{&stored})
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: put meta: %w", err)
	}
	return stored, nil
}
