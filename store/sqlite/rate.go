package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// One upsert in a write op: the writer runs ops one at a time, so each
// caller gets its own count, and another process sharing the file waits
// for the write lock as for any write.
var sqlAddRateHit = ws(`INSERT INTO rate_counters (key, window_start, count, expires_at) VALUES (?1, ?2, 1, ?3)
	ON CONFLICT (key, window_start) DO UPDATE SET count = count + 1 RETURNING count`)

func (s *Store) AddRateHit(ctx context.Context, key string, window, expires time.Time) (int, error) {
	var n int
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return s.txRow(ctx, tx, sqlAddRateHit, key, nanos(window), nanos(expires)).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: add rate hit: %w", err)
	}
	return n, nil
}
