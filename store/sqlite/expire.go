package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Housekeeping. SQLite has one writer, and every request that writes waits
// for it: so DeleteExpired deletes at most limit rows a call, each kind by
// primary key through an index of its expiry, in write ops that the writer
// interleaves with the requests queued meanwhile. The two searches that
// cannot use an index (grants without a refresh token left, upstream
// sessions whose grant ended) run on the read pool, which WAL lets run
// beside the writer; the writer then only deletes the rows found, each
// condition checked again in its op, so that a row that came back to use
// meanwhile stays.

var (
	sqlExpireRequests = ws(`DELETE FROM auth_requests WHERE id IN
		(SELECT id FROM auth_requests WHERE expires_at <= ?1 LIMIT ?2)`)
	sqlExpireCodes = ws(`DELETE FROM codes WHERE hash IN
		(SELECT hash FROM codes WHERE expires_at <= ?1 LIMIT ?2)`)
	sqlExpireSessions = ws(`DELETE FROM sessions WHERE hash IN
		(SELECT hash FROM sessions WHERE expires_at <= ?1 LIMIT ?2)`)
	sqlExpireRates = ws(`DELETE FROM rate_counters WHERE (key, window_start) IN
		(SELECT key, window_start FROM rate_counters WHERE expires_at <= ?1 LIMIT ?2)`)
	sqlExpireMCPSessions = ws(`DELETE FROM mcp_sessions WHERE (resource, hash) IN
		(SELECT resource, hash FROM mcp_sessions WHERE expires_at <= ?1 LIMIT ?2)`)
	// Refresh tokens of revoked grants, then expired ones; each returns
	// the successors to delete with them. (?1 is unused in the first:
	// every statement of the op takes the same arguments.)
	sqlExpireRevokedRefresh = ws(`DELETE FROM refresh_tokens WHERE hash IN
		(SELECT r.hash FROM grants AS g JOIN refresh_tokens AS r ON r.grant_id = g.id
		WHERE g.revoked_at != 0 AND ?1 IS NOT NULL LIMIT ?2)
		RETURNING successor_id`)
	sqlExpireRefresh = ws(`DELETE FROM refresh_tokens WHERE hash IN
		(SELECT hash FROM refresh_tokens WHERE expires_at != 0 AND expires_at <= ?1 LIMIT ?2)
		RETURNING successor_id`)
	sqlDeleteSuccessors = ws(`DELETE FROM refresh_successors WHERE id IN (SELECT value FROM json_each(?1))`)

	// Rotated tokens that still hold a successor (SEC-181), through the
	// partial index of migration 0018, whose condition this repeats; then
	// the deletion of those successors, given the tokens' hashes in hex
	// and their successors' ids, as JSON arrays.
	sqlHeldSuccessors = ws(`SELECT hex(hash), successor_id FROM refresh_tokens
		WHERE (successor_id IS NOT NULL OR successor IS NOT NULL) AND rotated_at != 0 AND rotated_at <= ?1 LIMIT ?2`)
	sqlDropSuccessors = ws(`UPDATE refresh_tokens SET successor = NULL, successor_id = NULL
		WHERE hash IN (SELECT unhex(value) FROM json_each(?1))`)

	// A grant without a refresh token, created and revoked at or before ?1.
	sqlDeadGrants = rs(`SELECT id FROM grants AS g
		WHERE max(g.created_at, g.revoked_at) <= ?1
		AND NOT EXISTS (SELECT 1 FROM refresh_tokens WHERE grant_id = g.id) LIMIT ?2`)
	sqlDeleteDeadGrant = ws(`DELETE FROM grants WHERE id = ?1
		AND max(created_at, revoked_at) <= ?2
		AND NOT EXISTS (SELECT 1 FROM refresh_tokens WHERE grant_id = ?1)`)

	// Upstream sessions of revoked grants, of grants left without a
	// refresh token (none issued, or all expired: SEC-69), and of no grant
	// and no code (a code gone unredeemed).
	sqlDeadUpstream = rs(`SELECT u.grant_id FROM upstream_sessions AS u
		LEFT JOIN grants AS g ON g.id = u.grant_id
		WHERE (g.id IS NOT NULL AND (g.revoked_at != 0
			OR NOT EXISTS (SELECT 1 FROM refresh_tokens WHERE grant_id = u.grant_id)))
		OR (g.id IS NULL AND NOT EXISTS (SELECT 1 FROM codes WHERE grant_id = u.grant_id))
		LIMIT ?1`)
	sqlDeleteDeadUpstream = ws(`DELETE FROM upstream_sessions WHERE grant_id = ?1 AND (
		EXISTS (SELECT 1 FROM grants WHERE id = ?1 AND (revoked_at != 0
			OR NOT EXISTS (SELECT 1 FROM refresh_tokens WHERE grant_id = ?1)))
		OR (NOT EXISTS (SELECT 1 FROM grants WHERE id = ?1)
			AND NOT EXISTS (SELECT 1 FROM codes WHERE grant_id = ?1)))`)
)

func (s *Store) DeleteExpired(ctx context.Context, now, grantsBefore time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, fmt.Errorf("sqlite: delete expired: limit %d is not positive", limit)
	}
	n, err := s.expireIndexed(ctx, now, limit)
	if err == nil && n < limit && !grantsBefore.IsZero() {
		var m int
		m, err = s.deleteFound(ctx, sqlDeadGrants, sqlDeleteDeadGrant, limit-n, nanos(grantsBefore))
		n += m
	}
	if err == nil && n < limit {
		var m int
		m, err = s.deleteFound(ctx, sqlDeadUpstream, sqlDeleteDeadUpstream, limit-n)
		n += m
	}
	if err != nil {
		return n, fmt.Errorf("sqlite: delete expired: %w", err)
	}
	return n, nil
}

// expireIndexed deletes, in one write op, at most limit rows of the kinds
// whose expiry is indexed, in order, and returns how many.
func (s *Store) expireIndexed(ctx context.Context, now time.Time, limit int) (int, error) {
	var n int
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		n = 0
		for _, q := range []string{sqlExpireRequests, sqlExpireCodes, sqlExpireSessions, sqlExpireRates, sqlExpireMCPSessions} {
			if n == limit {
				return nil
			}
			res, err := s.txExec(ctx, tx, q, nanos(now), limit-n)
			if err != nil {
				return err
			}
			m, err := res.RowsAffected()
			if err != nil {
				return err
			}
			n += int(m)
		}
		for _, q := range []string{sqlExpireRevokedRefresh, sqlExpireRefresh} {
			if n == limit {
				return nil
			}
			m, err := s.deleteRefresh(ctx, tx, q, nanos(now), limit-n)
			if err != nil {
				return err
			}
			n += m
		}
		return nil
	})
	return n, err
}

func (s *Store) DeleteSuccessors(ctx context.Context, rotatedBefore time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, fmt.Errorf("sqlite: delete successors: limit %d is not positive", limit)
	}
	var n int
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		rows, err := tx.StmtContext(ctx, s.wst[sqlHeldSuccessors]).QueryContext(ctx, nanos(rotatedBefore), limit)
		if err != nil {
			return err
		}
		var hashes []string
		var successors []int64
		for rows.Next() {
			var hash string
			var id sql.NullInt64
			if err := rows.Scan(&hash, &id); err != nil {
				rows.Close()
				return err
			}
			hashes = append(hashes, hash)
			if id.Valid {
				successors = append(successors, id.Int64)
			}
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return err
		}
		n = len(hashes)
		if n == 0 {
			return nil
		}
		if err := execJSON(ctx, s, tx, sqlDropSuccessors, hashes); err != nil {
			return err
		}
		return execJSON(ctx, s, tx, sqlDeleteSuccessors, successors)
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete successors: %w", err)
	}
	return n, nil
}

// execJSON runs q in tx with vs, as a JSON array, for its ?1; an empty
// vs runs nothing.
func execJSON[T any](ctx context.Context, s *Store, tx *sql.Tx, q string, vs []T) error {
	if len(vs) == 0 {
		return nil
	}
	arg, err := json.Marshal(vs)
	if err != nil {
		return err
	}
	_, err = s.txExec(ctx, tx, q, string(arg))
	return err
}

// deleteRefresh runs one of the refresh-token deletions and deletes the
// successors of the tokens it deleted; it returns how many tokens.
func (s *Store) deleteRefresh(ctx context.Context, tx *sql.Tx, q string, now int64, limit int) (int, error) {
	rows, err := tx.StmtContext(ctx, s.wst[q]).QueryContext(ctx, now, limit)
	if err != nil {
		return 0, err
	}
	n := 0
	var successors []int64
	for rows.Next() {
		var id sql.NullInt64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, err
		}
		n++
		if id.Valid {
			successors = append(successors, id.Int64)
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return 0, err
	}
	if err := execJSON(ctx, s, tx, sqlDeleteSuccessors, successors); err != nil {
		return 0, err
	}
	return n, nil
}

// deleteFound lists at most limit keys with find on the read pool (args,
// then limit), then deletes each in one write op with del (the key, then
// args), which checks the condition again; it returns how many it
// deleted.
func (s *Store) deleteFound(ctx context.Context, find, del string, limit int, args ...any) (int, error) {
	rows, err := s.rows(ctx, find, append(args, limit)...)
	if err != nil {
		return 0, err
	}
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			rows.Close()
			return 0, err
		}
		keys = append(keys, k)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil || len(keys) == 0 {
		return 0, err
	}
	var n int
	err = s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		n = 0
		for _, k := range keys {
			res, err := s.txExec(ctx, tx, del, append([]any{k}, args...)...)
			if err != nil {
				return err
			}
			m, err := res.RowsAffected()
			if err != nil {
				return err
			}
			n += int(m)
		}
		return nil
	})
	return n, err
}
