package resource

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/modelcontextprotocol/go-sdk/auth"
)

// Options configure a Guard.
type Options struct {
	Site     *oauth.Site
	Path     string   // the resource's path, e.g. "/mcp"
	Name     string   // resource_name in PRM
	Scopes   []string // every request needs all of these (SCOPE-1)
	Verifier *tokens.Verifier
	Denylist *Denylist
	// AllowedOrigins are browser origins allowed besides the gateway's own
	// and loopback ones (TRANS-1).
	AllowedOrigins []string
	Logger         *slog.Logger
}

// Guard protects one resource.
type Guard struct {
	opts       Options
	advertised []string
	allowed    map[string]bool
}

// NewGuard returns a Guard for opts.
func NewGuard(opts Options) *Guard {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	g := &Guard{opts: opts, allowed: map[string]bool{}}
	for _, s := range opts.Scopes {
		if s != "offline_access" { // PRM-8
			g.advertised = append(g.advertised, s)
		}
	}
	if g.advertised == nil {
		g.advertised = []string{}
	}
	for _, o := range opts.AllowedOrigins {
		g.allowed[o] = true
	}
	return g
}

// MetadataURL is the path-inserted PRM URL for r (RFC 9728 §3.1).
func (g *Guard) MetadataURL(r *http.Request) string {
	return g.opts.Site.Issuer(r) + "/.well-known/oauth-protected-resource" + g.opts.Path
}

// Protect wraps next so that it runs only for requests with a valid access
// token for this resource, with the caller in the context
// (identity.FromContext) and, for the go-sdk's session binding (SESS-3),
// an auth.TokenInfo whose UserID is the caller.
func (g *Guard) Protect(next http.Handler) http.Handler {
	// The go-sdk's own middleware only transfers what we verified into the
	// context key its transport reads; the challenge is ours (it omits
	// error=, see SCOPE-1).
	bind := auth.RequireBearerToken(tokenInfoFromCaller, nil)(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.originAllowed(r) { // TRANS-1
			g.opts.Logger.Info("refused origin", "origin", r.Header.Get("Origin"), "host", r.Host)
			http.Error(w, "origin or host not allowed", http.StatusForbidden)
			return
		}
		caller, status, ch := g.check(r)
		if status != 0 {
			ch.ResourceMetadata = g.MetadataURL(r)
			oauth.WriteChallenge(w, status, ch)
			return
		}
		bind.ServeHTTP(w, r.WithContext(identity.WithCaller(r.Context(), caller)))
	})
}

func tokenInfoFromCaller(_ context.Context, _ string, r *http.Request) (*auth.TokenInfo, error) {
	c := identity.FromContext(r.Context())
	if c == nil {
		return nil, auth.ErrInvalidToken
	}
	return &auth.TokenInfo{UserID: c.User.ID, Scopes: c.Scopes, Expiration: c.ExpiresAt, Extra: map[string]any{"caller": c}}, nil
}

// check verifies the request's token: from the Authorization header only
// (TOK-1), signature, issuer, audience and expiry (RES-3, TOK-2), not
// revoked, and carrying every required scope (SCOPE-1, SCOPE-3).
func (g *Guard) check(r *http.Request) (*identity.Caller, int, oauth.Challenge) {
	if r.URL.Query().Has("access_token") {
		return nil, http.StatusBadRequest, oauth.Challenge{Error: oauth.InvalidRequest, ErrorDescription: "access tokens are accepted only in the Authorization header"}
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		// No token presented: no error code (RFC 6750 §3.1).
		return nil, http.StatusUnauthorized, oauth.Challenge{Scopes: g.advertised}
	}
	raw, ok := oauth.BearerToken(h)
	if !ok {
		return nil, http.StatusUnauthorized, oauth.Challenge{Error: oauth.InvalidToken, ErrorDescription: "the Authorization header is not a Bearer token", Scopes: g.advertised}
	}
	iss := g.opts.Site.Issuer(r)
	claims, err := g.opts.Verifier.Verify(raw, iss, iss+g.opts.Path)
	if err != nil {
		desc := "the access token is invalid or expired"
		if !errors.Is(err, tokens.ErrInvalidToken) {
			desc = "the access token could not be checked"
		}
		g.opts.Logger.Info("token refused", "reason", err.Error(), "path", r.URL.Path)
		return nil, http.StatusUnauthorized, oauth.Challenge{Error: oauth.InvalidToken, ErrorDescription: desc, Scopes: g.advertised}
	}
	if g.opts.Denylist != nil && g.opts.Denylist.Denied(claims.GrantID) {
		return nil, http.StatusUnauthorized, oauth.Challenge{Error: oauth.InvalidToken, ErrorDescription: "the access token was revoked", Scopes: g.advertised}
	}
	if !oauth.ContainsAll(claims.Scopes, g.opts.Scopes) {
		return nil, http.StatusForbidden, oauth.Challenge{Error: oauth.InsufficientScope, ErrorDescription: "the access token lacks a required scope", Scopes: g.advertised}
	}
	return &identity.Caller{
		User:      claims.User,
		ClientID:  claims.ClientID,
		Scopes:    claims.Scopes,
		Resource:  claims.Audience,
		TokenID:   claims.ID,
		ExpiresAt: claims.ExpiresAt,
	}, 0, oauth.Challenge{}
}

// originAllowed implements TRANS-1 for a gateway: a present Origin must be
// the gateway's own, a configured one, or a loopback origin (local tools
// such as MCP Inspector); and without a fixed public URL the Host must be
// a loopback name, which defeats DNS rebinding.
func (g *Guard) originAllowed(r *http.Request) bool {
	if g.opts.Site.Fixed == "" && !oauth.LoopbackHostHeader(r.Host) {
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if g.allowed[origin] || origin == g.opts.Site.Issuer(r) {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	return (u.Scheme == "http" || u.Scheme == "https") && oauth.IsLoopbackHost(u.Hostname())
}
