package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresOptions configure a throwaway PostgreSQL server (StartPostgres).
type PostgresOptions struct {
	// Fsync off sets fsync=off, synchronous_commit=off and
	// full_page_writes=off: nothing is flushed, a figure that says nothing
	// about a durable deployment. The default, on, is PostgreSQL's own
	// (every commit waits for its WAL flush), as a deployment runs it.
	FsyncOff bool
	// Dir is where the data directory goes (a new directory inside it);
	// default the system's temporary directory. It decides which disk the
	// WAL flushes hit.
	Dir string
	// MaxConnections is the server's max_connections; default 200 (three
	// replicas' pools and the seeding pool fit).
	MaxConnections int
}

// PostgresServer is a PostgreSQL server of the harness's own: Debian's
// server binaries in a temporary directory, on a free loopback port (no
// Unix socket), with trust authentication for the postgres user. When the
// harness runs as root, the server runs as the postgres user (PostgreSQL
// refuses root). The postmaster dies with the harness (Pdeathsig).
type PostgresServer struct {
	DSN  string // postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable
	Desc string // what the server is, for a report: version, fsync, file system

	dir  string
	cmd  *exec.Cmd
	done chan struct{}
	werr error
}

// Bounds of the server's start and stop: generous, for a loaded machine.
const (
	pgReadyTimeout = 90 * time.Second
	pgStopTimeout  = 20 * time.Second
)

// StartPostgres initialises and starts a PostgreSQL server and waits until
// it accepts connections. Stop stops it and removes its files.
func StartPostgres(ctx context.Context, o PostgresOptions) (*PostgresServer, error) {
	bin, err := postgresBinaries(os.Getenv("PATH"), "/usr/lib/postgresql/*/bin")
	if err != nil {
		return nil, err
	}
	cred, err := postgresCredential()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(o.Dir, "flowload-pg-")
	if err != nil {
		return nil, err
	}
	s, err := startPostgres(ctx, bin, dir, cred, o)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

func startPostgres(ctx context.Context, bin, dir string, cred *syscall.Credential, o PostgresOptions) (*PostgresServer, error) {
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	initdb.Env = postgresEnv()
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	port, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}
	maxConns := o.MaxConnections
	if maxConns == 0 {
		maxConns = 200
	}
	args := []string{"-D", data, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
		"-c", "max_connections=" + strconv.Itoa(maxConns)}
	if o.FsyncOff {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	logPath := filepath.Join(dir, "postgres.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
	cmd.Env = postgresEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	s := &PostgresServer{
		DSN: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port),
		dir: dir, cmd: cmd, done: make(chan struct{}),
	}
	go func() {
		s.werr = cmd.Wait()
		close(s.done)
	}()
	version, err := s.waitReady(ctx)
	if err != nil {
		s.kill()
		log, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("postgres on port %d: %v\n%s", port, err, log)
	}
	flush := "fsync on (every commit waits for its WAL flush)"
	if o.FsyncOff {
		flush = "fsync=off, synchronous_commit=off (not durable)"
	}
	s.Desc = fmt.Sprintf("PostgreSQL %s, %s, data on %s", version, flush, FSType(dir))
	return s, nil
}

// waitReady polls the server until it accepts a connection, and returns
// its version.
func (s *PostgresServer) waitReady(ctx context.Context) (string, error) {
	deadline := time.Now().Add(pgReadyTimeout)
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		conn, err := pgx.Connect(cctx, s.DSN)
		if err == nil {
			var v string
			err = conn.QueryRow(cctx, "SHOW server_version").Scan(&v)
			conn.Close(cctx)
			cancel()
			return v, err
		}
		cancel()
		select {
		case <-s.done:
			return "", fmt.Errorf("exited before accepting connections: %v", s.werr)
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no connection within %v: %v", pgReadyTimeout, err)
		}
	}
}

func (s *PostgresServer) kill() {
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
}

// Stop shuts the server down (fast shutdown), kills it if it has not
// exited within a bound, and removes its files.
func (s *PostgresServer) Stop() error {
	var err error
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.done:
	case <-time.After(pgStopTimeout):
		err = fmt.Errorf("postgres did not stop within %v; killed", pgStopTimeout)
		s.kill()
	}
	return errors.Join(err, os.RemoveAll(s.dir))
}

// postgresCredential is whom the server runs as: nil for the harness's own
// user, the postgres user when the harness runs as root.
func postgresCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, PostgreSQL must run as the postgres user: %v (install Debian's postgresql package)", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("postgres user: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

// postgresEnv is the environment of initdb and postgres: the harness's,
// without the PG* variables that would redirect them, in the C locale.
func postgresEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C")
}

func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// postgresBinaries returns the directory that holds initdb and postgres:
// initdb's on the PATH (following a link), else the newest of the
// directories glob matches.
func postgresBinaries(pathEnv, glob string) (string, error) {
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			continue
		}
		p, err := filepath.EvalSymlinks(filepath.Join(dir, "initdb"))
		if err != nil {
			continue
		}
		if d := filepath.Dir(p); isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	dirs, _ := filepath.Glob(glob)
	major := func(d string) int { v, _ := strconv.Atoi(filepath.Base(filepath.Dir(d))); return v }
	slices.SortFunc(dirs, func(a, b string) int { return major(b) - major(a) })
	for _, d := range dirs {
		if isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", fmt.Errorf("no PostgreSQL server binaries (initdb and postgres) on the PATH or in %s: install Debian's postgresql package, or give -dsn", glob)
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
