package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Prepared statements. Parsing a statement costs the transpiled SQLite
// about as much as running it, and the hot verbs (a code, a grant, a
// refresh rotation) run the same few statements over and over; so every
// statement the store runs is declared below with ws (write connection)
// or rs (read pool) and prepared once, at Open. A prepared statement is
// kept per connection by database/sql: on the single write connection a
// transaction reuses it (Tx.StmtContext finds it prepared on its
// connection); on the read pool each connection prepares it on first use.

var (
	writeSQL []string
	readSQL  []string
)

// ws declares a statement run by write ops, inside the writer's
// transaction.
func ws(q string) string { writeSQL = append(writeSQL, q); return q }

// rs declares a statement run on the read pool.
func rs(q string) string { readSQL = append(readSQL, q); return q }

// prepared holds the statements of one *sql.DB by their text.
type prepared map[string]*sql.Stmt

func prepareAll(ctx context.Context, db *sql.DB, queries []string) (prepared, error) {
	p := make(prepared, len(queries))
	for _, q := range queries {
		if _, ok := p[q]; ok {
			continue
		}
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			p.close()
			return nil, fmt.Errorf("sqlite: prepare %q: %w", q, err)
		}
		p[q] = st
	}
	return p, nil
}

func (p prepared) close() error {
	var errs []error
	for _, st := range p {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}

// txExec runs a write statement in tx, prepared when declared with ws.
func (s *Store) txExec(ctx context.Context, tx *sql.Tx, q string, args ...any) (sql.Result, error) {
	if st := s.wst[q]; st != nil {
		return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, q, args...)
}

// txRow runs a query in tx, prepared when declared with ws.
func (s *Store) txRow(ctx context.Context, tx *sql.Tx, q string, args ...any) *sql.Row {
	if st := s.wst[q]; st != nil {
		return tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, q, args...)
}

// row runs a query on the read pool, prepared when declared with rs.
func (s *Store) row(ctx context.Context, q string, args ...any) *sql.Row {
	if st := s.rst[q]; st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return s.r.QueryRowContext(ctx, q, args...)
}

// rows runs a query on the read pool, prepared when declared with rs.
func (s *Store) rows(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st := s.rst[q]; st != nil {
		return st.QueryContext(ctx, args...)
	}
	return s.r.QueryContext(ctx, q, args...)
}
