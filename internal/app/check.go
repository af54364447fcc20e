package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/privatedir"
	"github.com/mcpgate/mcpgate/internal/safetext"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/upstream"
	"github.com/mcpgate/mcpgate/upstream/github"
	"github.com/mcpgate/mcpgate/upstream/oidc"
)

// checkTimeout bounds each check that reaches another server.
const checkTimeout = 15 * time.Second

// githubAPI is the GitHub endpoint the check reaches: serve's connector
// uses github.com's fixed endpoints and fetches nothing at start, so the
// API a login reads the user from stands for them.
var githubAPI = github.DefaultAPIURL

// Check runs the checks of `mcpgate check` on cfg, which load has
// validated as for serve, and prints one line per check on out: "ok"
// or "FAIL", what was checked, and the reason of a failure. It reports
// whether every check passed. It reaches what serve reaches at start
// (the store, each OpenID provider's discovery) and what it reaches at
// the first request (each upstream MCP server), and writes to the store
// only what serve would write there with the same key (SEC-98: it prints
// no secret).
func Check(ctx context.Context, cfg *config.Config, out io.Writer) bool {
	c := &checker{out: out, ok: true}
	gcfg, err := cfg.Gateway()
	if err == nil {
		err = mcpgate.CheckSettings(gcfg)
	}
	if err != nil {
		c.fail("config", "%v", err)
		return false
	}
	unknown := config.UnknownVariables(os.Environ())
	for _, name := range unknown {
		c.fail("config", "%s is no setting of mcpgate, and serve ignores it: %s", name, misspelt(name))
	}
	if len(unknown) == 0 {
		c.pass("config", "valid")
	}
	// What serve warns of at start, it says too: a warning does not fail
	// the check, as it does not stop serve.
	for _, w := range setupWarnings(cfg, cfg.Listen) {
		c.line("warn", "config", "%s", w)
	}
	for _, w := range startWarnings(cfg) {
		c.line("warn", "config", "%s (%s: %v)", w.msg, w.key, w.value)
	}
	c.checkStore(ctx, cfg)
	c.checkAuditLog(cfg)
	c.checkProviders(ctx, cfg)
	c.checkListen(cfg)
	for i, res := range gcfg.Resources {
		// Where a read path of the resource's is set: the flag, or its
		// entry in the file's resources list, which takes no flag.
		readPaths := "with --stdio-read-path"
		if len(cfg.Resources) > 0 {
			readPaths = fmt.Sprintf("in its resources[%d].stdio_read_paths", i)
		}
		c.checkResource(ctx, res, readPaths)
	}
	return c.ok
}

// checkListen reports whether the addresses serve listens on are free. One
// in use is a warning, not a failure: the gateway being checked may be the
// one that holds it, before its restart.
func (c *checker) checkListen(cfg *config.Config) {
	for _, a := range []struct{ name, addr string }{{"listen", cfg.Listen}, {"metrics_listen", cfg.MetricsListen}} {
		if a.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", a.addr)
		switch {
		case errors.Is(err, syscall.EADDRINUSE):
			c.line("warn", "listen", "%s %s: in use now (by a running mcpgate serve, or another program): serve would stop there", a.name, a.addr)
		case err != nil:
			c.fail("listen", "%s %s: %s", a.name, a.addr, reason(err))
		default:
			ln.Close()
			c.pass("listen", "%s %s: free", a.name, a.addr)
		}
	}
}

// misspelt says what a variable that is no setting may have meant.
func misspelt(name string) string {
	if near := config.NearestVariable(name); near != "" {
		return "did you mean " + near + "?"
	}
	return "a misspelt name? mcpgate serve -h lists the variables"
}

// checker prints the lines of Check and remembers a failure.
type checker struct {
	out io.Writer
	ok  bool
}

func (c *checker) pass(kind, format string, args ...any) { c.line("ok", kind, format, args...) }

func (c *checker) fail(kind, format string, args ...any) {
	c.ok = false
	c.line("FAIL", kind, format, args...)
}

func (c *checker) line(status, kind, format string, args ...any) {
	fmt.Fprintf(c.out, "%-4s %-8s %s\n", status, kind, fmt.Sprintf(format, args...))
}

// checkStore opens the store without upgrading its schema, asks it to take
// a write, and checks that the secret key is the one its data was sealed
// with.
func (c *checker) checkStore(ctx context.Context, cfg *config.Config) {
	if !c.checkDataPath(cfg) {
		return
	}
	name := storeName(cfg.StoreDSN())
	if path, missing := missingSQLite(cfg.StoreDSN()); missing {
		c.checkNewSQLite(cfg, name, path)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	st, err := openStoreFor(ctx, cfg, false)
	if errors.Is(err, store.ErrNoSchema) {
		c.pass("store", "%s: a new database: mcpgate serve makes its tables at its first start", name)
		c.checkNewKey(cfg)
		return
	}
	if errors.Is(err, store.ErrSchemaBehind) {
		// Not a fault: what an upgrade meets. Checking must not upgrade
		// it under the gateways serving on it (SEC-178).
		c.pass("store", "%s: %v: %s: stop the older gateways first", name, err, schemaUpgrade)
		c.line("skip", "key", "not checked against a store this version has not upgraded yet")
		return
	}
	if err != nil {
		c.fail("store", "%s: %v", name, err)
		return
	}
	defer st.Close()
	if err := st.Ping(ctx); err != nil {
		c.fail("store", "%s: it does not take a write: %v", name, err)
		return
	}
	c.pass("store", "%s", name)
	if err := mcpgate.CheckClock(ctx, st); err != nil {
		c.fail("clock", "%v", err)
	}
	c.checkKey(ctx, cfg, st)
}

// checkDataPath refuses, as serve does (SEC-196), a data directory or
// SQLite database whose path another user could change. Run as root on
// another user's directory (sudo mcpgate check for the gateway's user),
// it checks nothing: serve runs as that user, whose view it cannot take.
func (c *checker) checkDataPath(cfg *config.Config) bool {
	var dirs []string
	if cfg.SecretKeyFile == "" && cfg.StoreDSN() != "memory" {
		dirs = append(dirs, cfg.DataDir)
	}
	if db, ok := strings.CutPrefix(cfg.StoreDSN(), "sqlite:"); ok {
		dirs = append(dirs, filepath.Dir(db))
	}
	for _, dir := range dirs {
		if os.Geteuid() == 0 && !ownedByRoot(dir) {
			continue
		}
		if err := errors.Join(privatedir.CheckPath(dir), privatedir.CheckDir(dir)); err != nil {
			c.fail("store", "mcpgate serve would refuse it: %v", err)
			return false
		}
	}
	return true
}

// checkAuditLog refuses, as serve does (SEC-221), an audit log that
// another user could have put in place, or whose directory is missing and
// is not the data directory serve makes. As root, a file of its
// directory's owner passes: serve runs as that user.
func (c *checker) checkAuditLog(cfg *config.Config) {
	if cfg.AuditLog == "" {
		return
	}
	if err := audit.CheckPlace(cfg.AuditLog, true); err != nil {
		c.fail("audit", "mcpgate serve would refuse it: %v", err)
		return
	}
	if dir := filepath.Dir(cfg.AuditLog); !isDir(dir) && filepath.Clean(dir) != filepath.Clean(cfg.DataDir) {
		c.fail("audit", "mcpgate serve would refuse it: the directory %s does not exist", dir)
		return
	}
	c.pass("audit", "%s", cfg.AuditLog)
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// ownedByRoot reports whether dir, or the nearest directory above it that
// exists, is root's.
func ownedByRoot(dir string) bool {
	for {
		fi, err := os.Stat(dir)
		if err == nil {
			st, ok := fi.Sys().(*syscall.Stat_t)
			return ok && st.Uid == 0
		}
		if filepath.Dir(dir) == dir {
			return false
		}
		dir = filepath.Dir(dir)
	}
}

// checkNewSQLite checks a SQLite store that does not exist yet without
// making it (a mistyped --data-dir must not leave an empty store
// behind): serve can create it if the nearest directory on its path that
// exists takes a new file.
func (c *checker) checkNewSQLite(cfg *config.Config, name, path string) {
	dir := filepath.Dir(path)
	for {
		if _, err := os.Stat(dir); err == nil || filepath.Dir(dir) == dir {
			break
		}
		dir = filepath.Dir(dir)
	}
	f, err := os.CreateTemp(dir, ".mcpgate-check-*")
	if err != nil {
		c.fail("store", "%s: none yet, and mcpgate serve cannot create it: %v", name, err)
		return
	}
	f.Close()
	os.Remove(f.Name())
	c.pass("store", "%s: none yet: mcpgate serve creates it at its first start", name)
	c.checkNewKey(cfg)
}

// checkNewKey checks the secret key of a store serve has not made yet:
// none yet is fine (serve makes it) unless a key file was named.
func (c *checker) checkNewKey(cfg *config.Config) {
	where := keyFile(cfg)
	if _, err := os.Stat(where); errors.Is(err, fs.ErrNotExist) && cfg.SecretKeyFile == "" {
		c.pass("key", "%s: none yet, and a new store: mcpgate serve makes both at its first start", where)
		return
	}
	if _, err := secretKey(cfg, false); err != nil {
		c.fail("key", "%v", err)
		return
	}
	c.pass("key", "%s: a new store, which mcpgate serve seals with this key at its first start", where)
}

// keyFile is where the secret key is read from, or made at serve's first
// start.
func keyFile(cfg *config.Config) string {
	if cfg.SecretKeyFile != "" {
		return cfg.SecretKeyFile
	}
	return filepath.Join(cfg.DataDir, "secret.key")
}

// checkKey checks the secret key against the store, as serve does at
// start, except on a store with no signing key yet: there serve records
// the key it is given at its first start, and the check leaves that to
// it (and DATA-DIR/secret.key, which serve creates then, may not exist).
func (c *checker) checkKey(ctx context.Context, cfg *config.Config, st store.Store) {
	if cfg.StoreDSN() == "memory" && cfg.SecretKeyFile == "" {
		c.pass("key", "a new one at every start, kept in memory with the store")
		return
	}
	where := keyFile(cfg)
	rows, err := st.ListSigningKeys(ctx)
	if err != nil {
		c.fail("key", "%s: reading the store's signing keys: %v", where, err)
		return
	}
	_, statErr := os.Stat(where)
	if len(rows) == 0 && cfg.SecretKeyFile == "" && errors.Is(statErr, fs.ErrNotExist) {
		c.pass("key", "%s: none yet, and a new store: mcpgate serve makes both at its first start", where)
		return
	}
	key, err := secretKey(cfg, false)
	if err != nil {
		c.fail("key", "%v", err)
		return
	}
	if len(rows) == 0 {
		c.pass("key", "%s: a new store, which mcpgate serve seals with this key at its first start", where)
		return
	}
	if err := mcpgate.CheckSecretKey(ctx, st, key); err != nil {
		c.fail("key", "%s: %s", where, strings.TrimPrefix(err.Error(), "mcpgate: "))
		return
	}
	c.pass("key", "%s opens the store's signing keys", where)
}

// checkProviders checks every identity provider serve sets up: OpenID
// providers by their discovery, as serve reads it at start; GitHub by its
// API.
func (c *checker) checkProviders(ctx context.Context, cfg *config.Config) {
	flagsOIDC, flagsOIDCOn := cfg.OIDCFlagsProvider()
	switch n := len(cfg.LocalUsers); {
	case localAccountsOn(cfg) && n > 0:
		c.pass("provider", "local accounts: %d from local_users, and those the store holds", n)
	case localAccountsOn(cfg):
		c.pass("provider", "local accounts, in the store")
	}
	if cfg.GitHubClientID != "" {
		c.checkGitHub(ctx, cfg)
	}
	providers := cfg.ResolvedOIDCProviders()
	if flagsOIDCOn {
		providers = append([]config.OIDCProvider{flagsOIDC}, providers...)
	}
	for _, op := range providers {
		octx, cancel := context.WithTimeout(ctx, checkTimeout)
		// The login key matters to logins only; none happens here.
		_, err := oidc.New(octx, oidcConfig(op, nil))
		cancel()
		if err != nil {
			c.fail("provider", "%s", theirs(err.Error())) // begins with the provider's name
			continue
		}
		c.pass("provider", "%s %s: discovery", op.Name, op.Issuer)
	}
}

func (c *checker) checkGitHub(ctx context.Context, cfg *config.Config) {
	if _, err := github.New(github.Config{ClientID: cfg.GitHubClientID, ClientSecret: cfg.GitHubClientSecret}); err != nil {
		c.fail("provider", "%v", err)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, githubAPI, nil)
	if err != nil {
		c.fail("provider", "github %s: %v", githubAPI, err)
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.fail("provider", "github %s: %s", githubAPI, reason(err))
		return
	}
	resp.Body.Close()
	c.pass("provider", "github %s: answers (HTTP %d)", githubAPI, resp.StatusCode)
}

// checkResource checks the backend of one resource: an upstream MCP
// server, or a stdio server started as serve starts one, answers
// initialize. readPaths says where the operator adds a read path for res.
func (c *checker) checkResource(ctx context.Context, res mcpgate.Resource, readPaths string) {
	switch {
	case res.Upstream != "":
		c.checkUpstream(ctx, res)
	case len(res.Command) > 0:
		path, err := exec.LookPath(res.Command[0])
		if err != nil {
			c.fail("upstream", "%s stdio %s: %s", res.Path, res.Command[0], reason(err))
			return
		}
		ctx, cancel := context.WithTimeout(ctx, checkTimeout)
		defer cancel()
		server, protocol, err := mcpgate.ProbeStdio(ctx, res)
		if err != nil {
			hint := ""
			if res.Stdio.Isolation != "none" && hidden.MatchString(err.Error()) {
				hint = " (a confined server reads only the system's directories, its own and stdio_read_paths, and sees no other file: if the file it names exists, add the directory that holds its code and data, for Node the one with node_modules, " + readPaths + ")"
			}
			c.fail("upstream", "%s stdio %s: %s%s", res.Path, path, err, hint)
			return
		}
		c.pass("upstream", "%s stdio %s: %s, protocol %s", res.Path, path, theirs(server), theirs(protocol))
	default:
		c.pass("upstream", "%s the demo server, in mcpgate", res.Path)
	}
}

// hidden is a server's complaint that a file is out of its reach or
// absent, which under the sandbox is what a file outside its read paths
// looks like.
var hidden = regexp.MustCompile(`EACCES|ermission denied|ENOENT|Cannot find module|MODULE_NOT_FOUND|No such file`)

// checkUpstream opens a session at the resource's upstream MCP server,
// as a fresh client does (initialize, then notifications/initialized),
// and closes it: the go-sdk client sends the DELETE that ends a
// streamable-HTTP session, and closes a legacy server's SSE stream.
func (c *checker) checkUpstream(ctx context.Context, res mcpgate.Resource) {
	shown := res.Upstream
	if u, err := url.Parse(res.Upstream); err == nil {
		shown = safetext.URL(u)
	}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	hc := &http.Client{Timeout: checkTimeout}
	var t mcp.Transport = &mcp.StreamableClientTransport{Endpoint: res.Upstream, HTTPClient: hc, MaxRetries: -1, DisableStandaloneSSE: true}
	if res.UpstreamTransport == "sse" {
		t = &mcp.SSEClientTransport{Endpoint: res.Upstream, HTTPClient: &http.Client{}} // the stream outlives any client timeout
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "mcpgate-check", Version: Version}, nil)
	// An error may quote the URL whole; its query may hold a token.
	hide := strings.NewReplacer(res.Upstream, shown)
	sess, err := client.Connect(ctx, t, nil)
	if err != nil {
		c.fail("upstream", "%s %s: %s", res.Path, shown, reason(hiding(err, hide)))
		return
	}
	server, protocol := "a server", "unknown"
	if ir := sess.InitializeResult(); ir != nil {
		protocol = ir.ProtocolVersion
		if ir.ServerInfo != nil {
			server = strings.TrimSpace(ir.ServerInfo.Name + " " + ir.ServerInfo.Version)
		}
	}
	if err := sess.Close(); err != nil {
		c.fail("upstream", "%s %s: closing the session: %s", res.Path, shown, reason(hiding(err, hide)))
		return
	}
	c.pass("upstream", "%s %s: %s, protocol %s", res.Path, shown, theirs(server), theirs(protocol))
}

// theirs is text a server chose (its name, versions, the words of its
// errors) as check prints it: bounded, and with its control characters
// replaced, so that it writes no escape sequence to the operator's
// terminal.
func theirs(s string) string { return safetext.Printable(upstream.Clip(s)) }

// rewordedError is an error whose text has had something replaced, and
// which still unwraps to the error it was made from.
type rewordedError struct {
	error
	text string
}

func (e rewordedError) Error() string { return e.text }
func (e rewordedError) Unwrap() error { return e.error }

// hiding returns err with its text passed through r.
func hiding(err error, r *strings.Replacer) error { return rewordedError{err, r.Replace(err.Error())} }

// reason is err in the fewest words that still say what to fix: the
// system's error ("connection refused") rather than the chain of calls
// that led to it.
func reason(err error) string {
	var errno syscall.Errno
	var dns *net.DNSError
	switch {
	case errors.As(err, &errno):
		return errno.Error()
	case errors.As(err, &dns):
		return dns.Error()
	case errors.Is(err, context.DeadlineExceeded) || os.IsTimeout(err):
		return fmt.Sprintf("no answer within %s", checkTimeout)
	}
	return theirs(err.Error())
}

// storeName is the store as the check prints it: no password, nor any
// other part of a PostgreSQL DSN but its host and database (SEC-98).
func storeName(dsn string) string {
	switch kind := storeKind(dsn); {
	case dsn == "memory":
		return "memory (nothing survives a restart)"
	case kind == "sqlite":
		return "sqlite " + strings.TrimPrefix(dsn, "sqlite:")
	case strings.HasPrefix(kind, "postgres"):
		if u, err := url.Parse(dsn); err == nil {
			return "postgres " + u.Host + u.Path
		}
		return "postgres"
	default:
		return kind
	}
}
