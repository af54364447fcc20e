package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/mcpgate/mcpgate/internal/privatedir"
	"github.com/mcpgate/mcpgate/store"
)

var _ store.Store = (*Store)(nil)

// Store is a store.Store on one SQLite file. It is safe for concurrent use.
type Store struct {
	w  *sql.DB // one connection: every write, in BEGIN IMMEDIATE transactions
	r  *sql.DB // a pool of query_only connections for plain reads
	wr *writer // the group-commit loop that owns w once Open returns

	wst prepared // write statements, prepared on w
	rst prepared // read statements, prepared on r

	closeOnce sync.Once
	closeErr  error
}

// busyTimeout bounds how long a connection waits for a lock that another
// process (a second mcpgate, the sqlite3 shell) holds on the same file.
const busyTimeout = 10 * time.Second

// createPrivate makes the database file abs, and its directory, readable by
// the gateway alone. A gateway's own (serving) is in a directory of its
// user's or root's, and is its user's file (SEC-196); a command beside it
// run as root may use the file of the directory's owner.
func createPrivate(abs string, serving bool) error {
	dir := filepath.Dir(abs)
	if serving {
		// Before anything is made there.
		if err := privatedir.CheckPath(dir); err != nil {
			return err
		}
	}
	if err := privatedir.Make(dir, dir); err != nil {
		return err
	}
	// A directory anyone may write to lets anyone put a link where the
	// database goes, and have it made, or its mode changed, elsewhere.
	if err := privatedir.CheckDir(dir); err != nil {
		return err
	}
	if err := privatedir.CheckOwnFile(abs, !serving); err != nil {
		return fmt.Errorf("the database: %w", err)
	}
	// Create the file ourselves: SQLite would create it with 0644 less the
	// umask, and it holds client secret hashes and sealed signing keys. The
	// -wal and -shm files SQLite creates copy this mode. O_NOFOLLOW: a link
	// put there since is not followed either.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	if err := f.Chmod(0o600); err != nil { // the file opened, not a path
		f.Close()
		return err
	}
	return f.Close()
}

// Open opens or creates the database at path, creating its directory (0700,
// its missing parents 0711) and the file (0600) if needed, and applies any
// pending migrations.
func Open(ctx context.Context, path string) (*Store, error) { return openDB(ctx, path, true) }

// OpenCurrent opens the existing database at path for a command run beside
// a gateway serving on it: it applies no migration, and refuses a file
// that does not exist (fs.ErrNotExist) or whose schema is older than this
// binary's (store.ErrSchemaBehind), which would upgrade it under the
// older gateway.
func OpenCurrent(ctx context.Context, path string) (*Store, error) { return openDB(ctx, path, false) }

func openDB(ctx context.Context, path string, upgrade bool) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: open: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	if !upgrade {
		if _, err := os.Stat(abs); err != nil {
			return nil, fmt.Errorf("sqlite: open: %w", err)
		}
	}
	if err := createPrivate(abs, upgrade); err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}

	common := url.Values{}
	common.Set("_busy_timeout", fmt.Sprint(busyTimeout.Milliseconds()))
	common.Set("_foreign_keys", "1")
	// FULL, not NORMAL: in WAL mode NORMAL may lose the last commits on a
	// power cut, and a lost "code used" or "token rotated" mark reopens a
	// replay window.
	common.Set("_synchronous", "FULL")

	wq := cloneValues(common)
	wq.Set("_journal_mode", "WAL")
	wq.Set("_txlock", "immediate")
	w, err := sql.Open("sqlite", dsn(abs, wq))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	if err := migrate(ctx, w, upgrade); err != nil {
		w.Close()
		return nil, err
	}
	wst, err := prepareAll(ctx, w, writeSQL)
	if err != nil {
		w.Close()
		return nil, err
	}

	rq := cloneValues(common)
	rq.Set("_query_only", "1")
	r, err := sql.Open("sqlite", dsn(abs, rq))
	if err != nil {
		wst.close()
		w.Close()
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	n := max(4, 2*runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	if err := r.PingContext(ctx); err != nil {
		r.Close()
		wst.close()
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	rst, err := prepareAll(ctx, r, readSQL)
	if err != nil {
		r.Close()
		wst.close()
		w.Close()
		return nil, err
	}
	return &Store{w: w, r: r, wst: wst, rst: rst, wr: newWriter(w, wst)}, nil
}

// dsn builds a file: URI so that a path holding '?' or '#' cannot be taken
// for the start of the query.
func dsn(path string, q url.Values) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: q.Encode()}
	return u.String()
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// Close closes the store: the writes already submitted complete (and are
// answered), later ones fail. The write connection goes last so that its
// close checkpoints the WAL into the main file. Closing again returns the
// first Close's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.wr.close()
		if err := errors.Join(s.rst.close(), s.r.Close(), s.wst.close(), s.w.Close()); err != nil {
			s.closeErr = fmt.Errorf("sqlite: close: %w", err)
		}
	})
	return s.closeErr
}

// errCommitted lets a transaction function ask for a commit and still
// report an error: RotateRefresh must keep the revocation it made (RT-1).
type errCommitted struct{ err error }

func (e errCommitted) Error() string { return e.err.Error() }

// tx runs fn on the write connection, in a savepoint of a BEGIN IMMEDIATE
// transaction that it may share with other writes (group commit, see
// writer.go), and returns fn's error once that transaction has committed.
// The write lock is taken before the first read, so the read-check-write
// of fn cannot interleave with another writer, in this process or another.
// fn's error rolls back fn's writes, unless it is an errCommitted. fn gets
// a context that is never cancelled: once started, it runs to the end.
func (s *Store) tx(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	return s.wr.do(ctx, fn)
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

// blob scans a BLOB column keeping NULL and a zero-length blob apart (nil
// vs []byte{}), which database/sql's own []byte conversion does not.
type blob struct{ p *[]byte }

func (b blob) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*b.p = nil
	case []byte:
		*b.p = append(make([]byte, 0, len(v)), v...)
	default:
		return fmt.Errorf("blob: cannot scan %T", src)
	}
	return nil
}

// jsonText scans a JSON TEXT column into v.
type jsonText struct{ v any }

func (j jsonText) Scan(src any) error {
	var b []byte
	switch s := src.(type) {
	case string:
		b = []byte(s)
	case []byte:
		b = s
	default:
		return fmt.Errorf("json column: cannot scan %T", src)
	}
	return json.Unmarshal(b, j.v)
}

// timeCol scans a unix-nanosecond INTEGER column.
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(src any) error {
	n, ok := src.(int64)
	if !ok {
		return fmt.Errorf("time column: cannot scan %T", src)
	}
	*c.t = fromNanos(n)
	return nil
}

type scanner interface{ Scan(dest ...any) error }

// wrap turns sql.ErrNoRows into store.ErrNotFound, with context.
func wrap(op string, err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

// inserted reports ErrConflict when an INSERT ... ON CONFLICT DO NOTHING
// touched no row.
func inserted(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrConflict
	}
	return nil
}

// affected reports ErrNotFound when an UPDATE or DELETE touched no row.
func affected(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}
