package authserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/mcpgate/mcpgate/internal/appname"
	"github.com/mcpgate/mcpgate/internal/cimd"
	"github.com/mcpgate/mcpgate/internal/flows"
	"github.com/mcpgate/mcpgate/internal/metrics"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/upstream"
)

// Lifetimes of what the authorization server hands out besides tokens.
const (
	codeTTL    = 60 * time.Second // PKCE-3: short-lived
	requestTTL = 10 * time.Minute // an authorization request, and its upstream state (DEP-6)
	sessionTTL = 12 * time.Hour   // a browser's login
)

// Options configure a Server. CIMD, Revoked, Denied, RegistrationRate,
// Logger and Now may be left out; every other field is required
// (mcpgate.New fills in the defaults of the durations).
type Options struct {
	Store store.Store
	Keys  *tokens.Keyset
	// Sealer seals the token response a refresh rotation issued, kept with
	// the rotated token so that a retry within RefreshGrace gets it again.
	Sealer        *tokens.Sealer
	Site          *oauth.Site
	Connectors    []upstream.Connector
	Resources     []oauth.Resource // the first is the one of a request that names none
	StaticClients []*store.Client  // pre-registered clients, never stored
	// Introspectors are the IDs of static confidential clients (resource
	// servers) that may introspect every access token; any other client
	// only its own tokens (SEC-10).
	Introspectors []string
	// CIMD fetches Client ID Metadata Documents for client_ids that are
	// https URLs (CIMD-1, CIMD-2); nil turns them off.
	CIMD *cimd.Fetcher
	// CSRFKey signs CSRF tokens of the consent and login forms (32 bytes).
	CSRFKey []byte
	// Revoked is told about grants revoked because of a replayed code or
	// refresh token, or at /revoke, so that their access tokens stop
	// working at once.
	Revoked func(grantID string)
	// Denied reports whether a grant's access tokens are denied (revoked);
	// introspection asks it before the store. Nil: only the store is asked.
	Denied func(grantID string) bool

	// Access says who may log in at all; ResourceAccess, by resource path,
	// who may get a token for that resource. Both are checked when a code
	// is issued and at every refresh (RT-3); zero values let everyone in.
	Access         Access
	ResourceAccess map[string]Access
	// MaxGroups bounds the groups a user may carry; zero is
	// DefaultMaxGroups. A login with more is refused, a refresh that finds
	// more ends the grant (SEC-70).
	MaxGroups int

	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration
	// RefreshGrace is how long a rotated refresh token, presented again,
	// still gets the pair its rotation issued instead of revoking its family
	// (RT-1; clients that retry or refresh from two places at once); zero
	// turns the window off.
	RefreshGrace time.Duration
	// UpstreamRecheck is how old a grant's upstream session may grow
	// before a refresh renews it at the provider (RT-3); zero turns the
	// recheck off.
	UpstreamRecheck time.Duration

	// Metrics counts each step of the flow with its outcome; nil: none.
	Metrics *metrics.Metrics
	// Flows records each step of every attempt, with the reason it
	// stopped, for the flow debugger; nil: none.
	Flows *flows.Recorder

	// RegistrationRate is the number of registrations per minute one client
	// address may make (burst the same); default 20.
	RegistrationRate int
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client (clientAddr).
	TrustedProxies []netip.Prefix

	// EndpointLimit, when set, is asked before /token and /authorize serve
	// a client they know (at /token, authenticated): a positive wait
	// answers 429 with Retry-After (SEC-102). ratelimit.Limiter.Endpoint
	// is one.
	EndpointLimit func(endpoint, clientID string) time.Duration

	Logger *slog.Logger
	Now    func() time.Time
}

// Server implements the authorization server endpoints.
type Server struct {
	opts       Options
	log        *slog.Logger
	store      store.Store
	keys       *tokens.Keyset
	site       *oauth.Site
	connectors map[string]upstream.Connector
	order      []upstream.Connector
	static     map[string]*store.Client
	// staticNames are the static clients' names, which a client of
	// another origin is shown not to be (SEC-126).
	staticNames appname.Reserved
	// introspectors are the static clients that may introspect every
	// access token (SEC-10).
	introspectors map[string]bool
	regLimit      *budgets
	// requests bounds the authorization requests one address has stored
	// (SEC-180).
	requests *budgets
	// guesses bounds the password checks one address may fail (SEC-157).
	guesses *budgets
	// clients holds registered clients read lately (SEC-85).
	clients *clientCache
	// recheck makes concurrent refreshes of one grant share one upstream
	// refresh (RT-3).
	recheck singleflight.Group
}

// New checks opts and returns a Server.
func New(opts Options) (*Server, error) {
	if opts.Store == nil || opts.Keys == nil || opts.Sealer == nil || opts.Site == nil {
		return nil, errors.New("authserver: Store, Keys, Sealer and Site are required")
	}
	if len(opts.Connectors) == 0 {
		return nil, errors.New("authserver: at least one upstream connector is required")
	}
	if len(opts.Resources) == 0 {
		return nil, errors.New("authserver: at least one resource is required")
	}
	if len(opts.CSRFKey) < 32 {
		return nil, errors.New("authserver: CSRFKey must be at least 32 bytes")
	}
	if opts.AccessTokenTTL <= 0 || opts.RefreshTokenTTL <= 0 || opts.RefreshGrace < 0 {
		return nil, errors.New("authserver: AccessTokenTTL and RefreshTokenTTL must be positive, RefreshGrace not negative")
	}
	if opts.RegistrationRate <= 0 {
		opts.RegistrationRate = 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Revoked == nil {
		opts.Revoked = func(string) {}
	}
	if opts.Denied == nil {
		opts.Denied = func(string) bool { return false }
	}
	s := &Server{
		opts:       opts,
		log:        opts.Logger,
		store:      opts.Store,
		keys:       opts.Keys,
		site:       opts.Site,
		connectors: map[string]upstream.Connector{},
		static:     map[string]*store.Client{},
		regLimit:   newBudgets(opts.RegistrationRate, time.Minute, opts.Now),
		guesses:    newBudgets(guessesPerMinute, time.Minute, opts.Now),
		requests:   newBudgets(requestsPerMinute, time.Minute, opts.Now),
		clients:    newClientCache(),
	}
	for _, c := range opts.Connectors {
		if !upstream.ValidID(c.ID()) {
			return nil, fmt.Errorf("authserver: connector name %q: lowercase letters, digits and -, at most 63 (it prefixes its users' IDs)", c.ID())
		}
		if _, dup := s.connectors[c.ID()]; dup {
			return nil, errors.New("authserver: duplicate connector " + c.ID())
		}
		switch c.(type) {
		case upstream.PasswordConnector, upstream.CallbackConnector:
		default:
			return nil, errors.New("authserver: connector " + c.ID() + " is neither a password nor a callback connector")
		}
		s.connectors[c.ID()] = c
		s.order = append(s.order, c)
	}
	var names []string
	for _, c := range opts.StaticClients {
		s.static[c.ID] = c
		names = append(names, c.Name)
	}
	s.staticNames = appname.Reserve(names...)
	s.introspectors = map[string]bool{}
	for _, id := range opts.Introspectors {
		if c, ok := s.static[id]; !ok || c.Public() {
			return nil, errors.New("authserver: introspection client " + id + " is not a pre-registered confidential client")
		}
		s.introspectors[id] = true
	}
	return s, nil
}

// Register adds the endpoints to mux. Endpoints that browser-based clients
// call directly get CORS.
func (s *Server) Register(mux *http.ServeMux) {
	meta := oauth.CORS(http.HandlerFunc(s.metadata))
	mux.Handle("GET /.well-known/oauth-authorization-server", meta)
	mux.Handle("OPTIONS /.well-known/oauth-authorization-server", meta)
	mux.Handle("GET /.well-known/openid-configuration", oauth.CORS(http.HandlerFunc(s.openIDConfiguration)))
	mux.Handle("OPTIONS /.well-known/openid-configuration", meta)
	jwks := oauth.CORS(http.HandlerFunc(s.jwks))
	mux.Handle("GET /jwks.json", jwks)
	mux.Handle("OPTIONS /jwks.json", jwks)
	reg := oauth.CORS(s.counted("register", s.register))
	mux.Handle("POST /register", reg)
	mux.Handle("OPTIONS /register", reg)
	tok := oauth.CORS(s.counted(stepToken, s.token))
	mux.Handle("POST /token", tok)
	mux.Handle("OPTIONS /token", tok)
	rev := oauth.CORS(s.counted("revoke", s.revoke))
	mux.Handle("POST /revoke", rev)
	mux.Handle("OPTIONS /revoke", rev)
	intro := oauth.CORS(s.counted("introspect", s.introspect))
	mux.Handle("POST /introspect", intro)
	mux.Handle("OPTIONS /introspect", intro)
	// A client may post its authorization request from its own page
	// (RFC 6749 §3.1); the gateway's own forms come from its own pages
	// only (SEC-5).
	authz := s.counted("authorize", s.browserOnly(false, s.authorize))
	mux.HandleFunc("GET /authorize", authz)
	mux.HandleFunc("POST /authorize", authz)
	mux.HandleFunc("POST /consent", s.counted("consent", s.browserOnly(true, s.consent)))
	mux.HandleFunc("GET /login/{connector}", s.browserOnly(false, s.loginForm))
	mux.HandleFunc("POST /login/{connector}", s.counted("login", s.browserOnly(true, s.loginSubmit)))
	mux.HandleFunc("GET /callback/{connector}", s.counted("callback", s.browserOnly(false, s.callback)))
	s.registerPages(mux)
}

func (s *Server) now() time.Time { return s.opts.Now() }

// client finds a client, in the order of REG-1: pre-registered, then a
// Client ID Metadata Document for an https client_id, then a registered
// one; nil when unknown. A document that cannot be fetched or is invalid
// is a *cimd.Error. A registered client read within clientTTL is not read
// again (SEC-85); the *store.Client returned may be shared and must not be
// modified.
func (s *Server) client(ctx context.Context, id string) (*store.Client, error) {
	if c, ok := s.static[id]; ok {
		return c, nil
	}
	if cimd.IsClientIDURL(id) {
		if s.opts.CIMD == nil {
			return nil, nil
		}
		return s.opts.CIMD.Client(ctx, id)
	}
	at := s.now()
	if c := s.clients.get(id, at); c != nil {
		return c, nil
	}
	c, err := s.store.GetClient(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s.clients.put(c, at, s.now())
	return c, nil
}

// touchInterval: a client's use is recorded at most this often, so that a
// busy client costs one store write an hour rather than one a request.
const touchInterval = time.Hour

// touch records that a registered client was used (SEC-14: housekeeping
// deletes the ones unused for long). Pre-registered and metadata-document
// clients are not stored and never expire. A failure is logged only: the
// request goes on, and the next use records it.
func (s *Server) touch(ctx context.Context, c *store.Client) {
	if _, static := s.static[c.ID]; static || cimd.IsClientIDURL(c.ID) {
		return
	}
	now := s.now()
	last := c.CreatedAt
	if c.LastUsedAt.After(last) {
		last = c.LastUsedAt
	}
	if now.Sub(last) < touchInterval {
		return
	}
	// Before the write: the requests meanwhile see the use recorded.
	s.clients.touched(c, now)
	if err := s.store.TouchClient(ctx, c.ID, now); err != nil {
		s.log.Warn("record client use", "client_id", c.ID, "err", err.Error())
	}
}

// resourceFor maps a requested resource indicator to a resource served
// under issuer. An empty request selects the first resource (clients such
// as Claude Code omit it). The comparison accepts an uppercase scheme or
// host and a trailing slash (RES-2) and returns the canonical URL.
func (s *Server) resourceFor(issuer, requested string) (oauth.Resource, string, bool) {
	if requested == "" {
		res := s.opts.Resources[0]
		return res, issuer + res.Path, true
	}
	canon, ok := canonicalResource(requested)
	if !ok {
		return oauth.Resource{}, "", false
	}
	for _, res := range s.opts.Resources {
		if canon == issuer+res.Path {
			return res, canon, true
		}
	}
	return oauth.Resource{}, "", false
}

// implies is the scope hierarchy of the resource served under issuer at
// url, a canonical resource URL (a grant's, a request's); none for a
// resource the gateway no longer serves.
func (s *Server) implies(issuer, url string) oauth.Hierarchy {
	if url == "" {
		return nil
	}
	if res, _, ok := s.resourceFor(issuer, url); ok {
		return res.Implies
	}
	return nil
}

// canonicalResource lowercases scheme and host and drops the scheme's
// default port and one trailing slash (RES-2). Fragments are not allowed
// (RFC 8707 §2).
func canonicalResource(raw string) (string, bool) {
	if strings.Contains(raw, "#") || len(raw) > 2048 {
		return "", false
	}
	i := strings.Index(raw, "://")
	if i <= 0 {
		return "", false
	}
	scheme := strings.ToLower(raw[:i])
	rest := raw[i+3:]
	j := strings.IndexAny(rest, "/?")
	host, path := rest, ""
	if j >= 0 {
		host, path = rest[:j], rest[j:]
	}
	if host == "" || (scheme != "https" && scheme != "http") {
		return "", false
	}
	for i := 0; i < len(host); i++ {
		if host[i] <= ' ' || host[i] >= 0x7f {
			return "", false // no host of the gateway's: it is ASCII (punycode)
		}
	}
	host, ok := oauth.CanonicalHost(strings.ToLower(host), scheme)
	if !ok {
		return "", false
	}
	return scheme + "://" + host + strings.TrimSuffix(path, "/"), true
}

// grantScopes decides the scopes of an authorization: the requested scopes
// that the resource offers, plus the scopes it requires unless a granted
// one implies them, plus offline_access when asked for (RT-2), which the
// token endpoint reads as a request for a refresh token and keeps out of
// the access token. Unknown scopes are dropped rather than refused
// (SCOPE-7).
func grantScopes(res oauth.Resource, requested []string) []string {
	var out []string
	offline := false
	for _, sc := range requested {
		switch {
		case sc == "offline_access":
			offline = true
		case slices.Contains(res.Scopes, sc) || slices.Contains(res.Optional, sc):
			out = append(out, sc)
		}
	}
	for _, sc := range res.Scopes {
		if !res.Implies.Satisfies(out, []string{sc}) {
			out = append(out, sc)
		}
	}
	if offline {
		out = append(out, "offline_access")
	}
	return out
}
