package pgtest

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
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// installHint names what to install when the server binaries are missing.
const installHint = "install Debian's postgresql package (apt-get install postgresql; `make tools` does it as root)"

// Bounds on the server's own steps; generous, so that a loaded machine is
// slow but never fails a test.
const (
	readyTimeout = 60 * time.Second // from exec to the first accepted connection
	stopTimeout  = 15 * time.Second // from the shutdown request to the exit
	adminTimeout = 60 * time.Second // one CREATE or DROP DATABASE
)

var (
	running atomic.Bool // Run is running the package's tests

	once   sync.Once
	srv    *server
	srvErr error

	dbSeq atomic.Int64
)

// Run runs the package's tests and then stops the server if a test started
// it. Call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }
func Run(m *testing.M) int {
	running.Store(true)
	code := m.Run()
	running.Store(false)
	if srv != nil {
		if err := srv.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// Start returns the DSN of a new, empty database on the package's server,
// starting the server first if no test has. The database is dropped at t's
// cleanup; whatever the test connected to it must be closed by then (its
// own cleanups, registered after Start, run first). Missing binaries, or a
// server that does not start, fail the test.
func Start(t testing.TB) string {
	t.Helper()
	if !running.Load() {
		t.Fatal("pgtest: Start needs the package's TestMain to call pgtest.Run, which stops the server at the end")
	}
	once.Do(func() { srv, srvErr = startServer() })
	if srvErr != nil {
		t.Fatalf("pgtest: %v", srvErr)
	}
	name := fmt.Sprintf("test_%d", dbSeq.Add(1))
	if err := srv.admin(t.Context(), "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		// FORCE: a connection the test leaked must not keep the database.
		if err := srv.admin(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return srv.dsn(name)
}

type server struct {
	tmp  string // removed at stop
	port int
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	werr error         // cmd.Wait's result, set before done is closed

	mu   sync.Mutex
	conn *pgx.Conn // to the postgres database, for CREATE and DROP DATABASE
}

func (s *server) dsn(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

func (s *server) admin(ctx context.Context, stmt string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), adminTimeout)
	defer cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.conn.Exec(ctx, stmt)
	return err
}

// credential is whom the server runs as: nil for the test's own user, the
// postgres user when the test runs as root.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, PostgreSQL needs the postgres user to run as (%v): %s", err, installHint)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("postgres user: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

// childEnv is the environment of initdb and postgres: the test's, without
// the PG* variables that would redirect them, in the C locale.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C")
}

func startServer() (*server, error) {
	bin, err := findBinaries(os.Getenv("PATH"), "/usr/lib/postgresql/*/bin")
	if err != nil {
		return nil, err
	}
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	removeStale(os.TempDir())
	tmp, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	s, err := initAndStart(bin, tmp, cred)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	return s, nil
}

func initAndStart(bin, tmp string, cred *syscall.Credential) (*server, error) {
	if cred != nil {
		if err := os.Chown(tmp, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(tmp, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	initdb.Env = childEnv()
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	// A free port can be taken by another process between our probe and
	// the server's bind: try a few.
	var errs []error
	for range 5 {
		s, err := launch(bin, tmp, data, cred)
		if err == nil {
			return s, nil
		}
		errs = append(errs, err)
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	return nil, errors.Join(errs...)
}

var errPortTaken = errors.New("port taken")

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func launch(bin, tmp, data string, cred *syscall.Credential) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(tmp, fmt.Sprintf("postgres-%d.log", port))
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data,
		"-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=",
		// Nothing here must survive a crash: skip every flush.
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=200",
	)
	cmd.Env = childEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	// The postmaster leads a process group of its own (stop kills the
	// group) and dies with the test binary (Pdeathsig, set after the
	// credentials change, which would clear it).
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	s := &server{tmp: tmp, port: port, cmd: cmd, done: make(chan struct{})}
	go func() {
		s.werr = cmd.Wait()
		close(s.done)
	}()
	conn, err := s.waitReady()
	if err != nil {
		s.kill()
		log, _ := os.ReadFile(logPath)
		if strings.Contains(string(log), "could not bind") || strings.Contains(string(log), "already in use") {
			return nil, fmt.Errorf("postgres on port %d: %w", port, errPortTaken)
		}
		return nil, fmt.Errorf("postgres on port %d: %v\n%s", port, err, log)
	}
	s.conn = conn
	return s, nil
}

// waitReady polls the server until it accepts a connection, it exits, or
// readyTimeout passes.
func (s *server) waitReady() (*pgx.Conn, error) {
	deadline := time.Now().Add(readyTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn, err := pgx.Connect(ctx, s.dsn("postgres"))
		cancel()
		if err == nil {
			return conn, nil
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("exited before accepting connections: %v", s.werr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no connection within %v: %v", readyTimeout, err)
		}
	}
}

// kill ends the server's process group at once and waits for the
// postmaster.
func (s *server) kill() {
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
}

// stop shuts the server down (a fast shutdown: SIGINT), kills its process
// group if it has not exited within stopTimeout, and removes its directory.
func (s *server) stop() error {
	if s.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.conn.Close(ctx)
		cancel()
	}
	var err error
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.done:
	case <-time.After(stopTimeout):
		err = fmt.Errorf("postgres did not stop within %v; killed", stopTimeout)
		s.kill()
	}
	return errors.Join(err, os.RemoveAll(s.tmp))
}

// removeStale removes the directories of servers whose test binary died
// before Run could stop them (a -timeout panic, a kill): Pdeathsig ended
// the server, but its 40 MB of files stay. A directory qualifies when it is
// old and its postmaster, if it ever wrote its pid, is gone.
func removeStale(tmpDir string) {
	dirs, _ := filepath.Glob(filepath.Join(tmpDir, "pgtest-*"))
	for _, d := range dirs {
		fi, err := os.Stat(d)
		if err != nil || time.Since(fi.ModTime()) < 10*time.Minute {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(d, "data", "postmaster.pid")); err == nil {
			line, _, _ := strings.Cut(string(b), "\n")
			pid, err := strconv.Atoi(strings.TrimSpace(line))
			if err != nil || pid <= 0 || syscall.Kill(pid, 0) != syscall.ESRCH {
				continue // alive, or unreadable: not ours to judge
			}
		}
		_ = os.RemoveAll(d)
	}
}

// findBinaries returns the directory that holds both initdb and postgres:
// initdb's on the PATH (following a link to where the server's files are),
// else the newest of the directories glob matches.
func findBinaries(pathEnv, glob string) (string, error) {
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			continue
		}
		p, err := filepath.EvalSymlinks(filepath.Join(dir, "initdb"))
		if err != nil {
			continue
		}
		if d := filepath.Dir(p); executable(filepath.Join(d, "initdb")) && executable(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	dirs, _ := filepath.Glob(glob) // the pattern is ours and well formed
	slices.SortFunc(dirs, func(a, b string) int { return versionOf(b) - versionOf(a) })
	for _, d := range dirs {
		if executable(filepath.Join(d, "initdb")) && executable(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", fmt.Errorf("no PostgreSQL server binaries (initdb and postgres) on the PATH or in %s: %s", glob, installHint)
}

// versionOf reads the major version out of /usr/lib/postgresql/15/bin.
func versionOf(dir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return v
}

func executable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
