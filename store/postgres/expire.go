package postgres

import (
	"context"
	"fmt"
	"time"
)

// Housekeeping, a bounded statement at a time: each deletes at most the
// rows left of the call's limit, by primary key, and commits on its own,
// so that none holds row locks for long. FOR UPDATE SKIP LOCKED leaves out
// the rows another transaction holds (a request using one, or another
// replica's housekeeping deleting it): replicas that run housekeeping at
// once split the rows instead of waiting on each other, so every replica
// may run it and none needs to be elected. The order matters: grants go
// after their refresh tokens, upstream sessions after the codes, tokens
// and grants they hang on. $1 is now, $2 the rows left, $3 grantsBefore;
// a statement that does not need one still takes it ($1::bigint IS NOT
// NULL), as every statement here takes the same arguments.
var sqlDeleteExpired = []string{
	`DELETE FROM auth_requests WHERE id IN (SELECT id FROM auth_requests
		WHERE expires_at <= $1 AND $3::bigint IS NOT NULL LIMIT $2 FOR UPDATE SKIP LOCKED)`,
	`DELETE FROM codes WHERE hash IN (SELECT hash FROM codes
		WHERE expires_at <= $1 AND $3::bigint IS NOT NULL LIMIT $2 FOR UPDATE SKIP LOCKED)`,
	`DELETE FROM sessions WHERE hash IN (SELECT hash FROM sessions
		WHERE expires_at <= $1 AND $3::bigint IS NOT NULL LIMIT $2 FOR UPDATE SKIP LOCKED)`,
	`DELETE FROM rate_counters WHERE (key, window_start) IN (SELECT key, window_start FROM rate_counters
		WHERE expires_at <= $1 AND $3::bigint IS NOT NULL LIMIT $2 FOR UPDATE SKIP LOCKED)`,
	`DELETE FROM mcp_sessions WHERE (resource, hash) IN (SELECT resource, hash FROM mcp_sessions
		WHERE expires_at <= $1 AND $3::bigint IS NOT NULL LIMIT $2 FOR UPDATE SKIP LOCKED)`,
	`DELETE FROM refresh_tokens WHERE hash IN (SELECT r.hash FROM grants AS g
		JOIN refresh_tokens AS r ON r.grant_id = g.id
		WHERE g.revoked_at <> 0 AND $1::bigint IS NOT NULL AND $3::bigint IS NOT NULL
		LIMIT $2 FOR UPDATE OF r SKIP LOCKED)`,
	`DELETE FROM refresh_tokens WHERE hash IN (SELECT hash FROM refresh_tokens
		WHERE expires_at <> 0 AND expires_at <= $1 AND $3::bigint IS NOT NULL
		LIMIT $2 FOR UPDATE SKIP LOCKED)`,
	// Grants without a refresh token, created and revoked at or before
	// $3; 0 keeps them all.
	`DELETE FROM grants WHERE id IN (SELECT id FROM grants AS g
		WHERE $3::bigint <> 0 AND greatest(g.created_at, g.revoked_at) <= $3::bigint AND $1::bigint IS NOT NULL
		AND NOT EXISTS (SELECT 1 FROM refresh_tokens AS r WHERE r.grant_id = g.id)
		LIMIT $2 FOR UPDATE SKIP LOCKED)`,
	// Upstream sessions of revoked grants, of grants left without a
	// refresh token (none issued, or all expired: SEC-69), and of codes
	// gone unredeemed.
	`DELETE FROM upstream_sessions WHERE grant_id IN (SELECT u.grant_id FROM upstream_sessions AS u
		WHERE $1::bigint IS NOT NULL AND $3::bigint IS NOT NULL AND (
		EXISTS (SELECT 1 FROM grants AS g WHERE g.id = u.grant_id AND g.revoked_at <> 0)
		OR (EXISTS (SELECT 1 FROM grants AS g WHERE g.id = u.grant_id)
			AND NOT EXISTS (SELECT 1 FROM refresh_tokens AS r WHERE r.grant_id = u.grant_id))
		OR (NOT EXISTS (SELECT 1 FROM grants AS g WHERE g.id = u.grant_id)
			AND NOT EXISTS (SELECT 1 FROM codes AS c WHERE c.grant_id = u.grant_id)))
		LIMIT $2 FOR UPDATE SKIP LOCKED)`,
}

func (s *Store) DeleteExpired(ctx context.Context, now, grantsBefore time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, fmt.Errorf("postgres: delete expired: limit %d is not positive", limit)
	}
	n := 0
	for _, q := range sqlDeleteExpired {
		if n == limit {
			break
		}
		tag, err := s.pool.Exec(ctx, q, nanos(now), limit-n, nanos(grantsBefore))
		if err != nil {
			return n, wrap("delete expired", err)
		}
		n += int(tag.RowsAffected())
	}
	return n, nil
}

// sqlDeleteSuccessors empties the successor of at most $2 tokens rotated
// at or before $1 (SEC-181), through the partial index of migration 0012.
// The rows another transaction holds are left for the next call, as
// above.
const sqlDeleteSuccessors = `UPDATE refresh_tokens SET successor = NULL WHERE hash IN (SELECT hash FROM refresh_tokens
	WHERE successor IS NOT NULL AND rotated_at <> 0 AND rotated_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`

func (s *Store) DeleteSuccessors(ctx context.Context, rotatedBefore time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, fmt.Errorf("postgres: delete successors: limit %d is not positive", limit)
	}
	tag, err := s.pool.Exec(ctx, sqlDeleteSuccessors, nanos(rotatedBefore), limit)
	if err != nil {
		return 0, wrap("delete successors", err)
	}
	return int(tag.RowsAffected()), nil
}
