package oidc

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/safetext"
	"github.com/mcpgate/mcpgate/upstream"
)

// DefaultName is the name of the provider configured by the oidc_* flags,
// the prefix of its users' IDs ("oidc:248289761001").
const DefaultName = "oidc"

// defaultScopes ask for the standard claims the connector maps.
var defaultScopes = []string{oidc.ScopeOpenID, "profile", "email"}

// flowParams are the authorization request parameters the connector sets;
// extra parameters may not replace them. resource is among them because an
// upstream audience is not ours to ask for (Entra would mint a token for it).
var flowParams = []string{"response_type", "client_id", "redirect_uri", "scope", "state", "nonce",
	"code_challenge", "code_challenge_method", "resource", "request", "request_uri"}

// ErrAccessDenied is returned by HandleCallback when the person declined
// at the provider; it is an upstream.ErrRefused.
var ErrAccessDenied = upstream.Mark(errors.New("oidc: access denied by the user"), upstream.ErrRefused)

// Claims names the claims a user is read from. The zero value of each
// field is the standard claim; a name may be a dotted path into nested
// objects ("realm_access.roles").
type Claims struct {
	Subject  string // default "sub"
	Username string // default "preferred_username"
	Email    string // default "email"
	Groups   string // default "groups"
}

func (c Claims) withDefaults() Claims {
	return Claims{
		Subject:  withDefault(c.Subject, "sub"),
		Username: withDefault(c.Username, "preferred_username"),
		Email:    withDefault(c.Email, "email"),
		Groups:   withDefault(c.Groups, "groups"),
	}
}

// Config configures the connector. Issuer and ClientID are required;
// the zero value of every other field is a working default.
type Config struct {
	// Name is the connector's ID, in the callback URL and user IDs;
	// DefaultName if empty.
	Name string
	// DisplayName is shown on the sign-in button; the issuer's host if empty.
	DisplayName string
	Issuer      string
	ClientID    string
	// ClientSecret is empty for a public client, which PKCE alone protects.
	ClientSecret string
	// Scopes defaults to openid, profile and email, and groups when the
	// provider advertises it; openid is added if missing.
	Scopes []string
	// OfflineAccess is when offline_access is added to the scopes: the
	// scope that makes Okta, Entra ID and Auth0 issue the refresh token
	// the gateway's recheck redeems (RT-3). The zero value never adds it.
	OfflineAccess OfflineAccess
	Claims        Claims
	// AuthParams are extra authorization request parameters (prompt,
	// login_hint, hd, …). The ones the flow sets itself are refused.
	AuthParams map[string]string
	// HTTPClient makes the discovery, key, token and userinfo requests
	// (http.DefaultClient's transport if nil); each ends after 30 s unless
	// it sets a Timeout of its own. Answers are read up to 1 MiB.
	HTTPClient *http.Client
	// HostedDomains restrict logins to these Google Workspace domains: sent
	// upstream as hd (the domain, or * for several) and checked in the ID
	// token's hd claim, since the parameter alone is a hint the person can
	// edit.
	HostedDomains []string
	// TenantIssuer accepts a discovery issuer with Entra ID's {tenantid}
	// placeholder (the common and organizations endpoints): each ID token's
	// iss must then be that issuer filled with the token's tid.
	TenantIssuer bool
	// AllowedTenants, when not empty, are the only tids an ID token may
	// carry.
	AllowedTenants []string
	// Key keys the HMAC that derives a login's PKCE verifier and nonce from
	// its state (see the package doc). A random key is made per process if
	// empty; replicas without sticky sessions should share 32 random bytes.
	Key []byte
}

// OfflineAccess is when the connector asks for the offline_access scope
// (OpenID Connect Core §11).
type OfflineAccess int

const (
	// OfflineAccessNever leaves the scopes as they are: the recheck is
	// off, or the provider issues refresh tokens unasked (Keycloak,
	// GitLab) or makes something else of the scope (Keycloak's offline
	// sessions, which outlive the user's session there).
	OfflineAccessNever OfflineAccess = iota
	// OfflineAccessIfListed adds it to the default scopes when the
	// discovery document lists it, as a provider that does not know the
	// scope may refuse it; scopes set in Config are kept as they are.
	OfflineAccessIfListed
	// OfflineAccessAlways adds it to the scopes, default or set.
	OfflineAccessAlways
)

func (o OfflineAccess) String() string {
	switch o {
	case OfflineAccessNever:
		return "never"
	case OfflineAccessIfListed:
		return "if listed"
	case OfflineAccessAlways:
		return "always"
	}
	return fmt.Sprintf("OfflineAccess(%d)", int(o))
}

// Connector is one OpenID Connect provider.
type Connector struct {
	name, display string
	oauth         oauth2.Config // RedirectURL is set per call
	provider      *oidc.Provider
	verifier      *oidc.IDTokenVerifier
	claims        Claims
	authParams    []oauth2.AuthCodeOption
	client        *http.Client
	key           []byte
	hostedDomains []string
	// tenantIssuer is the discovery issuer with its {tenantid}
	// placeholder; empty for a provider of one issuer.
	tenantIssuer   string
	allowedTenants []string
	// issuer is the discovery document's; issInResponse says the provider
	// puts it in authorization responses (RFC 9207).
	issuer        string
	issInResponse bool
	// configuredIssuer is Config.Issuer, which the gateway binds the
	// refresh tokens it keeps to (SEC-72).
	configuredIssuer string
}

var _ upstream.CallbackConnector = (*Connector)(nil)

// New validates cfg and fetches the provider's discovery document
// (OpenID Connect Discovery §4); it fails when the issuer cannot be reached
// or the document names another issuer (§4.3, ASM-3).
func New(ctx context.Context, cfg Config) (*Connector, error) {
	name := withDefault(cfg.Name, DefaultName)
	var errs []error
	if cfg.ClientID == "" {
		errs = append(errs, errors.New("client id is required"))
	}
	iss, err := url.Parse(cfg.Issuer)
	if err != nil || (iss.Scheme != "https" && iss.Scheme != "http") || iss.Host == "" {
		errs = append(errs, fmt.Errorf("issuer %q is not an absolute http(s) URL", cfg.Issuer))
	}
	var params []oauth2.AuthCodeOption
	for _, k := range slices.Sorted(maps.Keys(cfg.AuthParams)) {
		if slices.Contains(flowParams, k) {
			errs = append(errs, fmt.Errorf("authorization parameter %q is set by the login flow itself", k))
		}
		params = append(params, oauth2.SetAuthURLParam(k, cfg.AuthParams[k]))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s: config: %w", name, errors.Join(errs...))
	}
	client := bounded(cfg.HTTPClient)
	dctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, client), 30*time.Second)
	defer cancel()
	provider, tenantIssuer, err := discover(dctx, cfg.Issuer, cfg.TenantIssuer)
	if err != nil {
		return nil, fmt.Errorf("%s: discovery at %s: %w", name, safetext.RawURL(cfg.Issuer), discoveryError(err))
	}
	if err := httpsEndpoints(provider, cfg.Issuer); err != nil {
		return nil, fmt.Errorf("%s: discovery at %s: %w", name, safetext.RawURL(cfg.Issuer), err)
	}
	if len(cfg.HostedDomains) > 0 {
		if _, set := cfg.AuthParams["hd"]; !set {
			params = append(params, oauth2.SetAuthURLParam("hd", hostedDomainParam(cfg.HostedDomains)))
		}
	}
	scopes := loginScopes(cfg, provider)
	key := cfg.Key
	if len(key) == 0 {
		key = make([]byte, 32)
		rand.Read(key)
	}
	var meta struct {
		Issuer        string `json:"issuer"`
		IssInResponse bool   `json:"authorization_response_iss_parameter_supported"`
	}
	provider.Claims(&meta)
	endpoint := provider.Endpoint()
	endpoint.AuthStyle = authStyle(provider, cfg.ClientSecret)
	return &Connector{
		name:    name,
		display: withDefault(cfg.DisplayName, iss.Hostname()),
		oauth: oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			Endpoint:     endpoint,
			Scopes:       scopes,
		},
		provider: provider,
		// go-oidc checks the signature, iss, aud (string or array) and exp;
		// the nonce is ours to check.
		verifier:         provider.Verifier(&oidc.Config{ClientID: cfg.ClientID, SkipIssuerCheck: tenantIssuer != ""}),
		claims:           cfg.Claims.withDefaults(),
		authParams:       params,
		client:           client,
		key:              append([]byte(nil), key...),
		hostedDomains:    lower(cfg.HostedDomains),
		tenantIssuer:     tenantIssuer,
		allowedTenants:   slices.Clone(cfg.AllowedTenants),
		issuer:           meta.Issuer,
		issInResponse:    meta.IssInResponse,
		configuredIssuer: cfg.Issuer,
	}, nil
}

// loginScopes are the scopes a login asks for: cfg's, or the defaults
// with what the provider lists of groups and offline_access, which some
// providers refuse when they do not know them; openid always.
func loginScopes(cfg Config, p *oidc.Provider) []string {
	var meta struct {
		Scopes []string `json:"scopes_supported"`
	}
	p.Claims(&meta)
	scopes := slices.Clone(cfg.Scopes)
	if len(scopes) == 0 {
		scopes = slices.Clone(defaultScopes)
		// Many providers put groups behind a scope of that name.
		if slices.Contains(meta.Scopes, "groups") {
			scopes = append(scopes, "groups")
		}
	}
	if !slices.Contains(scopes, oidc.ScopeOpenID) {
		scopes = append([]string{oidc.ScopeOpenID}, scopes...)
	}
	offline := cfg.OfflineAccess == OfflineAccessAlways ||
		cfg.OfflineAccess == OfflineAccessIfListed && len(cfg.Scopes) == 0 && slices.Contains(meta.Scopes, oidc.ScopeOfflineAccess)
	if offline && !slices.Contains(scopes, oidc.ScopeOfflineAccess) {
		scopes = append(scopes, oidc.ScopeOfflineAccess)
	}
	return scopes
}

// maxAnswer bounds what is read of any answer of the provider (SEC-63),
// as x/oauth2 bounds the token endpoint's: go-oidc reads discovery, key
// set and userinfo answers whole.
const maxAnswer = 1 << 20

// callTimeout bounds each call to a provider (SEC-73).
var callTimeout = 30 * time.Second

// bounded returns a copy of client (a new client if nil) whose answers'
// bodies fail past maxAnswer bytes, and whose calls end after callTimeout
// when client sets no Timeout (SEC-73): go-oidc fetches the key set under
// a context without deadline, and a login's token and userinfo calls run
// under the callback's request, which a hung provider would hold for good.
func bounded(client *http.Client) *http.Client {
	c := upstream.Client(client, callTimeout)
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c.Transport = boundedTransport{base}
	return c
}

type boundedTransport struct{ base http.RoundTripper }

func (t boundedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err == nil {
		// A nil ResponseWriter: MaxBytesReader only limits.
		resp.Body = http.MaxBytesReader(nil, resp.Body, maxAnswer)
	}
	return resp, err
}

// httpsEndpoints refuses an https issuer's discovery document that names
// an endpoint over plain http, where the client secret, codes and tokens
// would travel in clear (SEC-66). An http issuer is a loopback test
// provider (the configuration allows no other).
func httpsEndpoints(p *oidc.Provider, issuer string) error {
	if u, err := url.Parse(issuer); err != nil || u.Scheme != "https" {
		return nil
	}
	var meta map[string]any
	if err := p.Claims(&meta); err != nil {
		return err
	}
	var errs []error
	for _, k := range []string{"authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"} {
		v, _ := meta[k].(string)
		if u, err := url.Parse(v); v != "" && (err != nil || u.Scheme != "https") {
			errs = append(errs, fmt.Errorf("%s %q is not https", k, upstream.Clip(v)))
		}
	}
	return errors.Join(errs...)
}

// discoveryError keeps go-oidc's issuer mismatch readable and drops the
// response body it quotes for other statuses.
func discoveryError(err error) error {
	var mm *oidc.IssuerMismatchError
	if errors.As(err, &mm) {
		return fmt.Errorf("the discovery document names issuer %q, not %q; set the issuer exactly as the provider publishes it", mm.Discovered, mm.Provided)
	}
	msg := err.Error()
	if i := strings.Index(msg, ": "); i > 0 && msg[0] >= '1' && msg[0] <= '5' {
		msg = msg[:i] + " (not a discovery document)" // "404 Not Found: <body>"
	}
	return errors.New(upstream.Clip(msg))
}

// authStyle picks how the client authenticates at the token endpoint
// without x/oauth2's probing, which would send a failing request first:
// a public client sends only client_id in the body (RFC 6749 §2.3, PKCE
// protects it); a confidential one uses client_secret_basic, the default of
// OpenID Connect Discovery, unless the provider lists only
// client_secret_post.
func authStyle(p *oidc.Provider, secret string) oauth2.AuthStyle {
	if secret == "" {
		return oauth2.AuthStyleInParams
	}
	var meta struct {
		Methods []string `json:"token_endpoint_auth_methods_supported"`
	}
	p.Claims(&meta)
	if len(meta.Methods) > 0 && !slices.Contains(meta.Methods, "client_secret_basic") && slices.Contains(meta.Methods, "client_secret_post") {
		return oauth2.AuthStyleInParams
	}
	return oauth2.AuthStyleInHeader
}

func withDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// ID implements upstream.Connector.
func (c *Connector) ID() string { return c.name }

// DisplayName implements upstream.Connector.
func (c *Connector) DisplayName() string { return c.display }

// derive returns 32 bytes of HMAC of the state under the connector's key,
// separated by purpose, base64url-encoded: 43 characters, the minimum
// length of a PKCE verifier (RFC 7636 §4.1).
func (c *Connector) derive(purpose, state string) string {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte("mcpgate oidc " + purpose + " v1\x00"))
	m.Write([]byte(state))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (c *Connector) config(callbackURL string) *oauth2.Config {
	conf := c.oauth
	conf.RedirectURL = callbackURL
	return &conf
}

// LoginURL implements upstream.CallbackConnector.
func (c *Connector) LoginURL(state, callbackURL string) string {
	opts := append(slices.Clone(c.authParams),
		oauth2.S256ChallengeOption(c.derive("pkce", state)),
		oidc.Nonce(c.derive("nonce", state)))
	return c.config(callbackURL).AuthCodeURL(state, opts...)
}

// HandleCallback implements upstream.CallbackConnector: it redeems the
// code, verifies the ID token and maps its claims (and userinfo's) to a
// user. Errors never contain the client secret or a token.
func (c *Connector) HandleCallback(ctx context.Context, callbackURL string, r *http.Request) (identity.User, error) {
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		if e == "access_denied" {
			return identity.User{}, fmt.Errorf("%w (%s)", ErrAccessDenied, upstream.Clip(q.Get("error_description")))
		}
		return identity.User{}, upstream.Mark(fmt.Errorf("%s: authorization failed: %s: %s", c.name, upstream.Clip(e), upstream.Clip(q.Get("error_description"))),
			upstream.CallbackErrorKind(e))
	}
	if err := c.checkResponseIssuer(q); err != nil {
		return identity.User{}, fmt.Errorf("%s: %w", c.name, err)
	}
	code := q.Get("code")
	if code == "" {
		return identity.User{}, fmt.Errorf("%s: callback without code", c.name)
	}
	state := q.Get("state")
	ctx = oidc.ClientContext(ctx, c.client)
	tok, err := c.config(callbackURL).Exchange(ctx, code, oauth2.VerifierOption(c.derive("pkce", state)))
	if err != nil {
		return identity.User{}, fmt.Errorf("%s: exchange code: %w", c.name, upstream.TokenError(err))
	}
	keepToken(ctx, tok)
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return identity.User{}, fmt.Errorf("%s: the token response has no id_token", c.name)
	}
	idt, err := c.verify(ctx, raw)
	if err != nil {
		return identity.User{}, fmt.Errorf("%s: ID token: %w", c.name, err)
	}
	if idt.Subject == "" {
		return identity.User{}, fmt.Errorf("%s: ID token without sub", c.name)
	}
	// OpenID Connect Core §3.1.3.7 (11); constant time as any secret.
	if !hmac.Equal([]byte(idt.Nonce), []byte(c.derive("nonce", state))) {
		return identity.User{}, fmt.Errorf("%s: ID token: nonce does not match this login", c.name)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return identity.User{}, fmt.Errorf("%s: ID token claims: %w", c.name, err)
	}
	if err := c.checkRestrictions(idt.Issuer, claims); err != nil {
		return identity.User{}, fmt.Errorf("%s: ID token: %w", c.name, err)
	}
	if c.needUserinfo(claims) {
		if err := c.mergeUserinfo(ctx, tok, idt.Subject, claims); err != nil {
			return identity.User{}, err
		}
	}
	if err := c.checkGrantedScopes(tok, claims); err != nil {
		return identity.User{}, fmt.Errorf("%s: %w", c.name, err)
	}
	return c.user(claims)
}

// verify checks an ID token as go-oidc does (signature, iss, aud as a
// string or an array, exp) and its authorized party: a token with an azp
// other than this client was issued to that client, whatever its aud lists
// (OpenID Connect Core §3.1.3.7 (5), SEC-62).
func (c *Connector) verify(ctx context.Context, raw string) (*oidc.IDToken, error) {
	idt, err := c.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, clipped(err) // a failed key fetch quotes the answer's body
	}
	var party struct {
		AZP any `json:"azp"`
	}
	if err := idt.Claims(&party); err != nil {
		return nil, err
	}
	if party.AZP != nil && party.AZP != any(c.oauth.ClientID) {
		return nil, fmt.Errorf("azp %q is another client", upstream.Clip(fmt.Sprint(party.AZP)))
	}
	return idt, nil
}

// userinfo asks the userinfo endpoint with tok (OpenID Connect Core
// §5.3).
func (c *Connector) userinfo(ctx context.Context, tok *oauth2.Token) (*oidc.UserInfo, error) {
	ui, err := c.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		return nil, clipped(err) // go-oidc quotes the whole answer of a failure
	}
	return ui, nil
}

// clipped is err with its text clipped for the log (SEC-63).
func clipped(err error) error { return errors.New(upstream.Clip(err.Error())) }

// needUserinfo reports whether a claim the connector maps is missing from
// the ID token and the provider has a userinfo endpoint to ask.
func (c *Connector) needUserinfo(claims map[string]any) bool {
	if c.provider.UserInfoEndpoint() == "" {
		return false
	}
	for _, name := range []string{c.claims.Username, c.claims.Email, c.claims.Groups, "name"} {
		if _, ok := lookup(claims, name); !ok {
			return true
		}
	}
	return false
}

// mergeUserinfo adds userinfo's claims that the ID token lacks; the ID
// token's own win, as they are signed, nested ones too: a userinfo key
// spelled "realm_access.roles" never stands in for the ID token's
// realm_access.roles, which lookup would find under that name.
func (c *Connector) mergeUserinfo(ctx context.Context, tok *oauth2.Token, sub string, claims map[string]any) error {
	ui, err := c.userinfo(ctx, tok)
	if err != nil {
		return upstream.Unreachable(fmt.Errorf("%s: userinfo: %w", c.name, err))
	}
	// Core §5.3.2: a response for another subject must not be used.
	if ui.Subject != sub {
		return fmt.Errorf("%s: userinfo: sub %q differs from the ID token's", c.name, upstream.Clip(ui.Subject))
	}
	var extra map[string]any
	if err := ui.Claims(&extra); err != nil {
		return fmt.Errorf("%s: userinfo claims: %w", c.name, err)
	}
	pairEmail(claims, extra)
	for k, v := range extra {
		if _, ok := lookup(claims, k); !ok {
			claims[k] = v
		}
	}
	return nil
}

// pairEmail keeps email and email_verified together through the merge
// (SEC-61): a verdict speaks of the address it came with, so the source
// that gives the address gives the verdict, and userinfo's verdict about
// another address than the ID token's is dropped.
func pairEmail(claims, extra map[string]any) {
	signed, ok := claims["email"]
	if !ok {
		if _, ok := extra["email"]; ok {
			delete(claims, "email_verified")
		}
		return
	}
	a, _ := signed.(string)
	if b, _ := extra["email"].(string); a == "" || a != b {
		delete(extra, "email_verified")
	}
}
