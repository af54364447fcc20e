package postgres

import (
	"context"
	"embed"
	"fmt"
	"github.com/mcpgate/mcpgate/store"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations holds NNNN_name.sql files, applied in version order, each once.
// Never edit a released file: add the next number.
//
//go:embed migrations/*.sql
var migrations embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive number and '_'", e.Name())
		}
		b, err := migrations.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s share a version", out[i-1].name, out[i].name)
		}
	}
	return out, nil
}

// migrationLock is the advisory lock key ("mcpgate" in ASCII) that
// serialises migrations. Advisory locks are per database, so two
// deployments on one server do not wait for each other.
const migrationLock int64 = 0x6d637067617465

// migrationIdle is how long the server lets a migrating transaction sit
// idle before it ends it (SEC-199): a replica whose host vanished in the
// middle of its migrations holds the lock, and the tables it altered,
// only that long, not until TCP gives up hours later, which kept every
// replica from starting, and every running one from those tables.
var migrationIdle = 60 * time.Second

// lockForMigration takes migrationLock for tx, a migration's transaction,
// which the server ends once idle for migrationIdle.
func lockForMigration(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL idle_in_transaction_session_timeout = %d", migrationIdle.Milliseconds())); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock)
	return err
}

// migrate applies the pending migrations in one transaction that first
// takes migrationLock: replicas starting at once queue on the lock, and
// each finds the work of the one before it committed. DDL is transactional
// in PostgreSQL, so a failing migration leaves the schema as it was.
// Without upgrade, pending migrations are store.ErrSchemaBehind, or
// store.ErrNoSchema when none was applied.
func migrate(ctx context.Context, pool *pgxpool.Pool, upgrade bool) error {
	ms, err := loadMigrations()
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if err := lockForMigration(ctx, tx); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer NOT NULL PRIMARY KEY,
			name       text    NOT NULL,
			applied_at bigint  NOT NULL
		)`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT version FROM schema_migrations`)
		if err != nil {
			return err
		}
		have, err := pgx.CollectRows(rows, pgx.RowTo[int])
		if err != nil {
			return err
		}
		current, latest := 0, ms[len(ms)-1].version
		if len(have) > 0 {
			current = slices.Max(have)
		}
		if current > latest {
			// A newer mcpgate has been here; running older code on its
			// schema could misread or corrupt what it wrote.
			return fmt.Errorf("database schema version %d is newer than this binary's %d", current, latest)
		}
		if !upgrade && len(have) == 0 {
			return store.ErrNoSchema
		}
		if !upgrade && len(have) < len(ms) {
			return fmt.Errorf("database schema version %d, this binary's %d: %w", current, latest, store.ErrSchemaBehind)
		}
		for _, m := range ms {
			if slices.Contains(have, m.version) {
				continue
			}
			// The simple protocol: a migration is several statements.
			if _, err := tx.Exec(ctx, m.sql, pgx.QueryExecModeSimpleProtocol); err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.version, m.name, time.Now().UnixNano()); err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	return nil
}
