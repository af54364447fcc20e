package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mcpgate/mcpgate/store"
)

var (
	_ store.Store                = (*Store)(nil)
	_ store.RefreshSessionGetter = (*Store)(nil)
)

// Store is a store.Store on one PostgreSQL database. It is safe for
// concurrent use, by any number of goroutines and processes.
type Store struct {
	pool *pgxpool.Pool
	// pingID is the ping row this Store writes, its own: a replica lost
	// within its Ping's transaction holds no other replica's row (SEC-195).
	pingID int32

	closeOnce sync.Once
}

// defaultMaxConns is the pool's size unless the DSN sets pool_max_conns.
const defaultMaxConns = 16

// Open connects to the database that dsn names (a postgres:// URL or a
// key=value string, as libpq takes; pgxpool's pool_* options size the pool,
// 16 connections unless pool_max_conns says otherwise) and applies any
// pending migrations. Its errors never contain dsn.
func Open(ctx context.Context, dsn string) (*Store, error) { return openDB(ctx, dsn, true) }

// OpenCurrent connects as Open does for a command run beside the gateways
// serving on the database: it applies no migration, and refuses a schema
// older than this binary's (store.ErrSchemaBehind), which would upgrade
// it under the older gateways.
func OpenCurrent(ctx context.Context, dsn string) (*Store, error) { return openDB(ctx, dsn, false) }

func openDB(ctx context.Context, dsn string, upgrade bool) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// The parse error quotes the DSN, with its password masked only
		// as well as the parser could tell where the password is.
		return nil, errors.New("postgres: open: the DSN does not parse; want postgres://user:password@host:port/database")
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "mcpgate"
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		// pgx's default, max(4, cores), queues a gateway's requests on a
		// small machine: bench/flowload measured 329–337 flows/s with 4
		// against 674–688 with 16 on 2 cores (32 gave no more). 16 per
		// replica leaves room for several under PostgreSQL's default
		// max_connections of 100.
		cfg.MaxConns = defaultMaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	if err := checkIsolation(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	if err := migrate(ctx, pool, upgrade); err != nil {
		pool.Close()
		return nil, err
	}
	return &Store{pool: pool, pingID: rand.Int32()}, nil
}

// Close closes the pool; it waits for the queries in flight. Closing again
// does nothing.
func (s *Store) Close() error {
	s.closeOnce.Do(s.pool.Close)
	return nil
}

// nanos stores the zero time as 0 (its UnixNano overflows), so "not yet"
// columns such as used_at read back as time.Time{}.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func encode(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// jsonText scans a JSON text column into v.
type jsonText struct{ v any }

func (j jsonText) Scan(src any) error {
	s, ok := src.(string)
	if !ok {
		return fmt.Errorf("json column: cannot scan %T", src)
	}
	return json.Unmarshal([]byte(s), j.v)
}

// storable reports whether a text column can hold s: PostgreSQL refuses a
// NUL and what is not UTF-8, in a parameter as in a row. A key that is not
// storable names no stored row, so lookups answer ErrNotFound for it, as
// the other stores do, instead of failing.
func storable(keys ...string) bool {
	for _, k := range keys {
		if !utf8.ValidString(k) || strings.IndexByte(k, 0) >= 0 {
			return false
		}
	}
	return true
}

// byteString scans a bytea column into a string: for text a client sent
// that must come back byte for byte, which a text column refuses when it
// holds a NUL or is not UTF-8.
type byteString struct{ s *string }

func (b byteString) Scan(src any) error {
	p, ok := src.([]byte)
	if !ok {
		return fmt.Errorf("bytea column: cannot scan %T", src)
	}
	*b.s = string(p)
	return nil
}

// timeCol scans a unix-nanosecond bigint column.
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(src any) error {
	n, ok := src.(int64)
	if !ok {
		return fmt.Errorf("time column: cannot scan %T", src)
	}
	*c.t = fromNanos(n)
	return nil
}

// Unique violation: a key that exists already.
const uniqueViolation = "23505"

// wrap turns the driver's "no row" into store.ErrNotFound and a unique
// violation into store.ErrConflict, with context.
func wrap(op string, err error) error {
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		err = store.ErrNotFound
	case errors.As(err, &pgErr) && pgErr.Code == uniqueViolation:
		err = store.ErrConflict
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// inserted reports ErrConflict when an INSERT ... ON CONFLICT DO NOTHING
// touched no row.
func inserted(tag pgconn.CommandTag, err error) error {
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return store.ErrConflict
	}
	return nil
}

// affected reports ErrNotFound when an UPDATE or DELETE touched no row.
func affected(tag pgconn.CommandTag, err error) error {
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}

// raceRetries bounds the re-runs of a verb whose two statements saw a row
// change between them in a way no committed history explains (a row that
// became visible in between); it never loops on a steady state.
const raceRetries = 3

// checkIsolation refuses a database whose transactions are not READ
// COMMITTED by default: the single-use steps (a code's redemption, a
// refresh token's rotation, a login's state) are single statements whose
// losers, under READ COMMITTED, see the winner's row; under REPEATABLE READ
// or SERIALIZABLE they fail with a serialization error instead, and a
// replayed code or refresh token would no longer end its grant.
func checkIsolation(ctx context.Context, pool *pgxpool.Pool) error {
	var level string
	if err := pool.QueryRow(ctx, "SHOW default_transaction_isolation").Scan(&level); err != nil {
		return fmt.Errorf("postgres: open: %w", err)
	}
	if level != "read committed" {
		return fmt.Errorf("postgres: open: the database's transactions are %s by default; mcpgate needs read committed, PostgreSQL's default: "+
			"ALTER DATABASE <name> SET default_transaction_isolation = 'read committed' (or the same for mcpgate's role)", level)
	}
	return nil
}
