package mcpgate

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/authserver"
	"github.com/mcpgate/mcpgate/internal/backend/embedded"
	"github.com/mcpgate/mcpgate/internal/cimd"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/resource"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/upstream"
	"github.com/modelcontextprotocol/go-sdk/mcp"
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

	// Client ID Metadata Documents (CIMD-1): an https client_id is fetched
	// and validated, unless DisableCIMD.
	DisableCIMD bool
	// CIMDAllowHosts may serve documents from loopback or private addresses,
	// which are otherwise refused (CIMD-10): for local testing only.
	CIMDAllowHosts []string
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

	AccessTokenTTL  time.Duration // default 1h
	RefreshTokenTTL time.Duration // default 30 days
	// RefreshGrace is how long a rotated refresh token, presented again,
	// gets the same new pair instead of revoking its family (RT-1: retries,
	// and clients that refresh from two places at once). Default 30 s;
	// negative turns it off.
	RefreshGrace time.Duration

	Logger  *slog.Logger
	Now     func() time.Time
	Version string
}

// Client is a pre-registered OAuth client. An empty Secret makes it public.
type Client struct {
	ID           string
	Secret       string
	Name         string
	RedirectURIs []string
}

// Gateway is an http.Handler serving the whole gateway.
type Gateway struct {
	mux      *http.ServeMux
	mcpPath  string
	mcp      http.Handler // the guarded MCP handler, reached without the mux
	guard    *resource.Guard
	denylist *resource.Denylist
	store    store.Store
	log      *slog.Logger
	now      func() time.Time
}

// New builds a Gateway: it loads (or creates, on first start) the signing
// key from the store.
func New(ctx context.Context, cfg Config) (*Gateway, error) {
	if cfg.Store == nil {
		return nil, errors.New("mcpgate: Config.Store is required")
	}
	if len(cfg.SecretKey) != 32 {
		return nil, errors.New("mcpgate: Config.SecretKey must be 32 bytes")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MCPPath == "" {
		cfg.MCPPath = "/mcp"
	}
	if !strings.HasPrefix(cfg.MCPPath, "/") || strings.HasPrefix(cfg.MCPPath, "/.well-known") {
		return nil, fmt.Errorf("mcpgate: MCPPath %q must start with / and not be under /.well-known", cfg.MCPPath)
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{"mcp"}
	}
	if cfg.AccessTokenTTL <= 0 {
		cfg.AccessTokenTTL = time.Hour
	}
	if cfg.FallbackURL == "" {
		cfg.FallbackURL = "http://127.0.0.1:8080"
	}
	if cfg.MCP == nil {
		cfg.MCP = MCPHandler(embedded.Demo(cfg.Version))
	}

	sealer, err := tokens.NewSealer(derive(cfg.SecretKey, "mcpgate seal v1"))
	if err != nil {
		return nil, err
	}
	keys, err := tokens.LoadKeyset(ctx, cfg.Store, sealer, cfg.Now())
	if err != nil {
		return nil, fmt.Errorf("mcpgate: signing keys: %w", err)
	}
	site := &oauth.Site{Fixed: strings.TrimSuffix(cfg.PublicURL, "/"), Fallback: cfg.FallbackURL}
	deny := resource.NewDenylist(cfg.AccessTokenTTL, cfg.Now)
	// Grants revoked while their access tokens may still be unexpired stay
	// denied across a restart.
	revoked, err := cfg.Store.RevokedGrantsSince(ctx, cfg.Now().Add(-cfg.AccessTokenTTL))
	if err != nil {
		return nil, fmt.Errorf("mcpgate: revoked grants: %w", err)
	}
	deny.RevokeAll(revoked)

	var static []*store.Client
	for _, c := range cfg.Clients {
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
		static = append(static, sc)
	}

	var fetcher *cimd.Fetcher
	if !cfg.DisableCIMD {
		fetcher = cimd.New(cimd.Options{AllowHosts: cfg.CIMDAllowHosts, RootCAs: cfg.CIMDRootCAs, Now: cfg.Now, Logger: cfg.Logger})
	}
	as, err := authserver.New(authserver.Options{
		CIMD:            fetcher,
		Store:           cfg.Store,
		Keys:            keys,
		Sealer:          sealer,
		Site:            site,
		Connectors:      cfg.Connectors,
		Resources:       []authserver.Resource{{Path: cfg.MCPPath, Scopes: cfg.Scopes, Optional: cfg.OptionalScopes, Implies: cfg.ScopeImplies}},
		StaticClients:   static,
		CSRFKey:         derive(cfg.SecretKey, "mcpgate csrf v1"),
		Revoked:         deny.Revoke,
		Denied:          deny.Denied,
		AccessTokenTTL:  cfg.AccessTokenTTL,
		RefreshTokenTTL: cfg.RefreshTokenTTL,
		RefreshGrace:    cfg.RefreshGrace,
		Logger:          cfg.Logger,
		Now:             cfg.Now,
	})
	if err != nil {
		return nil, err
	}
	guard := resource.NewGuard(resource.Options{
		Site:           site,
		Path:           cfg.MCPPath,
		Scopes:         cfg.Scopes,
		Implies:        cfg.ScopeImplies,
		Verifier:       tokens.NewVerifier(keys, tokens.VerifierOptions{Now: cfg.Now}),
		Denylist:       deny,
		AllowedOrigins: cfg.AllowedOrigins,
		Logger:         cfg.Logger,
		Now:            cfg.Now,
	})

	g := &Gateway{mux: http.NewServeMux(), guard: guard, denylist: deny, store: cfg.Store, log: cfg.Logger, now: cfg.Now}
	as.Register(g.mux)
	prm := oauth.CORS(guard.MetadataHandler())
	for _, p := range []string{"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource" + cfg.MCPPath} {
		g.mux.Handle("GET "+p, prm)
		g.mux.Handle("OPTIONS "+p, prm)
	}
	g.mcpPath, g.mcp = cfg.MCPPath, guard.Protect(cfg.MCP)
	g.mux.HandleFunc("GET /healthz", g.healthz)
	g.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "mcpgate: the MCP endpoint is %s%s\n", site.Issuer(r), cfg.MCPPath)
	})
	return g, nil
}

// Protect guards any handler with the gateway's token check, as for
// MCPPath: only requests with a valid access token for that resource pass,
// with the caller in the context.
func (g *Gateway) Protect(h http.Handler) http.Handler { return g.guard.Protect(h) }

// RevokeGrant ends a grant: its refresh tokens stop working, and its access
// tokens are refused from now on.
func (g *Gateway) RevokeGrant(ctx context.Context, grantID string) error {
	g.denylist.Revoke(grantID)
	return g.store.RevokeGrant(ctx, grantID, g.now())
}

// healthz answers 200 when the store answers.
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
