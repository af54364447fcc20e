package postgres

import (
	"context"
	"time"
)

// One statement: the row lock ON CONFLICT takes makes concurrent callers,
// on any replica, increment one after the other.
const sqlAddRateHit = `INSERT INTO rate_counters (key, window_start, count, expires_at) VALUES ($1, $2, 1, $3)
	ON CONFLICT (key, window_start) DO UPDATE SET count = rate_counters.count + 1 RETURNING count`

func (s *Store) AddRateHit(ctx context.Context, key string, window, expires time.Time) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, sqlAddRateHit, []byte(key), nanos(window), nanos(expires)).Scan(&n); err != nil {
		return 0, wrap("add rate hit", err)
	}
	return n, nil
}
