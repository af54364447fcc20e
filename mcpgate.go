package mcpgate

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/authserver"
	"github.com/mcpgate/mcpgate/internal/backend/bridge"
	"github.com/mcpgate/mcpgate/internal/backend/embedded"
	"github.com/mcpgate/mcpgate/internal/backend/proxy"
	"github.com/mcpgate/mcpgate/internal/cimd"
	"github.com/mcpgate/mcpgate/internal/console"
	"github.com/mcpgate/mcpgate/internal/flows"
	"github.com/mcpgate/mcpgate/internal/metrics"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/policy"
	"github.com/mcpgate/mcpgate/internal/ratelimit"
	"github.com/mcpgate/mcpgate/internal/resource"
	"github.com/mcpgate/mcpgate/internal/safetext"
	"github.com/mcpgate/mcpgate/internal/sandbox"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/internal/tracing"
	"github.com/mcpgate/mcpgate/internal/userlimit"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/upstream"
	"github.com/mcpgate/mcpgate/upstream/local"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/trace"
)

// Config configures a Gateway. Store, SecretKey and at least one connector
// are required; everything else has a default.
type Config struct {
	// PublicURL is the issuer and origin clients use, like
	// https://mcp.example.com. Empty: the gateway runs on loopback and the
	// issuer follows the request's loopback Host (or Fallback).
	PublicURL string
	// FallbackURL is the issuer for requests whose Host is not a loopback
	// name when PublicURL is empty; default http://127.0.0.1:8080.
	FallbackURL string

	Store store.Store
	// SecretKey (32 bytes) encrypts the signing keys at rest and signs the
	// CSRF tokens of the gateway's forms. Keep it secret and stable: a new
	// key cannot open the stored signing key.
	SecretKey []byte

	Connectors []upstream.Connector
	Clients    []Client // pre-registered clients
	// IntrospectionClients are the IDs of pre-registered confidential
	// clients (resource servers) that may introspect every access token
	// the gateway issues. Any other client learns only about its own
	// tokens, and nobody about another client's refresh token (SEC-10).
	IntrospectionClients []string

	// Client ID Metadata Documents (CIMD-1): an https client_id is fetched
	// and validated, unless DisableCIMD.
	DisableCIMD bool
	// CIMDAllowHosts may serve documents from loopback or private addresses,
	// which are otherwise refused (CIMD-10): for local testing only.
	CIMDAllowHosts []string
	// CIMDDenyHosts refuses documents and key sets from these hosts
	// ("example.com", or ".example.com" for every host under it), cached
	// or not (SEC-164).
	CIMDDenyHosts []string
	// CIMDRootCAs replaces the system roots when fetching documents: for a
	// test CA only.
	CIMDRootCAs *x509.CertPool

	// MCP is the handler protected at MCPPath; nil serves the demo server
	// (tools whoami and echo).
	MCP     http.Handler
	MCPPath string   // default "/mcp"
	Scopes  []string // required by every request, advertised in PRM; default ["mcp"]
	// OptionalScopes may be granted when a client asks (step-up), and are
	// never advertised in PRM (PRM-7).
	OptionalScopes []string
	// ScopeImplies maps a broader scope to the narrower ones it includes,
	// e.g. {"mcp:admin": {"mcp:read", "mcp:write"}} (SCOPE-5).
	ScopeImplies   map[string][]string
	AllowedOrigins []string // browser origins allowed at MCPPath besides loopback ones

	// TrustedProxies are the reverse proxies in front of the gateway: a
	// request from one names its client by the last X-Forwarded-For entry
	// that is none of them, for the per-address registration limit and
	// the flow debugger (SEC-138). Empty: the TCP peer is the client.
	TrustedProxies []netip.Prefix

	// Resources lists several protected MCP endpoints under the one issuer;
	// when set, MCP, MCPPath, Scopes, OptionalScopes and ScopeImplies are
	// not used. A token is issued for one resource and refused at the
	// others (RES-3, RES-4).
	Resources []Resource

	// Access says who may log in at all (each resource's Access narrows
	// it further): checked at login, whatever the provider, and again at
	// every refresh, so that someone taken out of a rule loses access at
	// their next refresh (RT-3). The zero value lets everyone in who can
	// log in.
	Access Access

	// Durations follow one rule, here and in the settings of mcpgate
	// serve: zero means "not set", which takes the default. Only
	// RefreshGrace, UpstreamRecheck and UnusedClientExpiry can be turned off, with a
	// negative value (off in the settings, which refuse a 0 written out).
	AccessTokenTTL  time.Duration // default 1h, at most 24h (tokens.MaxLifetime)
	RefreshTokenTTL time.Duration // default 30 days
	// RefreshGrace is how long a rotated refresh token, presented again,
	// gets the same new pair instead of revoking its family (RT-1: retries,
	// and clients that refresh from two places at once). Default 30 s.
	RefreshGrace time.Duration
	// UpstreamRecheck is how old a grant's upstream tokens may grow before
	// a refresh renews them at the identity provider and re-reads the
	// user's groups from it (RT-3): a user removed from a group, or whose
	// session the provider ended, loses it at their next refresh after
	// this. Only connectors whose provider issues refresh tokens (OpenID
	// Connect) are rechecked. Default 1h.
	UpstreamRecheck time.Duration

	// UnusedClientExpiry is how long a dynamically registered client may
	// go without coming to /authorize or /token before Housekeeping
	// deletes it, unless it holds a live grant (an unexpired refresh
	// token or code). Default 90 days; negative: never (SEC-14).
	UnusedClientExpiry time.Duration

	// KeyRotation is how old the signing key grows before a new one
	// replaces it (default 30 days; negative: never, `mcpgate keys rotate`
	// still can). The old key goes on verifying, and stays in the JWKS,
	// until every token it signed has expired: AccessTokenTTL plus three
	// KeyReloads plus 80 s plus 5 minutes after the new one was made. Of the
	// gateways on one store that find the key due at once, one makes the
	// new key and all sign with it.
	KeyRotation time.Duration
	// KeyReload is how often the gateway reads the signing keys from the
	// store again (default 15 s; replicas on one store take the same): a
	// key another replica, or `mcpgate keys rotate`, made is published
	// here within this time, and signs from two KeyReloads plus 80 s
	// after it was made, once every JWKS a backend holds has it (a
	// fetched JWKS is used up to a minute, clocks differ up to 20 s). A
	// token signed by a key this gateway does not know yet makes it read
	// them at once (at most once a second), so it is never refused for
	// that.
	KeyReload time.Duration

	// Audit receives one event per tools/call; nil writes them to Logger.
	Audit audit.Recorder

	// AdminGroups: a member of any of these groups may use the admin
	// console at /admin; so may the local account named "admin" (user ID
	// local:admin) when the local connector is configured (SEC-111).
	AdminGroups []string
	// RecordFlows turns on the flow debugger: every step of every
	// authorization attempt is recorded in the store with the reason an
	// attempt stopped (internal/flows), from a queue written in batches,
	// never on a request's path (SEC-115); Close writes what is queued.
	// Housekeeping keeps the last 24 hours, at most 100,000 events
	// (SEC-114). FlowsHandler shows them.
	RecordFlows bool

	// Metrics, from NewMetrics, counts requests, the OAuth steps, token
	// checks, tool calls and backend errors; serve its Handler on a
	// listener of its own, never the gateway's (SEC-89). Nil: none.
	Metrics *Metrics

	// TracerProvider, when set, traces every request and tools/call
	// (internal/tracing says which attributes a span may carry, SEC-104)
	// and passes the W3C trace context to upstreams. Nil: no tracing, at
	// no cost.
	TracerProvider trace.TracerProvider

	// MaxSessionsPerUser bounds the sessions one user holds at each
	// resource (default 32): one more ends that user's least recently used
	// session. MaxStreamsPerUser bounds the GET event streams one user has
	// open at each resource (default 16): one more is refused with 429.
	// See internal/userlimit for why each cap behaves as it does.
	MaxSessionsPerUser int
	MaxStreamsPerUser  int

	// RateLimits are token buckets per user or per client on tools/call,
	// by tool name, and per client at /token and /authorize (SEC-100,
	// SEC-101, SEC-102); see internal/ratelimit. New refuses an invalid
	// one. They are counted in each process: with N replicas a caller may
	// get N times a rate.
	RateLimits []RateLimit

	// MaxGroups bounds the groups one user may carry (default 100): a
	// login with more is refused, with a page that says so, and a refresh
	// that finds more ends the grant, rather than drop some, which would
	// get the user past a rule that denies a dropped group (SEC-70). A
	// group name is at most 256 bytes without control characters (SEC-71).
	MaxGroups int

	Logger  *slog.Logger
	Now     func() time.Time
	Version string
}

// Resource is one protected MCP endpoint. Its backend is MCP, else a
// proxy to Upstream, else the stdio server Command, else the demo server.
type Resource struct {
	Path           string       // e.g. "/mcp", "/github/mcp"
	MCP            http.Handler // an MCP server in this process
	Name           string       // resource_name in its metadata
	Scopes         []string     // required by every request; default ["mcp"]
	OptionalScopes []string
	ScopeImplies   map[string][]string

	// Upstream is the URL of a streamable-HTTP MCP server to proxy to. It
	// gets the caller in IdentityHeaders and, with IdentityToken, in a
	// signed token it can check with the gateway's JWKS.
	Upstream string
	// UpstreamTransport is how Upstream speaks: "" or "streamable-http"
	// (proxied), or "sse" for a legacy HTTP+SSE server (2024-11-05), which
	// is then Upstream's SSE URL: clients get it over streamable HTTP, one
	// SSE connection per user opened with the same identity headers.
	UpstreamTransport string
	IdentityHeaders   IdentityHeaders
	IdentityToken     bool

	// Command runs a stdio MCP server (argv), one process per user, with
	// the user in its environment (see the stdio settings).
	Command []string
	Stdio   StdioOptions

	// ToolPolicy allows and denies tools per user, group and scope; nil
	// allows every tool.
	ToolPolicy *ToolPolicy

	// Access says who may get a token for this resource, besides
	// Config.Access; the zero value: everyone who may log in.
	Access Access
}

// Access lists who may enter: user IDs ("local:alice", "github:583231"),
// domains of verified emails, and groups; anyone matching one rule is let
// in. See the fields for how each is compared.
type Access = authserver.Access

// IdentityHeaders name the headers that carry the caller to an upstream;
// empty fields take the defaults (X-Forwarded-User, …), "-" sends nothing.
type IdentityHeaders = proxy.IdentityHeaders

// StdioOptions tune a stdio backend; zero values take the defaults.
type StdioOptions struct {
	Env          []string      // KEY=VALUE for every process, besides PATH and the user
	Dir          string        // each user's working and home directory is created under it
	MaxProcesses int           // default 16
	IdleTimeout  time.Duration // default 10 minutes
	// Isolation confines each process: "" or "auto" (Landlock; New fails
	// when the kernel offers no isolation) or "none" (unconfined).
	Isolation string
	ReadPaths []string // absolute paths the processes may read and execute from, besides the system's
	Private   []string // paths they must never read (the data directory, logs): New fails when a readable path holds one
	// UIDs, when the gateway runs as root, give each user's process a uid
	// and gid of its own from this range; zero: none.
	UIDs UIDRange
}

// UIDRange is a range of uids, First to Last.
type UIDRange = sandbox.Range

// Metrics are the gateway's Prometheus collectors, on a registry of their
// own (internal/metrics).
type Metrics = metrics.Metrics

// NewMetrics returns collectors for Config.Metrics, with the Go runtime's
// and the process's. Serve m.Handler() on the operator's listener.
func NewMetrics() *Metrics { return metrics.New() }

// ToolPolicy is a resource's allow and deny rules on tool names.
type ToolPolicy = policy.Policy

// ToolRule is one rule of a ToolPolicy.
type ToolRule = policy.Rule

// RateLimit is one rate limit: Tools (patterns as a ToolPolicy's) or
// Endpoints ("token", "authorize", "revoke", "introspect"), Per "user" or
// "client", a Rate and a Burst (0: the rate's count).
type RateLimit = ratelimit.Rule

// Rate is N requests per second, minute or hour (ParseRate reads "10/s").
type Rate = ratelimit.Rate

// ParseRate reads a Rate written "N/s", "N/m" or "N/h".
func ParseRate(s string) (Rate, error) { return ratelimit.ParseRate(s) }

// Client is a pre-registered OAuth client. An empty Secret makes it public.
type Client struct {
	ID           string
	Secret       string
	Name         string
	RedirectURIs []string
}

// Gateway is an http.Handler serving the whole gateway.
type Gateway struct {
	mux      *http.ServeMux  // every route: the authorization server's, the resources', health
	guard    *resource.Guard // the first resource's
	denylist *resource.Denylist
	store    store.Store
	log      *slog.Logger
	metrics  *metrics.Metrics // nil: none
	tracer   trace.Tracer     // nil: no tracing
	flows    *flows.Recorder  // nil: the flow debugger is off
	now      func() time.Time
	closers  []func(context.Context) error // backends to stop at Close
	ready    readiness                     // /readyz's last store check
	// keysReadAt is when the signing keys were last read from the store
	// (UnixNano of now), keysStale how old that may grow before /readyz
	// says no (SEC-97).
	keysReadAt atomic.Int64
	keysStale  time.Duration
	// revocations follows what other gateways revoke; /readyz says no
	// when it cannot (SEC-214).
	revocations *revocationFollower
	limits      *ratelimit.Limiter // nil: no rate limits
	console     *console.Console   // /account and /admin
	// clientExpiry is Config.UnusedClientExpiry, negative for never.
	clientExpiry time.Duration
	// accessTTL and refreshTTL are the Config's: housekeeping keeps a
	// grant while an access token it issued may be valid.
	accessTTL, refreshTTL time.Duration
	// refreshGrace is the Config's, 0 when off: housekeeping keeps a
	// rotated refresh token's successor that long (SEC-181).
	refreshGrace time.Duration

	// streams is cancelled by EndStreams: open event streams end.
	streams    context.Context
	endStreams context.CancelFunc
}

// New builds a Gateway: it loads (or creates, on first start) the signing
// key from the store.
func New(ctx context.Context, cfg Config) (*Gateway, error) {
	if err := cfg.complete(); err != nil {
		return nil, err
	}
	if err := CheckClock(ctx, cfg.Store); err != nil {
		return nil, fmt.Errorf("mcpgate: %w", err)
	}
	keys, sealer, err := openKeys(ctx, cfg.Store, cfg.SecretKey, cfg.Now, tokens.KeysetOptions{Keep: cfg.keyKeep(), Lead: cfg.keyLead(), Now: cfg.Now})
	if err != nil {
		return nil, err
	}
	deny := resource.NewDenylist(revocationKept, cfg.Now)
	// Grants revoked while their access tokens may still be unexpired stay
	// denied across a restart, reaching back as the reload does for a
	// revoking gateway whose clock runs behind (revocationOverlap).
	loadedAt := cfg.Now()
	revoked, err := cfg.Store.RevokedGrantsSince(ctx, loadedAt.Add(-revocationKept-revocationOverlap))
	if err != nil {
		return nil, fmt.Errorf("mcpgate: revoked grants: %w", err)
	}
	deny.RevokeAll(revoked)
	site := &oauth.Site{Fixed: oauth.Origin(cfg.PublicURL), Fallback: cfg.FallbackURL}
	limits, err := ratelimit.New(ratelimit.Options{Rules: cfg.RateLimits, Now: cfg.Now})
	if err != nil {
		return nil, fmt.Errorf("mcpgate: %w", err)
	}
	var rec *flows.Recorder
	if cfg.RecordFlows {
		rec = flows.NewRecorder(flows.Options{Store: cfg.Store, Logger: cfg.Logger, Now: cfg.Now})
		cfg.Metrics.FlowEventsLost(rec.Dropped, rec.Limited)
	}
	as, err := newAuthServer(&cfg, keys, sealer, site, deny, limits, rec)
	if err != nil {
		rec.Close(ctx)
		return nil, err
	}

	g := &Gateway{mux: http.NewServeMux(), denylist: deny, store: cfg.Store, log: cfg.Logger, metrics: cfg.Metrics, now: cfg.Now, clientExpiry: cfg.UnusedClientExpiry,
		accessTTL: cfg.AccessTokenTTL, refreshTTL: cfg.RefreshTokenTTL, refreshGrace: max(cfg.RefreshGrace, 0), keysStale: max(4*cfg.KeyReload, time.Minute),
		limits: limits, flows: rec}
	if cfg.TracerProvider != nil {
		g.tracer = cfg.TracerProvider.Tracer(tracing.Scope)
	}
	g.keysReadAt.Store(loadedAt.UnixNano())
	g.streams, g.endStreams = context.WithCancel(context.Background())
	// Grants revoked through other gateways on the same store (SEC-80).
	g.revocations = followRevocations(cfg.Store, deny, cfg.Now, cfg.Logger, loadedAt)
	g.closers = append(g.closers, g.revocations.close)
	as.Register(g.mux)
	g.console = newConsole(&cfg, as, deny)
	g.console.Register(g.mux)
	if err := g.MountAdminPage(flowsPage, "Flows", g.FlowsHandler()); err != nil {
		g.Close(ctx)
		return nil, err
	}
	g.followKeys(keys, &cfg)
	for i := range cfg.Resources {
		if err := g.addResource(&cfg.Resources[i], i == 0, site, keys, &cfg); err != nil {
			g.Close(ctx)
			return nil, err
		}
	}
	first := cfg.Resources[0].Path
	g.mux.HandleFunc("GET /healthz", g.healthz)
	g.mux.HandleFunc("GET /readyz", g.readyz)
	g.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "mcpgate: the MCP endpoint is %s%s\n", site.Issuer(r), first)
	})
	return g, nil
}

// newConsole builds the account page and admin console of cfg. It tees
// the audit events into the console's ring of recent tool calls, before
// the resources take cfg.Audit.
func newConsole(cfg *Config, as *authserver.Server, deny *resource.Denylist) *console.Console {
	recent := audit.NewRecent(console.RecentCalls, cfg.Now)
	cfg.Audit = audit.Tee(cfg.Audit, recent)
	static := map[string]string{}
	for _, c := range cfg.Clients {
		static[c.ID] = c.Name
	}
	localAdmin := slices.ContainsFunc(cfg.Connectors, func(c upstream.Connector) bool {
		_, ok := c.(*local.Connector)
		return ok
	})
	return console.New(console.Options{
		Store: cfg.Store, Browser: as, Revoked: deny.RevokeAll, AdminGroups: cfg.AdminGroups, LocalAdmin: localAdmin,
		StaticClients: static, Recent: recent, Logger: cfg.Logger, Now: cfg.Now,
	})
}

// MountAdminPage serves h at path (and under path+"/") as a page of the
// admin console: behind its administrator check, listed in its
// navigation as title, its non-GET requests refused without the form
// token that AdminFormToken(r) gives the page. path is /admin/NAME.
func (g *Gateway) MountAdminPage(path, title string, h http.Handler) error {
	return g.console.Mount(path, title, h)
}

// AdminFormToken is the form token that a mounted admin page's forms post
// as csrf_token; "" outside a mounted page's request.
func AdminFormToken(r *http.Request) string { return console.FormToken(r) }

// complete checks cfg and fills in its defaults (see Config for the rule
// on durations).
func (cfg *Config) complete() error {
	if cfg.Store == nil {
		return errors.New("mcpgate: Config.Store is required")
	}
	if len(cfg.SecretKey) != 32 {
		return errors.New("mcpgate: Config.SecretKey must be 32 bytes")
	}
	if cfg.KeyReload < 0 {
		return errors.New("mcpgate: KeyReload must not be negative")
	}
	if cfg.AccessTokenTTL < 0 || cfg.RefreshTokenTTL < 0 {
		return errors.New("mcpgate: token lifetimes must not be negative")
	}
	if cfg.PublicURL != "" {
		// The issuer is the origin: the resources' paths, their access
		// rules among them, are matched under it.
		if u, err := url.Parse(cfg.PublicURL); err != nil || u.Scheme == "" || u.Host == "" ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return errors.New("mcpgate: PublicURL must be an origin only, like https://mcp.example.com (no path, query or user)")
		}
	}
	if cfg.AccessTokenTTL > tokens.MaxLifetime {
		// The guard refuses a token that lives longer (SEC-142).
		return fmt.Errorf("mcpgate: AccessTokenTTL %v is longer than the most an access token may live, %v", cfg.AccessTokenTTL, tokens.MaxLifetime)
	}
	for _, id := range cfg.IntrospectionClients {
		i := slices.IndexFunc(cfg.Clients, func(c Client) bool { return c.ID == id })
		if i < 0 || cfg.Clients[i].Secret == "" {
			return fmt.Errorf("mcpgate: introspection client %q must be one of Clients, with a secret", id)
		}
	}
	if cfg.MaxSessionsPerUser < 0 || cfg.MaxStreamsPerUser < 0 {
		return errors.New("mcpgate: per-user session and stream caps must not be negative")
	}
	if cfg.MaxGroups < 0 {
		return errors.New("mcpgate: MaxGroups must not be negative")
	}
	cfg.AccessTokenTTL = cmp.Or(cfg.AccessTokenTTL, time.Hour)
	cfg.RefreshTokenTTL = cmp.Or(cfg.RefreshTokenTTL, 30*24*time.Hour)
	cfg.RefreshGrace = cmp.Or(cfg.RefreshGrace, 30*time.Second)
	cfg.UpstreamRecheck = cmp.Or(cfg.UpstreamRecheck, time.Hour)
	cfg.UnusedClientExpiry = cmp.Or(cfg.UnusedClientExpiry, 90*24*time.Hour)
	cfg.KeyRotation = cmp.Or(cfg.KeyRotation, 30*24*time.Hour)
	cfg.KeyReload = cmp.Or(cfg.KeyReload, 15*time.Second)
	cfg.FallbackURL = cmp.Or(cfg.FallbackURL, "http://127.0.0.1:8080")
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Audit == nil {
		cfg.Audit = audit.New(cfg.Logger)
	}
	if len(cfg.Resources) == 0 {
		cfg.Resources = []Resource{{Path: cfg.MCPPath, MCP: cfg.MCP, Scopes: cfg.Scopes, OptionalScopes: cfg.OptionalScopes, ScopeImplies: cfg.ScopeImplies}}
	}
	seen := map[string]bool{}
	for i := range cfg.Resources {
		res := &cfg.Resources[i]
		res.Path = cmp.Or(res.Path, "/mcp")
		if err := checkResourcePath(res.Path); err != nil {
			return err
		}
		if seen[res.Path] {
			return fmt.Errorf("mcpgate: resource path %q is used twice", res.Path)
		}
		seen[res.Path] = true
		if len(res.Scopes) == 0 {
			res.Scopes = []string{"mcp"}
		}
		if err := checkScopes(res); err != nil {
			return err
		}
		if res.ToolPolicy != nil {
			if err := res.ToolPolicy.Validate(); err != nil {
				return fmt.Errorf("mcpgate: resource %s: tool policy: %w", res.Path, err)
			}
		}
		if err := res.Access.Validate(); err != nil {
			return fmt.Errorf("mcpgate: resource %s: access: %w", res.Path, err)
		}
	}
	if err := cfg.Access.Validate(); err != nil {
		return fmt.Errorf("mcpgate: access: %w", err)
	}
	return nil
}

// checkScopes refuses a scope no token could carry, or offline_access,
// which minted tokens never carry: the guard would refuse every one with
// a challenge naming scopes it has, and the client would loop (PRM-8).
func checkScopes(res *Resource) error {
	all := slices.Concat(res.Scopes, res.OptionalScopes)
	for broad, narrow := range res.ScopeImplies {
		all = append(append(all, broad), narrow...)
	}
	for _, s := range all {
		if !oauth.ResourceScope(s) {
			return fmt.Errorf("mcpgate: resource %s: %q is not a resource's scope: one RFC 6749 scope token, not offline_access", res.Path, s)
		}
	}
	return nil
}

// newAuthServer builds the authorization server of cfg.
func newAuthServer(cfg *Config, keys *tokens.Keyset, sealer *tokens.Sealer, site *oauth.Site, deny *resource.Denylist, limits *ratelimit.Limiter, rec *flows.Recorder) (*authserver.Server, error) {
	static, err := staticClients(cfg.Clients)
	if err != nil {
		return nil, err
	}
	var fetcher *cimd.Fetcher
	if !cfg.DisableCIMD {
		fetcher = cimd.New(cimd.Options{AllowHosts: cfg.CIMDAllowHosts, DenyHosts: cfg.CIMDDenyHosts, RootCAs: cfg.CIMDRootCAs, Now: cfg.Now, Logger: cfg.Logger})
	}
	var endpointLimit func(endpoint, clientID string) time.Duration
	if limits != nil {
		endpointLimit = limits.Endpoint
	}
	return authserver.New(authserver.Options{
		Flows:           rec,
		EndpointLimit:   endpointLimit,
		CIMD:            fetcher,
		Store:           cfg.Store,
		Keys:            keys,
		Sealer:          sealer,
		Site:            site,
		Connectors:      cfg.Connectors,
		Resources:       authResources(cfg.Resources),
		Access:          cfg.Access,
		ResourceAccess:  resourceAccess(cfg.Resources),
		MaxGroups:       cfg.MaxGroups, // zero: authserver.DefaultMaxGroups
		StaticClients:   static,
		Introspectors:   cfg.IntrospectionClients,
		TrustedProxies:  cfg.TrustedProxies,
		CSRFKey:         derive(cfg.SecretKey, "mcpgate csrf v1"),
		Revoked:         deny.Revoke,
		Denied:          deny.Denied,
		AccessTokenTTL:  cfg.AccessTokenTTL,
		RefreshTokenTTL: cfg.RefreshTokenTTL,
		RefreshGrace:    max(cfg.RefreshGrace, 0),    // negative: off
		UpstreamRecheck: max(cfg.UpstreamRecheck, 0), // negative: off
		Metrics:         cfg.Metrics,
		Logger:          cfg.Logger,
		Now:             cfg.Now,
	})
}

// staticClients turns the pre-registered clients into store records, which
// are never stored (REG-1).
func staticClients(clients []Client) ([]*store.Client, error) {
	var out []*store.Client
	for _, c := range clients {
		sc := &store.Client{ID: c.ID, Name: c.Name, RedirectURIs: c.RedirectURIs,
			GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
			TokenEndpointAuthMethod: "none", ApplicationType: "web"}
		if c.Secret != "" {
			sc.SecretHash = tokens.Hash(c.Secret)
			sc.TokenEndpointAuthMethod = "client_secret_basic"
		}
		for _, u := range c.RedirectURIs {
			if err := oauth.ValidateRedirectURI(u); err != nil {
				return nil, fmt.Errorf("mcpgate: client %s: %w", c.ID, err)
			}
		}
		out = append(out, sc)
	}
	return out, nil
}

// addResource serves res: its metadata documents, and at its path the
// guard, the tool policy and the backend. The first resource also owns
// the root metadata document and Gateway.Protect.
func (g *Gateway) addResource(res *Resource, first bool, site *oauth.Site, keys *tokens.Keyset, cfg *Config) error {
	guard := resource.NewGuard(resource.Options{
		Site:           site,
		Resource:       res.protocol(),
		Keys:           keys,
		Denylist:       g.denylist,
		AllowedOrigins: cfg.AllowedOrigins,
		Metrics:        cfg.Metrics,
		Flows:          g.flows,
		Logger:         cfg.Logger,
		Now:            cfg.Now,
	})
	prm := oauth.CORS(guard.MetadataHandler())
	paths := []string{"/.well-known/oauth-protected-resource" + res.Path} // RFC 9728 §3.1, path-inserted
	if first {
		// The root document names the first resource (PRM-3, PRM-4).
		paths = append(paths, "/.well-known/oauth-protected-resource")
		g.guard = guard
	}
	for _, p := range paths {
		g.mux.Handle("GET "+p, prm)
		g.mux.Handle("OPTIONS "+p, prm)
	}
	backend, err := g.backend(res, keys, cfg)
	if err != nil {
		return err
	}
	limited := userlimit.Wrap(backend, userlimit.Options{
		MaxSessions: cfg.MaxSessionsPerUser, MaxStreams: cfg.MaxStreamsPerUser, Resource: res.Path, Metrics: cfg.Metrics, Logger: cfg.Logger,
	})
	popts := policy.Options{Policy: res.ToolPolicy, ScopeImplies: res.ScopeImplies, Audit: cfg.Audit, Metrics: cfg.Metrics, Resource: res.Path, StepUp: guard, Logger: cfg.Logger}
	if res.MCP == nil && res.Upstream == "" && len(res.Command) == 0 {
		popts.MaxBodyBytes = demoMaxBody
	}
	if g.limits != nil {
		popts.Limit = g.limits.Tools
	}
	protected := guard.Protect(policy.Wrap(limited, popts))
	g.mux.Handle(res.Path, g.endingWithGateway(protected))
	return nil
}

// endingWithGateway ends an event stream (a GET on a resource) when
// EndStreams is called, so that a shutdown does not wait for clients that
// keep one open.
func (g *Gateway) endingWithGateway(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			ctx, cancel := context.WithCancel(r.Context())
			stop := context.AfterFunc(g.streams, cancel)
			defer stop()
			defer cancel()
			r = r.WithContext(ctx)
		}
		h.ServeHTTP(w, r)
	})
}

// backend builds the handler that serves res.
func (g *Gateway) backend(res *Resource, keys *tokens.Keyset, cfg *Config) (http.Handler, error) {
	switch {
	case res.MCP != nil:
		return res.MCP, nil
	case res.Upstream != "":
		return g.upstream(res, keys, cfg)
	case len(res.Command) > 0:
		opts := stdioOptions(res)
		opts.Metrics, opts.Logger = cfg.Metrics, cfg.Logger
		pool, err := bridge.NewStdio(opts)
		if err != nil {
			return nil, fmt.Errorf("mcpgate: resource %s: %w", res.Path, err)
		}
		g.closers = append(g.closers, pool.Close)
		cfg.Logger.Info("serving a stdio MCP server", "path", res.Path, "command", res.Command[0])
		return pool, nil
	}
	return MCPHandler(embedded.Demo(cfg.Version)), nil
}

// demoMaxBody bounds a request to the demo server (SEC-209): its tools take
// a few KiB at most (echo 4 KiB), and the go-sdk allocates about 20 times
// a request's body while it decodes it.
const demoMaxBody = 64 << 10

// stdioOptions are the options of the pool of res's stdio servers.
func stdioOptions(res *Resource) bridge.StdioOptions {
	return bridge.StdioOptions{
		Command: res.Command, Env: res.Stdio.Env, Dir: res.Stdio.Dir,
		MaxProcesses: res.Stdio.MaxProcesses, IdleTimeout: res.Stdio.IdleTimeout,
		Isolation: res.Stdio.Isolation, ReadPaths: res.Stdio.ReadPaths, Private: res.Stdio.Private, UIDs: res.Stdio.UIDs,
		Resource: res.Path,
	}
}

// ProbeStdio starts res's stdio server once, as the gateway does for a
// user's first request (the same command, environment, isolation and
// directory), asks it to initialize, and stops it: `mcpgate check`'s test
// of a stdio backend. It returns the server's name and version and the
// protocol version it answered with; an error says how a server that
// failed ended and quotes its last lines of standard error.
func ProbeStdio(ctx context.Context, res Resource) (server, protocol string, err error) {
	if len(res.Command) == 0 {
		return "", "", errors.New("mcpgate: the resource has no stdio command")
	}
	raw, err := bridge.ProbeStdio(ctx, stdioOptions(&res))
	if err != nil {
		return "", "", err
	}
	var init struct {
		ProtocolVersion string `json:"protocolVersion"`
		ServerInfo      struct {
			Name    string `json:"name"`
			Version string `json:"version"`
		} `json:"serverInfo"`
	}
	if err := json.Unmarshal(raw, &init); err != nil {
		return "", "", fmt.Errorf("mcpgate: the server's initialize result: %w", err)
	}
	return strings.TrimSpace(init.ServerInfo.Name + " " + init.ServerInfo.Version), init.ProtocolVersion, nil
}

// upstream builds the backend of a resource with an Upstream: a proxy, or
// a bridge to a legacy HTTP+SSE server, either given the identity token
// minter when res asks for one.
func (g *Gateway) upstream(res *Resource, keys *tokens.Keyset, cfg *Config) (http.Handler, error) {
	sse := res.UpstreamTransport == "sse"
	if !sse && res.UpstreamTransport != "" && res.UpstreamTransport != "streamable-http" {
		return nil, fmt.Errorf("mcpgate: resource %s: upstream transport %q: want streamable-http or sse", res.Path, res.UpstreamTransport)
	}
	u, err := url.Parse(res.Upstream)
	if err != nil {
		return nil, fmt.Errorf("mcpgate: resource %s: upstream: %w", res.Path, err)
	}
	var mint func(*identity.Caller) (string, error)
	if res.IdentityToken {
		minter, err := tokens.NewIdentityMinter(keys, u.String(), cfg.Now)
		if err != nil {
			return nil, err
		}
		mint = minter.Token
	}
	if sse {
		pool, err := bridge.NewSSE(bridge.SSEOptions{URL: res.Upstream, IdentityHeaders: res.IdentityHeaders, IdentityToken: mint, Resource: res.Path, Metrics: cfg.Metrics, Logger: cfg.Logger})
		if err != nil {
			return nil, fmt.Errorf("mcpgate: resource %s: %w", res.Path, err)
		}
		g.closers = append(g.closers, pool.Close)
		cfg.Logger.Info("bridging a legacy HTTP+SSE MCP server", "path", res.Path, "upstream", safetext.URL(u), "identity_token", res.IdentityToken)
		return pool, nil
	}
	h, err := proxy.New(proxy.Options{Upstream: u, IdentityHeaders: res.IdentityHeaders, IdentityToken: mint,
		Sessions: cfg.Store, Resource: res.Path, Metrics: cfg.Metrics, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("mcpgate: resource %s: %w", res.Path, err)
	}
	// Its two transports' idle connections would otherwise outlive Close.
	if c, ok := h.(interface{ CloseIdleConnections() }); ok {
		g.closers = append(g.closers, func(context.Context) error { c.CloseIdleConnections(); return nil })
	}
	cfg.Logger.Info("proxying an MCP endpoint", "path", res.Path, "upstream", safetext.URL(u), "identity_token", res.IdentityToken)
	return h, nil
}

// EndStreams ends every open event stream (GET on a resource), so that a
// graceful shutdown does not wait for clients that hold one open; requests
// in flight go on.
func (g *Gateway) EndStreams() { g.endStreams() }

// Close stops the gateway's backends (stdio server processes, the proxies'
// idle connections to their upstreams) and its following of revocations
// made elsewhere. Call it after the HTTP server
// has shut down.
func (g *Gateway) Close(ctx context.Context) error {
	g.endStreams()
	var errs []error
	for _, c := range g.closers {
		errs = append(errs, c(ctx))
	}
	// Last: the closers may have ended requests whose steps are queued.
	errs = append(errs, g.flows.Close(ctx))
	return errors.Join(errs...)
}

// FlowsHandler serves the flow debugger's page (internal/flows.Handler):
// every authorization attempt of the last 24 hours on the gateway's
// store, every replica's, with the reason each stopped. It does no
// authorization of its own: mount it only behind the admin check
// (/admin/flows). It reads the store whether or not this gateway records
// (RecordFlows).
func (g *Gateway) FlowsHandler() http.Handler { return flows.Handler(g.store, g.log, g.now) }

// Protect guards any handler with the gateway's token check, as for the
// first resource: only requests with a valid access token for that
// resource pass, with the caller in the context.
func (g *Gateway) Protect(h http.Handler) http.Handler { return g.guard.Protect(h) }

// RevokeGrant ends a grant: its refresh tokens stop working, and its access
// tokens are refused from now on. When the store fails nothing changes,
// and the error says so (SEC-12).
func (g *Gateway) RevokeGrant(ctx context.Context, grantID string) error {
	if err := g.store.RevokeGrant(ctx, grantID, g.now()); err != nil {
		return err
	}
	g.denylist.Revoke(grantID)
	return nil
}

// healthz answers 200 when the store answers: liveness, for a process
// supervisor. /readyz (readyz.go) also needs the store to take a write.
func (g *Gateway) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if _, err := g.store.GetClient(ctx, "healthz-probe"); err != nil && !errors.Is(err, store.ErrNotFound) {
		g.log.Error("health check: store", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"status":"unavailable"}` + "\n"))
		return
	}
	_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
}

// DemoServer returns the MCP server that `mcpgate serve` protects when no
// backend is configured: the tools whoami, which answers with the verified
// caller, and echo, which returns its text argument. Serve it with
// MCPHandler to try a client against the gateway.
func DemoServer(version string) *mcp.Server { return embedded.Demo(version) }

// MCPHandler serves a go-sdk MCP server over streamable HTTP, ready to be
// Config.MCP. Sessions are bound to the user who opened them (SESS-3).
func MCPHandler(s *mcp.Server) http.Handler { return embedded.Handler(s, nil) }

// CallerFromContext returns the verified caller of a request that passed
// the gateway's token check, or nil.
func CallerFromContext(ctx context.Context) *identity.Caller { return identity.FromContext(ctx) }

// CallerFromRequest returns the verified caller of a go-sdk tool call.
func CallerFromRequest(ctx context.Context, req *mcp.CallToolRequest) *identity.Caller {
	return embedded.CallerOf(ctx, req)
}

// derive makes independent keys for independent uses from one secret.
func derive(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// Paths the authorization server and the gateway itself use.
var reservedPaths = []string{"/", "/authorize", "/consent", "/token", "/register", "/revoke", "/introspect", "/jwks.json", "/healthz", "/readyz", flowsPage}

// flowsPage is the admin console's page of the flow debugger.
const flowsPage = "/admin/flows"

// CheckSettings reports what New would refuse in cfg's resources and
// pre-registered clients, without a store or a network: a resource path
// that is one of the gateway's own or is used twice, a client's invalid
// redirect URI. mcpgate check asks it, so that a configuration it passes
// is one serve starts with.
func CheckSettings(cfg Config) error {
	seen := map[string]bool{}
	for _, res := range cfg.Resources {
		p := cmp.Or(res.Path, "/mcp")
		if err := checkResourcePath(p); err != nil {
			return err
		}
		if seen[p] {
			return fmt.Errorf("mcpgate: resource path %q is used twice", p)
		}
		seen[p] = true
	}
	_, err := staticClients(cfg.Clients)
	return err
}

func checkResourcePath(p string) error {
	bad := !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "/.well-known") || strings.HasPrefix(p, "/login/") ||
		strings.HasPrefix(p, "/callback/") || slices.Contains(reservedPaths, p) || slices.Contains(console.Paths, p) ||
		strings.ContainsAny(p, "?#{} ")
	if bad {
		return fmt.Errorf("mcpgate: resource path %q must start with / and not be one of the gateway's own paths", p)
	}
	if strings.HasSuffix(p, "/") {
		// The resource a client names is compared without its trailing
		// slash, as RFC 8707's canonical form has none: a resource
		// published with one could never be granted a token.
		return fmt.Errorf("mcpgate: resource path %q must not end in /: use %q (its upstream URL may end in /)", p, strings.TrimRight(p, "/"))
	}
	return nil
}

// protocol is r as the authorization server and its guard see it.
func (r *Resource) protocol() oauth.Resource {
	return oauth.Resource{Path: r.Path, Name: r.Name, Scopes: r.Scopes, Optional: r.OptionalScopes, Implies: r.ScopeImplies}
}

// resourceAccess maps the path of each resource with an Access rule to it.
func resourceAccess(rs []Resource) map[string]Access {
	out := map[string]Access{}
	for _, r := range rs {
		if !r.Access.Open() {
			out[r.Path] = r.Access
		}
	}
	return out
}

func authResources(rs []Resource) []oauth.Resource {
	out := make([]oauth.Resource, len(rs))
	for i := range rs {
		out[i] = rs[i].protocol()
	}
	return out
}
