package github

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/upstream"
)

// ID is the connector's ID, the prefix of its users' IDs ("github:583231").
const ID = "github"

// Defaults for Config.
const (
	DefaultAuthURL  = "https://github.com/login/oauth/authorize"
	DefaultTokenURL = "https://github.com/login/oauth/access_token"
	DefaultAPIURL   = "https://api.github.com"
)

// defaultScopes read the profile and the email addresses.
var defaultScopes = []string{"read:user", "user:email"}

// apiVersion pins the REST API version whose response shapes we decode.
const apiVersion = "2022-11-28"

// maxBody bounds what we read of any API response.
const maxBody = 1 << 20

// callTimeout bounds each call to GitHub (SEC-73).
var callTimeout = 30 * time.Second

// ErrAccessDenied is returned by HandleCallback when the person declined
// to authorize the app at GitHub; it is an upstream.ErrRefused.
var ErrAccessDenied = upstream.Mark(errors.New("github: access denied by the user"), upstream.ErrRefused)

// Config configures the connector. ClientID and ClientSecret are required;
// the zero value of every other field is a working default.
type Config struct {
	ClientID     string
	ClientSecret string
	// AuthURL, TokenURL and APIURL default to github.com's; set them for
	// GitHub Enterprise Server or a test fake.
	AuthURL  string
	TokenURL string
	APIURL   string
	// HTTPClient makes the token and API requests (http.DefaultClient's
	// transport if nil); each ends after 30 s unless it sets a Timeout of
	// its own.
	HTTPClient *http.Client
	// Scopes defaults to read:user and user:email, and read:org with
	// Groups. Without user:email (or user) the identity carries no email.
	Scopes []string
	// Groups makes the user's organizations and teams their groups, "org"
	// and "org/team", read at every login. It needs read:org, which GitHub
	// shows the person on its consent page: off by default.
	Groups bool
	// PKCEKey keys the HMAC that derives a login's PKCE verifier from its
	// state. A random key is made per process if empty; that breaks logins
	// that start on one replica (or before a restart) and return to
	// another, so several replicas without sticky sessions should share a
	// key of 32 random bytes.
	PKCEKey []byte
}

// Connector is the GitHub upstream.
type Connector struct {
	oauth   oauth2.Config // RedirectURL is set per call
	apiURL  string
	client  *http.Client
	pkceKey []byte
	groups  bool
}

var _ upstream.RefreshingConnector = (*Connector)(nil)

// New validates cfg and returns a connector. All problems are reported at
// once.
func New(cfg Config) (*Connector, error) {
	var errs []error
	if cfg.ClientID == "" {
		errs = append(errs, errors.New("client id is required"))
	}
	if cfg.ClientSecret == "" {
		errs = append(errs, errors.New("client secret is required"))
	}
	authURL := withDefault(cfg.AuthURL, DefaultAuthURL)
	tokenURL := withDefault(cfg.TokenURL, DefaultTokenURL)
	apiURL := strings.TrimRight(withDefault(cfg.APIURL, DefaultAPIURL), "/")
	for _, u := range []struct{ name, value string }{{"auth URL", authURL}, {"token URL", tokenURL}, {"API URL", apiURL}} {
		if err := checkURL(u.value); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", u.name, err))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("github: config: %w", errors.Join(errs...))
	}

	scopes := cfg.Scopes
	if len(scopes) == 0 {
		scopes = defaultScopes
		if cfg.Groups {
			scopes = append(slices.Clone(defaultScopes), "read:org")
		}
	}
	client := upstream.Client(cfg.HTTPClient, callTimeout) // SEC-73
	key := cfg.PKCEKey
	if len(key) == 0 {
		key = make([]byte, 32)
		rand.Read(key)
	}
	return &Connector{
		oauth: oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			Endpoint: oauth2.Endpoint{
				AuthURL:  authURL,
				TokenURL: tokenURL,
				// GitHub documents client_id and client_secret as body
				// parameters; saying so spares x/oauth2's probing, which
				// would send a failing request first.
				AuthStyle: oauth2.AuthStyleInParams,
			},
			Scopes: append([]string(nil), scopes...),
		},
		apiURL:  apiURL,
		client:  client,
		pkceKey: append([]byte(nil), key...),
		groups:  cfg.Groups,
	}, nil
}

func withDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", s)
	}
	return nil
}

// ID implements upstream.Connector.
func (c *Connector) ID() string { return ID }

// DisplayName implements upstream.Connector.
func (c *Connector) DisplayName() string { return "GitHub" }

// verifier derives the PKCE verifier (RFC 7636 §4.1) for a login from its
// state. The state is random, single-use and bound server-side to one
// authorization request, so a verifier bound to it is as fresh as a random
// one, and the connector needs no storage between LoginURL and
// HandleCallback. The key keeps the verifier secret although the state
// travels through the browser: someone who captured a code and its state
// still cannot redeem the code, and a code injected into another login
// fails because that login's verifier differs.
func (c *Connector) verifier(state string) string {
	m := hmac.New(sha256.New, c.pkceKey)
	m.Write([]byte("mcpgate github pkce v1\x00"))
	m.Write([]byte(state))
	// 32 bytes → 43 base64url characters, the minimum length of §4.1.
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (c *Connector) config(callbackURL string) *oauth2.Config {
	conf := c.oauth
	conf.RedirectURL = callbackURL
	return &conf
}

// LoginURL implements upstream.CallbackConnector.
func (c *Connector) LoginURL(state, callbackURL string) string {
	return c.config(callbackURL).AuthCodeURL(state, oauth2.S256ChallengeOption(c.verifier(state)))
}

// HandleCallback implements upstream.CallbackConnector: it redeems the code
// and reads the user from the API. Errors never contain the client secret or
// the access token.
func (c *Connector) HandleCallback(ctx context.Context, callbackURL string, r *http.Request) (identity.User, error) {
	user, _, err := c.HandleCallbackSession(ctx, callbackURL, r)
	return user, err
}

// HandleCallbackSession implements upstream.RefreshingConnector. An OAuth
// app's token does not expire and comes without a refresh token: the
// token itself is what the gateway keeps, sealed, to read the user again.
func (c *Connector) HandleCallbackSession(ctx context.Context, callbackURL string, r *http.Request) (identity.User, string, error) {
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		err := upstream.Mark(fmt.Errorf("github: authorization failed: %s: %s", upstream.Clip(e), upstream.Clip(q.Get("error_description"))),
			upstream.CallbackErrorKind(e))
		if e == "access_denied" {
			err = fmt.Errorf("%w (%s)", ErrAccessDenied, upstream.Clip(q.Get("error_description")))
		}
		return identity.User{}, "", err
	}
	code := q.Get("code")
	if code == "" {
		return identity.User{}, "", errors.New("github: callback without code")
	}

	ctx = context.WithValue(ctx, oauth2.HTTPClient, c.client)
	tok, err := c.config(callbackURL).Exchange(ctx, code, oauth2.VerifierOption(c.verifier(q.Get("state"))))
	if err != nil {
		return identity.User{}, "", fmt.Errorf("github: exchange code: %w", upstream.TokenError(err))
	}
	user, err := c.readUser(ctx, tok.AccessToken)
	if err != nil {
		return identity.User{}, "", err
	}
	return user, tok.AccessToken, nil
}

// TokenIssuer implements upstream.RefreshingConnector: the API the token
// is sent to, and the OAuth app it was issued to.
func (c *Connector) TokenIssuer() (issuer, clientID string) { return c.apiURL, c.oauth.ClientID }

// Refresh implements upstream.RefreshingConnector (RT-3, SEC-68): it reads
// the user again with the token of their login, so that organizations and
// teams they left are gone from their groups. A token GitHub no longer
// accepts (the person revoked the app's authorization, or GitHub revoked
// the token) is upstream.ErrSessionEnded.
func (c *Connector) Refresh(ctx context.Context, token string) (identity.User, string, error) {
	if token == "" {
		return identity.User{}, "", fmt.Errorf("github: no token: %w", upstream.ErrSessionEnded)
	}
	user, err := c.readUser(ctx, token)
	if errors.Is(err, errBadCredentials) {
		return identity.User{}, "", fmt.Errorf("%w: %w", upstream.ErrSessionEnded, err)
	}
	if err != nil {
		return identity.User{}, "", err
	}
	return user, token, nil
}

// readUser reads the user, their verified primary email and, with
// Groups, their groups, with token.
func (c *Connector) readUser(ctx context.Context, token string) (identity.User, error) {
	var u struct {
		ID        int64  `json:"id"`
		Login     string `json:"login"`
		Name      string `json:"name"`
		HTMLURL   string `json:"html_url"`
		AvatarURL string `json:"avatar_url"`
	}
	if err := c.get(ctx, token, "/user", &u); err != nil {
		return identity.User{}, err
	}
	if u.ID <= 0 || u.Login == "" {
		return identity.User{}, errors.New("github: GET /user: response without id or login")
	}

	// One page of 100 holds the addresses of anyone but a curiosity; the
	// primary one is not necessarily first.
	var emails []struct {
		Email    string `json:"email"`
		Primary  bool   `json:"primary"`
		Verified bool   `json:"verified"`
	}
	var email string
	switch err := c.get(ctx, token, "/user/emails?per_page=100", &emails); {
	case err == nil:
		for _, e := range emails {
			// Never an unverified address: downstream may trust it.
			if e.Primary && e.Verified && e.Email != "" {
				email = e.Email
				break
			}
		}
	case errors.Is(err, errNoAccess):
		// The token lacks user:email (Scopes was changed): no email.
	default:
		return identity.User{}, err
	}

	var groups []string
	if c.groups {
		var err error
		if groups, err = c.readGroups(ctx, token); err != nil {
			return identity.User{}, err
		}
	}

	name := u.Name
	if name == "" {
		name = u.Login
	}
	return identity.User{
		Groups:        groups,
		ID:            ID + ":" + strconv.FormatInt(u.ID, 10),
		Upstream:      ID,
		Username:      u.Login,
		Name:          name,
		Email:         email,
		EmailVerified: email != "",
		Picture:       u.AvatarURL,
		Profile:       u.HTMLURL,
	}, nil
}

// maxGroupPages bounds the pages of 100 read of each of /user/orgs and
// /user/teams: a login never costs more than 2×maxGroupPages requests.
const maxGroupPages = 10

// readGroups lists the user's organizations ("org") and teams
// ("org/team"). Any failure fails the login rather than let the user in
// without groups: tool_policy deny rules and access rules name groups, and
// a user missing one would get past them.
func (c *Connector) readGroups(ctx context.Context, token string) ([]string, error) {
	type org struct {
		Login string `json:"login"`
	}
	orgs, err := getAll[org](ctx, c, token, "/user/orgs")
	if err != nil {
		return nil, groupsError(err)
	}
	type team struct {
		Slug         string `json:"slug"`
		Organization org    `json:"organization"`
	}
	teams, err := getAll[team](ctx, c, token, "/user/teams")
	if err != nil {
		return nil, groupsError(err)
	}
	groups := make([]string, 0, len(orgs)+len(teams))
	for _, o := range orgs {
		if o.Login != "" {
			groups = append(groups, o.Login)
		}
	}
	for _, t := range teams {
		if t.Slug != "" && t.Organization.Login != "" {
			groups = append(groups, t.Organization.Login+"/"+t.Slug)
		}
	}
	return groups, nil
}

func groupsError(err error) error {
	if errors.Is(err, errNoAccess) {
		return fmt.Errorf("%w; reading groups needs the read:org scope", err)
	}
	return err
}

// getAll reads every page of a list (100 a page), following the Link
// header's next URL only when it stays under apiURL: the token goes with
// each request. More than maxGroupPages pages is an error, not a cut list.
func getAll[T any](ctx context.Context, c *Connector, token, path string) ([]T, error) {
	var all []T
	next := path + "?per_page=100"
	for range maxGroupPages {
		var page []T
		link, err := c.getPage(ctx, token, next, &page)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if link == "" {
			return all, nil
		}
		rest, ok := strings.CutPrefix(link, c.apiURL+"/")
		if !ok {
			return nil, fmt.Errorf("github: GET %s: next page %q is not under the API URL", path, upstream.Clip(link))
		}
		next = "/" + rest
	}
	return nil, fmt.Errorf("github: GET %s: more than %d pages", path, maxGroupPages)
}

// nextLink is the rel="next" URL of a Link header (RFC 8288), or "".
func nextLink(h string) string {
	for _, part := range strings.Split(h, ",") {
		target, params, ok := strings.Cut(strings.TrimSpace(part), ";")
		if !ok || !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
			continue
		}
		for _, p := range strings.Split(params, ";") {
			if k, v, _ := strings.Cut(strings.TrimSpace(p), "="); k == "rel" && strings.Trim(v, `"`) == "next" {
				return target[1 : len(target)-1]
			}
		}
	}
	return ""
}

// errNoAccess marks a 403 or 404 from the API: the token may not read it.
var errNoAccess = errors.New("no access")

// errBadCredentials marks a 401 from the API: GitHub no longer accepts
// the token.
var errBadCredentials = errors.New("bad credentials")

// get fetches apiURL+path with the token and decodes the JSON answer.
func (c *Connector) get(ctx context.Context, token, path string, v any) error {
	_, err := c.getPage(ctx, token, path, v)
	return err
}

// getPage is get that also returns the Link header's next page, if any.
func (c *Connector) getPage(ctx context.Context, token, path string, v any) (next string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.apiURL+path, nil)
	if err != nil {
		return "", fmt.Errorf("github: GET %s: %w", path, err)
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", apiVersion)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.client.Do(req)
	if err != nil {
		// *url.Error names the URL, which holds no secret.
		return "", upstream.Unreachable(fmt.Errorf("github: GET %s: %w", path, err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return "", fmt.Errorf("github: GET %s: read: %w", path, err)
	}
	if len(body) > maxBody {
		return "", fmt.Errorf("github: GET %s: response larger than %d bytes", path, maxBody)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Message string `json:"message"`
		}
		json.Unmarshal(body, &e)
		err := fmt.Errorf("github: GET %s: %s: %s", path, resp.Status, upstream.Clip(e.Message))
		switch {
		case resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusNotFound:
			err = fmt.Errorf("%w (%w)", err, errNoAccess)
		case resp.StatusCode == http.StatusUnauthorized:
			err = fmt.Errorf("%w (%w)", err, errBadCredentials)
		case resp.StatusCode >= 500:
			err = upstream.Mark(err, upstream.ErrUnavailable)
		}
		return "", err
	}
	if sso := resp.Header.Get("X-GitHub-SSO"); strings.HasPrefix(sso, "partial-results") {
		// A list without the organizations whose SAML single sign-on the
		// token is not authorized for: groups read from it would let the
		// person past rules that name those (SEC-167).
		return "", fmt.Errorf("github: GET %s: GitHub left out organizations that enforce SAML single sign-on (%s): "+
			"the person must start a SAML session at each (https://github.com/orgs/NAME/sso) and sign in again", path, upstream.Clip(sso))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return "", fmt.Errorf("github: GET %s: decode: %w", path, err)
	}
	return nextLink(resp.Header.Get("Link")), nil
}
