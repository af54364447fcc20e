package resource

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/flows"
	"github.com/mcpgate/mcpgate/internal/metrics"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/safetext"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/modelcontextprotocol/go-sdk/auth"
)

// Options configure a Guard.
type Options struct {
	Site *oauth.Site
	// Resource is the one guarded: every request needs all of its Scopes
	// (SCOPE-1), a broader scope counting as the narrower ones it implies
	// (SCOPE-5).
	Resource oauth.Resource
	Keys     *tokens.Keyset // verifies the tokens
	Denylist *Denylist
	// AllowedOrigins are browser origins allowed besides the gateway's own
	// and loopback ones (TRANS-1).
	AllowedOrigins []string
	// Metrics counts every check by outcome (the Check* constants); nil:
	// none.
	Metrics *metrics.Metrics
	// Flows records, for the flow debugger, the tokens refused because
	// they are for another resource, lack a scope or were revoked: the
	// refusals a client cannot recover from by refreshing. Nil: none.
	Flows  *flows.Recorder
	Logger *slog.Logger
	Now    func() time.Time
}

// Guard protects one resource.
type Guard struct {
	opts       Options
	advertised []string
	allowed    map[string]bool
	cache      *verifiedCache
	now        func() time.Time
}

// NewGuard returns a Guard for opts.
func NewGuard(opts Options) *Guard {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	g := &Guard{opts: opts, allowed: map[string]bool{}, cache: newVerifiedCache(10000), now: opts.Now}
	// offline_access is none of them: mcpgate.New refuses it (PRM-8).
	g.advertised = append([]string{}, opts.Resource.Scopes...)
	for _, o := range opts.AllowedOrigins {
		g.allowed[o] = true
	}
	return g
}

// metadataURL is the path-inserted PRM URL under issuer (RFC 9728 §3.1).
func (g *Guard) metadataURL(issuer string) string {
	return issuer + "/.well-known/oauth-protected-resource" + g.opts.Resource.Path
}

// Grants reports whether an authorization for the resource may get scope:
// a required or an optional one.
func (g *Guard) Grants(scope string) bool {
	return slices.Contains(g.opts.Resource.Scopes, scope) || slices.Contains(g.opts.Resource.Optional, scope)
}

// StepUp answers a request that scope would allow, the caller's token
// lacking it, with 403 insufficient_scope (SCOPE-1): the challenge names
// it with the resource's required scopes and the token's, so that the
// token the client gets by authorizing again does everything the one it
// holds did (SCOPE-2).
func (g *Guard) StepUp(w http.ResponseWriter, r *http.Request, caller *identity.Caller, scope string) {
	want := slices.Clone(g.advertised)
	for _, s := range append(slices.Clip(caller.Scopes), scope) {
		if !slices.Contains(want, s) {
			want = append(want, s)
		}
	}
	oauth.WriteChallenge(w, http.StatusForbidden, oauth.Challenge{Error: oauth.InsufficientScope,
		ErrorDescription: "the tool needs a scope the access token lacks", Scopes: want, ResourceMetadata: g.metadataURL(g.opts.Site.Issuer(r))})
}

// Protect wraps next so that it runs only for requests with a valid access
// token for this resource, with the caller in the context
// (identity.FromContext) and, for the go-sdk's session binding (SESS-3),
// an auth.TokenInfo whose UserID is the caller.
// Browser clients on an allowed origin get CORS on every answer, 401s
// included; preflight requests are answered without a token, by the same
// origin rule (SEC-34).
func (g *Guard) Protect(next http.Handler) http.Handler {
	return &protected{g: g, next: next}
}

// headerFields counts h's fields, a repeated name once per value.
func headerFields(h http.Header) int {
	n := 0
	for _, v := range h {
		n += len(v)
	}
	return n
}

// protected is one handler, not a chain of closures: every frame on the
// way to the MCP server costs stack on each request.
type protected struct {
	g    *Guard
	next http.Handler
}

// maxHeaderFields bounds the header fields of a request to a protected
// resource (SEC-213). net/http bounds a head's bytes (64 KiB), not its
// fields: 60 KB of short distinct ones parse into a map of about 1 MiB,
// which the request holds, and a proxied one holds twice, for as long as
// its answer takes. An MCP client sends a dozen or two.
const maxHeaderFields = 100

func (p *protected) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g := p.g
	if n := headerFields(r.Header); n > maxHeaderFields {
		g.opts.Logger.Info("request refused: too many header fields", "fields", n, "max", maxHeaderFields)
		http.Error(w, "too many header fields", http.StatusRequestHeaderFieldsTooLarge)
		return
	}
	issuer := g.opts.Site.Issuer(r)
	allowed := g.originAllowed(r, issuer)
	if oauth.HandleResourceCORS(w, r, allowed) { // SEC-34: the preflight says what the request will get
		return
	}
	if !allowed { // TRANS-1
		g.opts.Logger.Info("refused origin", "origin", safetext.Clip(r.Header.Get("Origin"), 256), "host", safetext.Clip(r.Host, 256))
		http.Error(w, "origin or host not allowed", http.StatusForbidden)
		return
	}
	v, status, ch, outcome := g.check(r, issuer)
	g.opts.Metrics.TokenCheck(outcome)
	if status != 0 {
		ch.ResourceMetadata = g.metadataURL(issuer)
		oauth.WriteChallenge(w, status, ch)
		return
	}
	ctx := context.Context(&verifiedContext{Context: r.Context(), info: v.info})
	if r.Method == http.MethodGet && g.opts.Denylist != nil {
		// An event stream may stay open for hours: it ends when its grant
		// is revoked, or when the last of the grant's access tokens seen
		// here expires, as a new request would be refused then
		// (SEC-158). Not when the token that opened it expires: a client
		// that refreshed holds a valid one, and ending the stream would
		// fail what the server asked of it there (an elicitation the
		// person is filling in).
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		defer g.opts.Denylist.Watch(v.grant, cancel)()
	}
	p.next.ServeHTTP(w, r.WithContext(ctx))
}

// check verifies the request's token for issuer: from the Authorization
// header only (TOK-1), signature, issuer, audience and expiry (RES-3,
// TOK-2), not revoked, and carrying every required scope (SCOPE-1,
// SCOPE-3). A token seen before is answered from the cache without a
// signature check; its expiry, issuer and revocation are still checked on
// every request.
func (g *Guard) check(r *http.Request, issuer string) (*verified, int, oauth.Challenge, string) {
	if r.URL.RawQuery != "" && r.URL.Query().Has("access_token") {
		return nil, http.StatusBadRequest, oauth.Challenge{Error: oauth.InvalidRequest, ErrorDescription: "access tokens are accepted only in the Authorization header"}, CheckBadRequest
	}
	if len(r.Header.Values("Authorization")) > 1 {
		// Whichever one a proxy or log in front reads, it is not
		// certainly the one checked here (RFC 6750 §3.1).
		return nil, http.StatusBadRequest, oauth.Challenge{Error: oauth.InvalidRequest, ErrorDescription: "send one Authorization header"}, CheckBadRequest
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		// No token presented: no error code (RFC 6750 §3.1).
		return nil, http.StatusUnauthorized, oauth.Challenge{Scopes: g.advertised}, CheckMissing
	}
	raw, ok := oauth.BearerToken(h)
	if !ok {
		return nil, http.StatusUnauthorized, oauth.Challenge{Error: oauth.InvalidToken, ErrorDescription: "the Authorization header is not a Bearer token", Scopes: g.advertised}, CheckMalformed
	}
	now := g.now()
	key := tokenKey(raw)
	v := g.cache.get(key)
	// A key dropped since (rotated out after a leak) no longer vouches for
	// what it verified: the token is checked again, and refused.
	if v == nil || v.issuer != issuer || !g.opts.Keys.Trusts(v.kid) {
		var status int
		var ch oauth.Challenge
		var outcome string
		if v, status, ch, outcome = g.verify(r, raw, issuer, now); status != 0 {
			return nil, status, ch, outcome
		}
		g.cache.put(key, v, now)
	}
	if !now.Before(v.info.Expiration) {
		return nil, http.StatusUnauthorized, oauth.Challenge{Error: oauth.InvalidToken, ErrorDescription: "the access token is invalid or expired", Scopes: g.advertised}, CheckExpired
	}
	if g.opts.Denylist != nil && g.opts.Denylist.Denied(v.grant) {
		if g.opts.Flows != nil {
			g.refused(issuer, v, CheckRevoked, "the access token's grant "+v.grant+" was revoked: the client must authorize again")
		}
		return nil, http.StatusUnauthorized, oauth.Challenge{Error: oauth.InvalidToken, ErrorDescription: "the access token was revoked", Scopes: g.advertised}, CheckRevoked
	}
	if !v.scopesOK {
		if g.opts.Flows != nil {
			g.refused(issuer, v, CheckInsufficientScope, "the access token lacks a scope "+issuer+g.opts.Resource.Path+" requires: it needs "+
				strings.Join(g.opts.Resource.Scopes, " ")+" and carries "+strings.Join(v.info.Scopes, " "))
		}
		return nil, http.StatusForbidden, oauth.Challenge{Error: oauth.InsufficientScope, ErrorDescription: "the access token lacks a required scope", Scopes: g.advertised}, CheckInsufficientScope
	}
	if g.opts.Denylist != nil {
		g.opts.Denylist.Seen(v.grant, v.info.Expiration) // how long its streams last (SEC-158)
	}
	return v, 0, oauth.Challenge{}, CheckOK
}

// Outcomes of a token check, as the metrics count them.
const (
	CheckOK                = "ok"
	CheckMissing           = "missing"     // no Authorization header
	CheckBadRequest        = "bad_request" // a token in the query, or two Authorization headers
	CheckMalformed         = "malformed"   // not a Bearer token
	CheckInvalid           = "invalid"     // signature, issuer, claims…
	CheckExpired           = "expired"
	CheckWrongAudience     = "wrong_audience" // a token for another resource (RES-3)
	CheckRevoked           = "revoked"
	CheckInsufficientScope = "insufficient_scope"
)

// refusal is the outcome of a token Verify refused.
func refusal(err error) string {
	switch {
	case errors.Is(err, tokens.ErrExpired):
		return CheckExpired
	case errors.Is(err, tokens.ErrWrongAudience):
		return CheckWrongAudience
	}
	return CheckInvalid
}

// verify checks a token the cache does not know.
func (g *Guard) verify(r *http.Request, raw, issuer string, now time.Time) (*verified, int, oauth.Challenge, string) {
	claims, err := g.opts.Keys.Verify(raw, issuer, issuer+g.opts.Resource.Path, now)
	if err != nil {
		desc := "the access token is invalid or expired"
		if !errors.Is(err, tokens.ErrInvalidToken) {
			desc = "the access token could not be checked"
		}
		g.opts.Logger.Info("token refused", "reason", safetext.Clip(err.Error(), 512), "path", safetext.Clip(r.URL.Path, 512))
		var aud *tokens.AudienceError
		if g.opts.Flows != nil && errors.As(err, &aud) {
			g.recordRefusal(flows.Event{Attempt: aud.GrantID, ClientID: aud.ClientID, UserID: aud.Subject, Step: flows.StepResource,
				Outcome: CheckWrongAudience, Details: map[string]string{"resource_requested": issuer + g.opts.Resource.Path},
				Reason: "the access token was issued for " + strings.Join(aud.Audience, ", ") + ", not " + issuer + g.opts.Resource.Path +
					": the client must ask for a token for this resource (the resource parameter, RFC 8707)"})
		}
		return nil, http.StatusUnauthorized, oauth.Challenge{Error: oauth.InvalidToken, ErrorDescription: desc, Scopes: g.advertised}, refusal(err)
	}
	caller := &identity.Caller{
		User:      claims.User,
		ClientID:  claims.ClientID,
		Scopes:    claims.Scopes,
		Resource:  claims.Audience,
		TokenID:   claims.ID,
		ExpiresAt: claims.ExpiresAt,
	}
	return &verified{
		issuer:   issuer,
		kid:      claims.KeyID,
		grant:    claims.GrantID,
		scopesOK: g.opts.Resource.Implies.Satisfies(claims.Scopes, g.opts.Resource.Scopes),
		info: &auth.TokenInfo{UserID: caller.User.ID, Scopes: caller.Scopes, Expiration: caller.ExpiresAt,
			Extra: map[string]any{identity.TokenInfoKey: caller}},
	}, 0, oauth.Challenge{}, CheckOK
}

// originAllowed implements TRANS-1 for a gateway: a present Origin must be
// the gateway's own, a configured one, or a loopback origin (local tools
// such as MCP Inspector); and without a fixed public URL the Host must be
// a loopback name, which defeats DNS rebinding.
func (g *Guard) originAllowed(r *http.Request, issuer string) bool {
	if g.opts.Site.Fixed == "" && !oauth.LoopbackHostHeader(r.Host) {
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if g.allowed[origin] || origin == issuer {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	return (u.Scheme == "http" || u.Scheme == "https") && oauth.IsLoopbackHost(u.Hostname())
}

// refused records a token check the client cannot pass by refreshing.
func (g *Guard) refused(issuer string, v *verified, outcome, reason string) {
	e := flows.Event{Attempt: v.grant, Step: flows.StepResource, Outcome: outcome, Reason: reason,
		Details: map[string]string{"resource_requested": issuer + g.opts.Resource.Path}}
	if c, ok := v.info.Extra[identity.TokenInfoKey].(*identity.Caller); ok {
		e.ClientID, e.UserID = c.ClientID, c.User.ID
	}
	g.recordRefusal(e)
}

// recordRefusal records e, the refusal of a token. A client that does not
// read the 401 presents the token again and again, so refusals are kept
// to a rate (SEC-119): that of the person the token names (every token
// the guard verified names one, signed by the gateway, so no made-up
// person), since a person may make grants in number, one flow each, and
// one bucket per grant let one person push everyone else's attempts out
// of the events kept (SEC-207).
func (g *Guard) recordRefusal(e flows.Event) {
	g.opts.Flows.RecordRefusedToken(e.UserID, e)
}
