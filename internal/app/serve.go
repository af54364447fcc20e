package app

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/logbuf"
	"github.com/mcpgate/mcpgate/internal/netlimit"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/safetext"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/internal/tracing"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/memory"
	"github.com/mcpgate/mcpgate/store/postgres"
	"github.com/mcpgate/mcpgate/store/sqlite"
	"github.com/mcpgate/mcpgate/upstream"
	"github.com/mcpgate/mcpgate/upstream/github"
	"github.com/mcpgate/mcpgate/upstream/local"
	"github.com/mcpgate/mcpgate/upstream/oidc"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Version is set at build time with -ldflags "-X …/internal/app.Version=…".
var Version = "dev"

// Serve runs the gateway until ctx is done. stdout gets the one-time
// admin password notice and the listening address; logs go to stderr.
// ready, if not nil, receives the bound address once listening.
func Serve(ctx context.Context, cfg *config.Config, stdout, stderr io.Writer, ready chan<- string) error {
	// Buffered (SEC-105): a write system call per access line would cost
	// each request about 10 µs; warnings and errors are written at once.
	logw := logbuf.New(stderr, logbuf.DefaultDelay)
	defer logw.Close()
	log := newLogger(cfg, logw)
	gcfg, err := cfg.Gateway()
	if err != nil {
		return err
	}
	// First: a second serve on a port in use makes nothing, not a data
	// directory where it was started.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w (give another address with --listen, or stop what uses this one)", err)
	}
	defer ln.Close() // also closed by the server at shutdown
	noteDataDir := noteNewDataDir(log, cfg.DataDir)
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	gcfg.Store, gcfg.Logger, gcfg.Version = st, log, Version
	if gcfg.SecretKey, err = secretKey(cfg, true); err != nil {
		return err
	}
	noteDataDir()
	if err := mcpgate.CheckSecretKey(ctx, st, gcfg.SecretKey); err != nil {
		return err // before the connectors write to the store
	}
	if gcfg.Connectors, err = setupConnectors(ctx, cfg, st, log, gcfg.SecretKey); err != nil {
		return err
	}
	if cfg.AuditLog != "" {
		l, closer, err := audit.Open(cfg.AuditLog)
		if err != nil {
			return err
		}
		defer closer.Close()
		gcfg.Audit = l
	}
	warnOnStart(cfg, log)
	tp, err := tracing.FromEnv(ctx, Version)
	if err != nil {
		return err
	}
	if tp != nil {
		gcfg.TracerProvider = tp
		defer stopTracing(tp, log)
		// The SDK reports a failed export here; by default it would print
		// past the gateway's log format.
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("tracing", "err", err) }))
		log.Info("tracing: exporting spans over OTLP/HTTP as the OTEL_* environment says")
	}

	addr := ln.Addr().String()
	gcfg.FallbackURL = "http://" + addr
	mln, err := openMetrics(cfg, &gcfg)
	if err != nil {
		return err
	}
	gw, err := mcpgate.New(ctx, gcfg)
	if err != nil {
		if mln != nil {
			mln.Close()
		}
		return err
	}
	// Once the gateway is set to serve, so that a start that fails before
	// does not spend the password it shows once.
	if err := ensureAdmin(ctx, cfg, st, log, stdout); err != nil {
		if mln != nil {
			mln.Close()
		}
		gw.Close(context.WithoutCancel(ctx))
		return err
	}
	if mln != nil {
		defer serveMetrics(mln, gcfg.Metrics, log)()
	}
	announce(cfg, gcfg.Resources, addr, stdout, log)
	// At once, not within the delay: operators and scripts wait for these.
	_ = logw.Flush()
	if ready != nil {
		ready <- addr
	}
	go housekeeping(ctx, gw, log)
	return run(ctx, gw, ln, limitsOf(cfg, log), log)
}

// announce says where the gateway listens and its endpoints on stdout,
// and logs it with the warnings about its settings.
func announce(cfg *config.Config, resources []mcpgate.Resource, addr string, stdout io.Writer, log *slog.Logger) {
	public := cmp.Or(oauth.Origin(cfg.PublicURL), "http://"+addr)
	fmt.Fprintf(stdout, "mcpgate %s listening on %s\n", Version, addr)
	for _, res := range resources {
		fmt.Fprintf(stdout, "MCP endpoint: %s%s\n", public, res.Path)
	}
	fmt.Fprintf(stdout, "Account page: %s/account (admin console: %s/admin)\n", public, public)
	log.Info("listening", "addr", addr, "public_url", public, "store", storeKind(cfg.StoreDSN()))
	for _, w := range setupWarnings(cfg, addr) {
		log.Warn(w)
	}
	for _, name := range config.UnknownVariables(os.Environ()) {
		log.Warn(name+" is no setting of mcpgate, and is ignored: "+misspelt(name), "variable", name)
	}
}

// stopTracing sends the spans the tracer provider still holds, waiting at
// most 5 s for the collector: an unreachable one must not hold up the
// gateway's exit.
func stopTracing(tp *sdktrace.TracerProvider, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tp.Shutdown(ctx); err != nil {
		log.Warn("tracing: flushing spans at exit", "err", err)
	}
}

// openMetrics opens the metrics listener of cfg, if any, and gives gcfg
// the collectors it serves.
func openMetrics(cfg *config.Config, gcfg *mcpgate.Config) (net.Listener, error) {
	if cfg.MetricsListen == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", cfg.MetricsListen)
	if err != nil {
		return nil, fmt.Errorf("metrics_listen: %w", err)
	}
	gcfg.Metrics = mcpgate.NewMetrics()
	return ln, nil
}

// The connections the metrics listener holds at once, in all and from
// one address (SEC-206): a scraper or two need a connection each, and
// without a cap connections held idle there would take every descriptor,
// the public listener's too. They come out of the quarter of the file
// limit that limitsOf leaves.
const (
	metricsMaxConns      = 16
	metricsMaxPerAddress = 4
)

// serveMetrics serves m at /metrics on ln, a listener of its own: the
// public one never serves them (SEC-89). The returned function stops it,
// when serve returns.
func serveMetrics(ln net.Listener, m *mcpgate.Metrics, log *slog.Logger) (stop func()) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	ln = netlimit.NewListener(ln, netlimit.Options{Max: metricsMaxConns, PerAddress: metricsMaxPerAddress, Logger: log})
	srv := &http.Server{
		Handler:           netlimit.Handler(mux),
		ConnContext:       netlimit.ConnContext,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("serving metrics", "addr", ln.Addr().String(), "path", "/metrics")
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("metrics listener", "err", err)
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}
}

// run serves HTTP on ln until ctx is done, then shuts down: in-flight
// requests finish (and their writes commit) before the store closes; new
// connections are refused. Event streams, which would last as long as
// their clients, end at once.
func run(ctx context.Context, gw *mcpgate.Gateway, ln net.Listener, lim limits, log *slog.Logger) error {
	srv := newServer(gw, lim, log)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lim.listener(ln, log)) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	gw.EndStreams()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown: connections still open", "err", err)
	}
	if err := gw.Close(sctx); err != nil {
		log.Warn("shutdown: stopping backends", "err", err)
	}
	return nil
}

// limits are the bounds the server puts on its clients (SEC-40, SEC-41);
// a cap of 0 is off.
type limits struct {
	headerTimeout, readTimeout time.Duration
	maxConns, perAddress       int
}

// limitsOf reads the limits from cfg. The overall cap defaults to three
// quarters of the open-file limit (which Go raised to the hard one at
// start), leaving the rest to the store, the metrics listener and the
// stdio servers' pipes: a gateway out of descriptors stops accepting
// anyone, /healthz included. Where a resource has an upstream server,
// each client connection may hold one to the upstream (a request in
// flight, an event stream): the clients then get half of that.
func limitsOf(cfg *config.Config, log *slog.Logger) limits {
	lim := limits{
		headerTimeout: time.Duration(cfg.RequestHeaderTimeout),
		readTimeout:   time.Duration(cfg.RequestReadTimeout),
		maxConns:      max(int(cfg.MaxConnections), 0),
		perAddress:    max(int(cfg.MaxConnectionsPerAddress), 0),
	}
	files, known := openFileLimit()
	if cfg.MaxConnections == 0 {
		lim.maxConns = defaultMaxConns
		if known {
			share := files / 4 * 3
			if proxies(cfg) {
				share /= 2
			}
			lim.maxConns = int(min(share, 1<<30))
		}
	}
	if known && lim.maxConns > 0 && uint64(lim.maxConns) >= files {
		log.Warn("max_connections is at or above the open-file limit: out of descriptors, the gateway stops accepting anyone",
			"max_connections", lim.maxConns, "open_file_limit", files)
	}
	log.Info("client limits", "request_header_timeout", cfg.RequestHeaderTimeout.String(), "request_read_timeout", cfg.RequestReadTimeout.String(),
		"max_connections", capValue(lim.maxConns), "max_connections_per_address", capValue(lim.perAddress))
	return lim
}

// proxies reports whether a resource of cfg has an upstream server, which
// takes a connection of the gateway's per client request in flight.
func proxies(cfg *config.Config) bool {
	return cfg.Upstream != "" || slices.ContainsFunc(cfg.Resources, func(r config.Resource) bool { return r.Upstream != "" })
}

// capValue is a cap as the settings write it: off for none.
func capValue(n int) any {
	if n == 0 {
		return "off"
	}
	return n
}

// defaultMaxConns is the overall cap where the open-file limit is unknown.
const defaultMaxConns = 4096

// listener caps the connections of ln.
func (lim limits) listener(ln net.Listener, log *slog.Logger) net.Listener {
	return netlimit.NewListener(ln, netlimit.Options{Max: lim.maxConns, PerAddress: lim.perAddress, Logger: log})
}

// newServer is the HTTP server of h, to be served on lim.listener.
//
// ReadTimeout bounds the whole request, headers and body, on every route
// (SEC-40); it does not bound the answer. net/http lifts that deadline
// itself when the request has been read whole (the body at EOF, or none):
// it then starts a background read, with no deadline, to notice a client
// that hangs up. So an event stream, or a long tool call answered as one,
// lasts as long as it needs. A per-route deadline set from a handler with
// ResponseController.SetReadDeadline was the alternative, and the wrong
// one: set once the request has been read, it arms that background read,
// whose timeout cancels the request's context, which ends the stream.
// No route reads a request body as a stream (a POST's body is one
// JSON-RPC message), so nothing needs more than ReadTimeout.
func newServer(h http.Handler, lim limits, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           netlimit.Handler(h),
		ConnContext:       netlimit.ConnContext,
		ReadHeaderTimeout: lim.headerTimeout,
		ReadTimeout:       lim.readTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// warnOnStart logs the settings that must not be used in production.
// setupWarnings are what a setting that starts fine but does not do what
// its operator most likely meant deserves: a loopback public_url on
// another port than the one mcpgate listens on (nothing answers there
// unless a proxy forwards it), and an Entra ID provider open to every
// tenant, a secret key file (secret_key_file or DATA-DIR/secret.key,
// SEC-171) others may read, a shared store without one public_url.
func setupWarnings(cfg *config.Config, addr string) []string {
	var out []string
	if u, err := url.Parse(cfg.PublicURL); err == nil && cfg.PublicURL != "" {
		_, port, _ := net.SplitHostPort(addr)
		pub := cmp.Or(u.Port(), map[string]string{"http": "80", "https": "443"}[u.Scheme])
		if h := u.Hostname(); (h == "localhost" || net.ParseIP(h).IsLoopback()) && pub != port {
			out = append(out, fmt.Sprintf("public_url %s is on port %s of this machine, but mcpgate listens on %s: "+
				"clients and providers reach nothing there unless a proxy forwards that port; set listen to 127.0.0.1:%s", cfg.PublicURL, pub, addr, pub))
		}
	}
	providers := cfg.ResolvedOIDCProviders()
	if op, on := cfg.OIDCFlagsProvider(); on {
		providers = append(providers, op)
	}
	for _, op := range providers {
		if op.Preset == "entra" && len(op.AllowedTenants) == 0 && (op.Tenant == "common" || op.Tenant == "organizations" ||
			strings.Contains(op.Issuer, "/common/") || strings.Contains(op.Issuer, "/organizations/")) {
			out = append(out, fmt.Sprintf("provider %s lets in an account of any Microsoft Entra ID tenant: "+
				"list the tenants that may log in in its allowed_tenants (oidc_providers in the file)", op.Name))
		}
	}
	key := keyFile(cfg)
	if k, err := tokens.ReadKeyFile(key); err == nil && tokens.LooksTyped(k) {
		// Not refused: the store it seals may hold keys no other opens.
		out = append(out, fmt.Sprintf("the secret key in %s was typed by hand, not drawn at random (as AAAA…A= is): whoever guesses it and reads the database "+
			"can mint tokens; a new store should get one from mcpgate keys new-secret (SEC-198)", key))
	}
	if readableByOthers(key) {
		fi, _ := os.Stat(key)
		if cfg.SecretKeyFile != "" {
			key = "secret_key_file " + key
		}
		out = append(out, fmt.Sprintf("%s is readable by others (mode %04o): whoever reads it and the database can mint tokens; make it readable by mcpgate alone (chmod 600)", key, fi.Mode().Perm()))
	}
	if strings.HasPrefix(storeKind(cfg.StoreDSN()), "postgres") && cfg.PublicURL == "" {
		// The issuer is the origin a request came to: replicas reached
		// under different names or ports issue tokens for different
		// issuers, which the others refuse.
		out = append(out, "the store is PostgreSQL, which replicas share, and public_url is not set: each replica's issuer follows the host and port "+
			"it is reached at, and a token one issues is refused by a replica reached at another; give every replica the same public_url (the load balancer's URL)")
	}
	if file, keys := cfg.SecretsInFile(); len(keys) > 0 && readableByOthers(file) {
		fi, _ := os.Stat(file)
		out = append(out, fmt.Sprintf("the configuration file %s is readable by others (mode %04o) and holds secrets (%s): make it readable by mcpgate alone (chmod 600), "+
			"or give them through $VARIABLES or *_file settings (SEC-198)", file, fi.Mode().Perm(), strings.Join(keys, ", ")))
	}
	for _, sc := range cfg.Clients {
		if n := utf8.RuneCountInString(sc.Secret); sc.Secret != "" && n < minClientSecretLen {
			out = append(out, fmt.Sprintf("client %s has a secret of %d characters, which is quickly guessed: give it at least %d random ones "+
				"(mcpgate keys new-secret prints 44) (SEC-198)", sc.ID, n, minClientSecretLen))
		}
	}
	for _, spec := range cfg.LocalUsers {
		name, pw, _, err := local.ParseUserSpecGroups(spec)
		if n := utf8.RuneCountInString(pw); err == nil && !local.IsBcryptHash(pw) && n < minPasswordLen {
			out = append(out, fmt.Sprintf("local user %s has a password of %d characters, which is quickly guessed: give it at least %d, "+
				"as users add and users passwd ask (SEC-143)", name, n, minPasswordLen))
		}
	}
	if cfg.GitHubClientID != "" && cfg.GitHubGroups && len(cfg.AdminGroups) > 0 {
		// The providers share one namespace of groups (README, "Who may
		// enter"), and anyone can create a GitHub organization (SEC-111).
		out = append(out, fmt.Sprintf("admin_groups %q: with github_groups on, every member of a GitHub organization or team of that name "+
			"is an administrator, whoever created it: make sure each is a team of your own GitHub organization (org/team) or a group only your identity provider gives", cfg.AdminGroups))
	}
	return out
}

// minClientSecretLen is the fewest characters of a pre-registered
// client's secret that serve takes without a warning: 128 bits in base64.
const minClientSecretLen = 22

// readableByOthers reports whether users other than mcpgate's may read
// file: any user, or a group that is none of this process's. A group of
// its own is no other user (Kubernetes mounts a Secret as root:fsGroup,
// 0440, for a process in fsGroup).
func readableByOthers(file string) bool {
	fi, err := os.Stat(file)
	if err != nil {
		return false
	}
	perm := fi.Mode().Perm()
	if perm&0o007 != 0 {
		return true
	}
	if perm&0o070 == 0 {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	groups, _ := os.Getgroups()
	return int(st.Gid) != os.Getgid() && !slices.Contains(groups, int(st.Gid))
}

func warnOnStart(cfg *config.Config, log *slog.Logger) {
	for _, w := range startWarnings(cfg) {
		log.Warn(w.msg, w.key, w.value)
	}
}

// startWarning is a warning of warnOnStart, with the setting it names.
type startWarning struct {
	msg, key string
	value    any
}

// startWarnings are warnOnStart's, which check prints too.
func startWarnings(cfg *config.Config) []startWarning {
	var out []startWarning
	if flags := cfg.SecretsOnCommandLine(); len(flags) > 0 {
		out = append(out, startWarning{"a secret is on the command line, which every user of this machine can read (ps, /proc/PID/cmdline): give it in its MCPGATE_ variable, " +
			"the configuration file, or its *_file setting where it has one (a local account's password may also be a bcrypt hash) instead", "flags", flags})
	}
	if cfg.CIMDTestCAFile != "" {
		out = append(out, startWarning{"TESTING ONLY: client metadata documents are fetched trusting a test CA", "file", cfg.CIMDTestCAFile})
	}
	if len(cfg.CIMDAllowHosts) > 0 {
		out = append(out, startWarning{"TESTING ONLY: client metadata documents may come from private addresses of these hosts", "hosts", cfg.CIMDAllowHosts})
	}
	return out
}

func newLogger(cfg *config.Config, w *logbuf.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if cfg.LogFormat == "json" {
		// The text handler quotes what is not printable; the JSON one
		// writes bidi and C1 characters raw (SEC-116).
		opts.ReplaceAttr = safetext.InertAttr
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(logbuf.NewHandler(h, w))
}

func openStore(ctx context.Context, cfg *config.Config) (store.Store, error) {
	return openStoreFor(ctx, cfg, true)
}

// openStoreFor opens the store cfg names; with upgrade, as serve does,
// it applies the schema's pending migrations, else it refuses a schema
// they would change (store.ErrSchemaBehind).
func openStoreFor(ctx context.Context, cfg *config.Config, upgrade bool) (store.Store, error) {
	dsn := cfg.StoreDSN()
	switch {
	case dsn == "memory":
		return memory.New(), nil
	case strings.HasPrefix(dsn, "sqlite:"):
		open := sqlite.OpenCurrent
		if upgrade {
			open = sqlite.Open
		}
		st, err := open(ctx, strings.TrimPrefix(dsn, "sqlite:"))
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		return st, nil
	case strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://"):
		open := postgres.OpenCurrent
		if upgrade {
			open = postgres.Open
		}
		st, err := open(ctx, dsn) // its errors never hold the DSN
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		return st, nil
	}
	return nil, fmt.Errorf("store %q is not supported", storeKind(dsn))
}

// noteNewDataDir returns a func, to call once the store and the key are
// there, that logs dir's absolute path if dir has been made since:
// started from another directory, or with a typo, serve would otherwise
// seem to have lost every registration.
func noteNewDataDir(log *slog.Logger, dir string) func() {
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		return func() {}
	}
	return func() {
		if _, err := os.Stat(dir); err == nil {
			abs, _ := filepath.Abs(dir)
			log.Info("a new data directory was made", "dir", abs)
		}
	}
}

// ensureAdmin creates the local account admin on a store that has no
// local account yet, when local accounts are on, and shows its password
// once on stdout.
func ensureAdmin(ctx context.Context, cfg *config.Config, st store.Store, log *slog.Logger, stdout io.Writer) error {
	if !localAccountsOn(cfg) {
		return nil
	}
	pw, created, err := local.New(st, local.Options{Logger: log}).EnsureAdmin(ctx)
	if err != nil {
		return fmt.Errorf("create admin: %w", err)
	}
	if !created {
		return nil
	}
	kept := "it is stored hashed in " + cfg.DataDir + ".\nLost it? mcpgate users passwd admin sets another (with the same --data-dir)."
	switch kind := storeKind(cfg.StoreDSN()); {
	case kind == "memory":
		kept = "the memory store keeps it only until mcpgate stops: a new one is made at every start."
	case strings.HasPrefix(kind, "postgres"):
		kept = "it is stored hashed in the PostgreSQL database.\nLost it? mcpgate users passwd admin sets another (with the same --store)."
	}
	fmt.Fprintf(stdout, "\nCreated local user \"admin\" with password: %s\nIt is shown only this once; %s\n\n", pw, kept)
	return nil
}

func storeKind(dsn string) string {
	kind, _, _ := strings.Cut(dsn, ":")
	return kind
}

// setConfiguredUsers writes local_users' accounts into the store, marked as
// the configuration's (the admin commands refuse to change them, since the
// next start would put them back). An account that local_users no longer
// lists is disabled, its grants revoked and its sessions ended (SEC-147):
// taking someone out of the list takes away their access, as an operator
// expects; `mcpgate users enable` keeps the account as the store's own.
func setConfiguredUsers(ctx context.Context, cfg *config.Config, st store.Store, log *slog.Logger) error {
	lc := local.New(st, local.Options{Logger: log})
	listed := map[string]bool{}
	for _, spec := range cfg.LocalUsers {
		name, pw, groups, err := local.ParseUserSpecGroups(spec)
		if err != nil {
			return fmt.Errorf("local user: %w", err)
		}
		if err := lc.SetConfiguredUser(ctx, name, pw, groups...); err != nil {
			return fmt.Errorf("local user %s: %w", name, err)
		}
		listed[name] = true
	}
	users, err := st.ListLocalUsers(ctx)
	if err != nil {
		return fmt.Errorf("local users: %w", err)
	}
	for _, u := range users {
		if !u.Configured || listed[u.Name] {
			continue
		}
		u.Configured = false
		if err := st.PutLocalUser(ctx, u); err != nil {
			return fmt.Errorf("local user %s: %w", u.Name, err)
		}
		if !u.DisabledAt.IsZero() {
			continue
		}
		revoked, err := st.DisableLocalUser(ctx, u.Name, time.Now())
		if err != nil {
			return fmt.Errorf("local user %s: disabling it: %w", u.Name, err)
		}
		log.Warn("local user no longer in local_users: disabled, its grants revoked; mcpgate users enable keeps it as the store's own",
			"user", u.Name, "grants_revoked", len(revoked))
	}
	return nil
}

// setupConnectors enables GitHub, the oidc_* settings' provider, the
// google_* settings' and each of oidc_providers when configured, and local accounts when users are
// configured or no other connector is. With local accounts and no user at
// all, it creates admin and prints its password once. secretKey keys what connectors derive per login.
func setupConnectors(ctx context.Context, cfg *config.Config, st store.Store, log *slog.Logger, secretKey []byte) ([]upstream.Connector, error) {
	var out []upstream.Connector
	flagsOIDC, flagsOIDCOn := cfg.OIDCFlagsProvider()
	if err := setConfiguredUsers(ctx, cfg, st, log); err != nil {
		return nil, err
	}
	if localAccountsOn(cfg) {
		out = append(out, local.New(st, local.Options{Logger: log}))
	}
	if cfg.GitHubClientID != "" {
		gh, err := github.New(github.Config{ClientID: cfg.GitHubClientID, ClientSecret: cfg.GitHubClientSecret, Groups: cfg.GitHubGroups,
			PKCEKey: loginKey(secretKey, "mcpgate github login key v1")})
		if err != nil {
			return nil, fmt.Errorf("github: %w", err)
		}
		out = append(out, gh)
	}
	if flagsOIDCOn {
		oc, err := oidc.New(ctx, oidcConfig(flagsOIDC, oidcLoginKey(secretKey, oidc.DefaultName)))
		if err != nil {
			return nil, err
		}
		out = append(out, oc)
	}
	providers := cfg.ResolvedOIDCProviders()
	for i, op := range providers {
		oc, err := oidc.New(ctx, oidcConfig(op, oidcLoginKey(secretKey, op.Name)))
		if err != nil {
			// The google_* settings' provider comes first.
			if j := i - (len(providers) - len(cfg.OIDCProviders)); j >= 0 {
				return nil, fmt.Errorf("oidc_providers[%d]: %w", j, err)
			}
			return nil, fmt.Errorf("google: %w", err)
		}
		out = append(out, oc)
	}
	return out, nil
}

// localAccountsOn reports whether serve offers local accounts: when
// local_users lists some, or no other identity provider is configured.
func localAccountsOn(cfg *config.Config) bool {
	_, flagsOIDCOn := cfg.OIDCFlagsProvider()
	return len(cfg.LocalUsers) > 0 || (cfg.GitHubClientID == "" && !flagsOIDCOn && cfg.GoogleClientID == "" && len(cfg.OIDCProviders) == 0)
}

// oidcConfig is the connector configuration of a provider, its preset
// applied.
func oidcConfig(op config.OIDCProvider, key []byte) oidc.Config {
	return oidc.Config{Name: op.Name, DisplayName: op.DisplayName, Issuer: op.Issuer,
		ClientID: op.ClientID, ClientSecret: op.ClientSecret, Scopes: op.Scopes, AuthParams: op.AuthParams, OfflineAccess: op.OfflineAccess,
		Claims:        oidc.Claims{Subject: op.Claims.Subject, Username: op.Claims.Username, Email: op.Claims.Email, Groups: op.Claims.Groups},
		HostedDomains: op.HostedDomain, TenantIssuer: op.Preset == "entra", AllowedTenants: op.AllowedTenants,
		Key: key}
}

// oidcLoginKey is the key of provider name's login state, derived from the
// secret key so that a login that starts before a restart, or on another
// replica, still completes; one key per provider, so that no provider's
// state serves another's. The flags' provider keeps the derivation it had
// alone, so logins under way at an upgrade complete.
func oidcLoginKey(secretKey []byte, name string) []byte {
	if name != oidc.DefaultName {
		return loginKey(secretKey, "mcpgate oidc login key v1\x00"+name)
	}
	return loginKey(secretKey, "mcpgate oidc login key v1")
}

// loginKey derives the key of purpose from the secret key, which every
// replica holds: a connector's login that starts on one replica, or
// before a restart, completes on another.
func loginKey(secretKey []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secretKey)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// housekeeping removes expired records and unused clients now and then.
func housekeeping(ctx context.Context, gw *mcpgate.Gateway, log *slog.Logger) {
	t := time.NewTicker(5 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := gw.Housekeeping(ctx); err != nil && !errors.Is(err, context.Canceled) {
				log.Warn("housekeeping", "err", err)
			}
		}
	}
}
