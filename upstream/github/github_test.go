package github_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/upstream"
	"github.com/mcpgate/mcpgate/upstream/github"
	"github.com/mcpgate/mcpgate/upstream/github/githubtest"
)

const (
	clientID     = "Iv1.0123456789abcdef"
	clientSecret = "s3cr3t-0123456789abcdef0123456789abcdef"
	callback     = "https://gateway.example/callback/github"
)

var octocat = githubtest.User{
	ID:    583231,
	Login: "octocat",
	Name:  "The Octocat",
	Emails: []githubtest.Email{
		{Email: "octocat@old.example", Verified: true},
		{Email: "unverified@example.com"},
		{Email: "octocat@github.com", Primary: true, Verified: true},
	},
}

type env struct {
	t    *testing.T
	fake *githubtest.Server
	conn *github.Connector
	errs []error // every error seen, checked for leaks at cleanup
}

func newEnv(t *testing.T, users ...githubtest.User) *env {
	t.Helper()
	fake := githubtest.NewServer(t, clientID, clientSecret)
	fake.SetCallbackURL(callback)
	for _, u := range users {
		fake.AddUser(u)
	}
	e := &env{t: t, fake: fake}
	e.conn = e.connector(github.Config{})
	t.Cleanup(e.checkLeaks)
	return e
}

// connector returns a connector for the fake, with cfg's non-zero fields.
func (e *env) connector(cfg github.Config) *github.Connector {
	e.t.Helper()
	if cfg.ClientID == "" {
		cfg.ClientID = clientID
	}
	if cfg.ClientSecret == "" {
		cfg.ClientSecret = clientSecret
	}
	if cfg.AuthURL == "" {
		cfg.AuthURL = e.fake.AuthURL()
	}
	if cfg.TokenURL == "" {
		cfg.TokenURL = e.fake.TokenURL()
	}
	if cfg.APIURL == "" {
		cfg.APIURL = e.fake.APIURL()
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = e.fake.Client()
	}
	c, err := github.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// authorize plays the browser: it opens the login URL at the fake and
// returns the request that arrives back at the callback.
func (e *env) authorize(loginURL string) *http.Request {
	e.t.Helper()
	client := e.fake.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Get(loginURL)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		e.t.Fatalf("authorize answered %s, want 302", resp.Status)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, callback+"?") {
		e.t.Fatalf("authorize redirected to %q, want the callback", loc)
	}
	return httptest.NewRequest(http.MethodGet, loc, nil)
}

// login runs the whole flow with a fresh state.
func (e *env) login(c *github.Connector) (identity.User, error) {
	e.t.Helper()
	state := "state-" + e.t.Name()
	r := e.authorize(c.LoginURL(state, callback))
	if got := r.URL.Query().Get("state"); got != state {
		e.t.Fatalf("callback state = %q, want %q", got, state)
	}
	u, err := c.HandleCallback(context.Background(), callback, r)
	e.note(err)
	return u, err
}

func (e *env) note(err error) {
	if err != nil {
		e.errs = append(e.errs, err)
	}
}

// checkLeaks: no error may quote the client secret or an access token.
func (e *env) checkLeaks() {
	secrets := append([]string{clientSecret}, e.fake.Tokens()...)
	for _, err := range e.errs {
		for _, s := range secrets {
			if strings.Contains(err.Error(), s) {
				e.t.Errorf("error %q contains a secret, want neither the client secret nor a token in errors", err)
			}
		}
	}
}

func TestLogin(t *testing.T) {
	e := newEnv(t, octocat)
	if e.conn.ID() != "github" || e.conn.DisplayName() != "GitHub" {
		t.Errorf("ID, DisplayName = %q, %q; want github, GitHub", e.conn.ID(), e.conn.DisplayName())
	}
	got, err := e.login(e.conn)
	if err != nil {
		t.Fatalf("login: %v, want success", err)
	}
	want := identity.User{
		ID:            "github:583231",
		Upstream:      "github",
		Username:      "octocat",
		Name:          "The Octocat",
		Email:         "octocat@github.com",
		EmailVerified: true,
		Picture:       "https://avatars.githubusercontent.com/u/583231?v=4",
		Profile:       "https://github.com/octocat",
	}
	if !equalUser(got, want) {
		t.Errorf("login = %+v\nwant    %+v", got, want)
	}
}

func equalUser(a, b identity.User) bool {
	return a.ID == b.ID && a.Upstream == b.Upstream && a.Username == b.Username && a.Name == b.Name &&
		a.Email == b.Email && a.EmailVerified == b.EmailVerified && a.Picture == b.Picture &&
		a.Profile == b.Profile && len(a.Groups) == 0 && len(b.Groups) == 0
}

func TestLoginURL(t *testing.T) {
	e := newEnv(t)
	u, err := url.Parse(e.conn.LoginURL("the-state", callback))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	for k, want := range map[string]string{
		"client_id":             clientID,
		"redirect_uri":          callback,
		"state":                 "the-state",
		"scope":                 "read:user user:email",
		"code_challenge_method": "S256",
	} {
		if got := q.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if len(q.Get("code_challenge")) != 43 {
		t.Errorf("code_challenge = %q, want 43 characters", q.Get("code_challenge"))
	}
	if strings.Contains(u.String(), clientSecret) {
		t.Error("the login URL contains the client secret, want it left out")
	}
	// The challenge is a function of the state: same state, same challenge;
	// another state, another one.
	again, _ := url.Parse(e.conn.LoginURL("the-state", callback))
	other, _ := url.Parse(e.conn.LoginURL("other-state", callback))
	if again.Query().Get("code_challenge") != q.Get("code_challenge") {
		t.Errorf("the challenge for one state changed between calls (%q, %q), want the same", q.Get("code_challenge"), again.Query().Get("code_challenge"))
	}
	if other.Query().Get("code_challenge") == q.Get("code_challenge") {
		t.Error("two states share a challenge, want one per state")
	}
}

func TestEmailSelection(t *testing.T) {
	tests := []struct {
		name   string
		emails []githubtest.Email
		public string
		want   string
	}{
		{"primary and verified", octocat.Emails, "", "octocat@github.com"},
		{"unverified primary is ignored", []githubtest.Email{
			{Email: "primary@example.com", Primary: true},
			{Email: "verified@example.com", Verified: true},
		}, "primary@example.com", ""},
		{"no addresses", nil, "", ""},
		{"public profile email is never used", []githubtest.Email{
			{Email: "secondary@example.com", Verified: true},
		}, "public@example.com", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := octocat
			u.Emails, u.PublicEmail = tt.emails, tt.public
			e := newEnv(t, u)
			got, err := e.login(e.conn)
			if err != nil {
				t.Fatal(err)
			}
			if got.Email != tt.want || got.EmailVerified != (tt.want != "") {
				t.Errorf("Email, EmailVerified = %q, %v; want %q, %v", got.Email, got.EmailVerified, tt.want, tt.want != "")
			}
		})
	}
}

func TestEmailPastFirstPage(t *testing.T) {
	u := octocat
	u.Emails = nil
	for i := range 40 { // more than the API's default page of 30
		u.Emails = append(u.Emails, githubtest.Email{Email: "old" + string(rune('a'+i%26)) + "@example.com", Verified: true})
	}
	u.Emails = append(u.Emails, githubtest.Email{Email: "me@example.com", Primary: true, Verified: true})
	e := newEnv(t, u)
	got, err := e.login(e.conn)
	if err != nil {
		t.Fatal(err)
	}
	if got.Email != "me@example.com" {
		t.Errorf("Email = %q, want the primary address at position 41", got.Email)
	}
}

func TestNameFallsBackToLogin(t *testing.T) {
	u := octocat
	u.Name = "" // GitHub sends null
	e := newEnv(t, u)
	got, err := e.login(e.conn)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "octocat" {
		t.Errorf("Name = %q, want the login", got.Name)
	}
}

func TestWithoutEmailScope(t *testing.T) {
	e := newEnv(t, octocat)
	c := e.connector(github.Config{Scopes: []string{"read:user"}})
	got, err := e.login(c)
	if err != nil {
		t.Fatalf("login without user:email: %v, want success", err)
	}
	if got.ID != "github:583231" || got.Email != "" {
		t.Errorf("login = %+v, want the user without email", got)
	}
}

func TestBadCode(t *testing.T) {
	e := newEnv(t, octocat)
	r := httptest.NewRequest(http.MethodGet, callback+"?code=0123456789abcdef0123&state=s", nil)
	_, err := e.conn.HandleCallback(context.Background(), callback, r)
	e.note(err)
	if err == nil || !strings.Contains(err.Error(), "bad_verification_code") {
		t.Fatalf("HandleCallback with a made-up code = %v, want bad_verification_code", err)
	}
}

func TestCodeIsSingleUse(t *testing.T) {
	e := newEnv(t, octocat)
	r := e.authorize(e.conn.LoginURL("s1", callback))
	if _, err := e.conn.HandleCallback(context.Background(), callback, r); err != nil {
		t.Fatalf("first use of the code: %v, want success", err)
	}
	_, err := e.conn.HandleCallback(context.Background(), callback, r)
	e.note(err)
	if err == nil {
		t.Fatal("a code was redeemed twice, want the second use refused")
	}
}

func TestMissingCode(t *testing.T) {
	e := newEnv(t, octocat)
	r := httptest.NewRequest(http.MethodGet, callback+"?state=s", nil)
	_, err := e.conn.HandleCallback(context.Background(), callback, r)
	e.note(err)
	if err == nil {
		t.Fatal("HandleCallback without code succeeded, want an error")
	}
}

func TestWrongClientSecret(t *testing.T) {
	e := newEnv(t, octocat)
	c := e.connector(github.Config{ClientSecret: "not-the-secret"})
	_, err := e.login(c)
	if err == nil || !strings.Contains(err.Error(), "incorrect_client_credentials") {
		t.Fatalf("login with a wrong secret = %v, want incorrect_client_credentials", err)
	}
	if strings.Contains(err.Error(), "not-the-secret") {
		t.Errorf("error %q quotes the secret sent, want it left out", err)
	}
}

func TestAPIUnauthorized(t *testing.T) {
	e := newEnv(t, octocat)
	// Another GitHub's API does not know this one's tokens.
	other := githubtest.NewServer(t, clientID, clientSecret)
	c := e.connector(github.Config{APIURL: other.APIURL()})
	_, err := e.login(c)
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "Bad credentials") {
		t.Fatalf("login against an API that rejects the token = %v, want 401 Bad credentials", err)
	}
}

func TestAccessDenied(t *testing.T) {
	e := newEnv(t, octocat)
	e.fake.SetDeny(true)
	_, err := e.login(e.conn)
	if !errors.Is(err, github.ErrAccessDenied) {
		t.Fatalf("login the user declined = %v, want ErrAccessDenied", err)
	}
}

func TestProviderError(t *testing.T) {
	e := newEnv(t, octocat)
	r := httptest.NewRequest(http.MethodGet, callback+"?error=application_suspended&error_description=Your+application+has+been+suspended.&state=s", nil)
	_, err := e.conn.HandleCallback(context.Background(), callback, r)
	e.note(err)
	if err == nil || !strings.Contains(err.Error(), "application_suspended") || errors.Is(err, github.ErrAccessDenied) {
		t.Fatalf("HandleCallback with error=application_suspended = %v, want an error naming application_suspended that is not ErrAccessDenied", err)
	}
}

// A code obtained for one login and replayed into another (code injection)
// fails the PKCE check: the other login's state yields another verifier.
func TestPKCEBindsCodeToState(t *testing.T) {
	e := newEnv(t, octocat)
	r := e.authorize(e.conn.LoginURL("victim-state", callback))
	q := r.URL.Query()
	q.Set("state", "attacker-state")
	r.URL.RawQuery = q.Encode()
	_, err := e.conn.HandleCallback(context.Background(), callback, r)
	e.note(err)
	if err == nil {
		t.Fatal("a code was redeemed with another login's verifier, want the PKCE check to refuse it")
	}
}

// Replicas that share PKCEKey can finish each other's logins; with the
// default per-process key they cannot.
func TestPKCEKey(t *testing.T) {
	e := newEnv(t, octocat)
	key := []byte("0123456789abcdef0123456789abcdef")
	a := e.connector(github.Config{PKCEKey: key})
	b := e.connector(github.Config{PKCEKey: key})
	r := e.authorize(a.LoginURL("s", callback))
	if _, err := b.HandleCallback(context.Background(), callback, r); err != nil {
		t.Fatalf("replica with the same key: %v, want success", err)
	}

	c := e.connector(github.Config{})
	r = e.authorize(a.LoginURL("s2", callback))
	_, err := c.HandleCallback(context.Background(), callback, r)
	e.note(err)
	if err == nil {
		t.Fatal("a connector with another key redeemed the code, want it refused")
	}
}

func TestRedirectURIMismatchAtExchange(t *testing.T) {
	e := newEnv(t, octocat)
	r := e.authorize(e.conn.LoginURL("s", callback))
	_, err := e.conn.HandleCallback(context.Background(), callback+"/other", r)
	e.note(err)
	if err == nil || !strings.Contains(err.Error(), "redirect_uri_mismatch") {
		t.Fatalf("exchange with another redirect_uri = %v, want redirect_uri_mismatch", err)
	}
}

func TestOversizedResponse(t *testing.T) {
	e := newEnv(t, octocat)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"id":1,"login":"x","name":"`))
		w.Write([]byte(strings.Repeat("a", 2<<20)))
		w.Write([]byte(`"}`))
	}))
	defer api.Close()
	c := e.connector(github.Config{APIURL: api.URL})
	_, err := e.login(c)
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("login with a 2 MiB /user = %v, want a size error", err)
	}
}

func TestAPIHeaders(t *testing.T) {
	e := newEnv(t, octocat)
	var seen []http.Header
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Header.Clone())
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/user/emails" {
			w.Write([]byte(`[]`))
			return
		}
		w.Write([]byte(`{"id":7,"login":"seven","name":null}`))
	}))
	defer api.Close()
	c := e.connector(github.Config{APIURL: api.URL + "/"}) // a trailing slash is fine
	if _, err := e.login(c); err != nil {
		t.Fatalf("login: %v, want success", err)
	}
	if len(seen) != 2 {
		t.Fatalf("%d API requests, want 2", len(seen))
	}
	for _, h := range seen {
		if h.Get("Accept") != "application/vnd.github+json" || h.Get("X-GitHub-Api-Version") != "2022-11-28" ||
			!strings.HasPrefix(h.Get("Authorization"), "Bearer gho_") {
			t.Errorf("API request headers = %v; want Accept application/vnd.github+json, X-GitHub-Api-Version 2022-11-28 and a Bearer gho_ token", h)
		}
	}
}

func TestNewValidates(t *testing.T) {
	_, err := github.New(github.Config{})
	if err == nil || !strings.Contains(err.Error(), "client id") || !strings.Contains(err.Error(), "client secret") {
		t.Errorf("New(empty) = %v, want both missing fields reported", err)
	}
	_, err = github.New(github.Config{ClientID: "id", ClientSecret: "secret", APIURL: "api.github.com"})
	if err == nil || !strings.Contains(err.Error(), "API URL") {
		t.Errorf("New with a relative API URL = %v, want an error about the API URL", err)
	}
	c, err := github.New(github.Config{ClientID: "id", ClientSecret: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	if u := c.LoginURL("s", callback); !strings.HasPrefix(u, github.DefaultAuthURL+"?") {
		t.Errorf("default LoginURL = %q, want it under %s", u, github.DefaultAuthURL)
	}
	var _ upstream.CallbackConnector = c
}

// With Groups, the user's organizations and teams are groups ("org" and
// "org/team"), past the first page of each list; the login URL then asks
// for read:org, which it does not without.
func TestGroups(t *testing.T) {
	u := octocat
	for i := range 105 {
		u.Orgs = append(u.Orgs, fmt.Sprintf("org%03d", i))
	}
	u.Teams = []githubtest.Team{{Org: "org000", Slug: "platform"}, {Org: "acme", Slug: "sre"}}
	e := newEnv(t, u)
	if strings.Contains(e.conn.LoginURL("s", callback), "read%3Aorg") {
		t.Error("the login URL asks for read:org without Groups, want only read:user and user:email")
	}
	c := e.connector(github.Config{Groups: true})
	if !strings.Contains(c.LoginURL("s", callback), "read%3Aorg") {
		t.Errorf("the login URL %s lacks read:org with Groups", c.LoginURL("s", callback))
	}
	got, err := e.login(c)
	if err != nil {
		t.Fatalf("login: %v, want success", err)
	}
	want := append(slices.Clone(u.Orgs), "org000/platform", "acme/sre")
	if !slices.Equal(got.Groups, want) {
		t.Errorf("groups: %d %q…, want the %d orgs and the 2 teams", len(got.Groups), got.Groups[min(len(got.Groups), 100):], len(want))
	}
	if got, err := e.login(e.conn); err != nil || got.Groups != nil {
		t.Errorf("login without Groups: groups %q, %v; want none", got.Groups, err)
	}
}

// A failure reading the groups fails the login: a user let in without
// their groups would dodge the deny rules of tool_policy that name them.
func TestGroupsErrorFailsLogin(t *testing.T) {
	e := newEnv(t, octocat)
	c := e.connector(github.Config{Groups: true, Scopes: []string{"read:user", "user:email"}})
	_, err := e.login(c)
	if err == nil || !strings.Contains(err.Error(), "/user/orgs") || !strings.Contains(err.Error(), "read:org") {
		t.Errorf("login with groups but a token without read:org: %v, want an error naming /user/orgs and read:org", err)
	}
}

// linkRewriter points the Link header of /user/orgs elsewhere and records
// every host the connector sends a request to.
type linkRewriter struct {
	next  http.RoundTripper
	hosts []string
}

func (l *linkRewriter) RoundTrip(r *http.Request) (*http.Response, error) {
	l.hosts = append(l.hosts, r.URL.Host)
	resp, err := l.next.RoundTrip(r)
	if err == nil && r.URL.Path == "/user/orgs" {
		resp.Header.Set("Link", `<https://evil.example/user/orgs?per_page=100&page=2>; rel="next"`)
	}
	return resp, err
}

// The token goes with every page, so a next page away from the API URL is
// refused, not fetched.
func TestGroupsNextPageStaysAtTheAPI(t *testing.T) {
	e := newEnv(t, octocat)
	lr := &linkRewriter{next: e.fake.Client().Transport}
	c := e.connector(github.Config{Groups: true, HTTPClient: &http.Client{Transport: lr}})
	_, err := e.login(c)
	if err == nil || !strings.Contains(err.Error(), "not under the API URL") {
		t.Errorf("login with a next page at another host: %v, want an error saying it is not under the API URL", err)
	}
	if slices.Contains(lr.hosts, "evil.example") {
		t.Error("the connector sent a request to evil.example, want none")
	}
}

// Why a login failed, for the page the person sees: GitHub's own refusals
// are upstream.ErrRefused; its server errors, a token endpoint out of reach
// and an API answering 5xx are upstream.ErrUnavailable; an API that
// refuses the token is neither.
func TestFailureKinds(t *testing.T) {
	e := newEnv(t, octocat)
	e.fake.SetDeny(true)
	if _, err := e.login(e.conn); !errors.Is(err, upstream.ErrRefused) || errors.Is(err, upstream.ErrUnavailable) {
		t.Errorf("declined: %v; want ErrRefused", err)
	}
	e.fake.SetDeny(false)
	for _, tc := range []struct {
		code      string
		kind, not error
	}{
		{"application_suspended", upstream.ErrRefused, upstream.ErrUnavailable},
		{"server_error", upstream.ErrUnavailable, upstream.ErrRefused},
		{"temporarily_unavailable", upstream.ErrUnavailable, upstream.ErrRefused},
	} {
		r := httptest.NewRequest(http.MethodGet, callback+"?error="+tc.code+"&state=s", nil)
		_, err := e.conn.HandleCallback(context.Background(), callback, r)
		e.note(err)
		if !errors.Is(err, tc.kind) || errors.Is(err, tc.not) {
			t.Errorf("error=%s: %v; want %v, not %v", tc.code, err, tc.kind, tc.not)
		}
	}

	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	if _, err := e.login(e.connector(github.Config{TokenURL: down.URL + "/login/oauth/access_token"})); !errors.Is(err, upstream.ErrUnavailable) {
		t.Errorf("token endpoint down: %v; want ErrUnavailable", err)
	}
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"message":"Server Error"}`, http.StatusBadGateway)
	}))
	defer failing.Close()
	if _, err := e.login(e.connector(github.Config{APIURL: failing.URL})); !errors.Is(err, upstream.ErrUnavailable) {
		t.Errorf("API answering 502: %v; want ErrUnavailable", err)
	}
	other := githubtest.NewServer(t, clientID, clientSecret)
	if _, err := e.login(e.connector(github.Config{APIURL: other.APIURL()})); err == nil || errors.Is(err, upstream.ErrUnavailable) || errors.Is(err, upstream.ErrRefused) {
		t.Errorf("API refusing the token: %v; want an error of neither kind", err)
	}
}

// SEC-167: a list that GitHub answers without the organizations whose
// SAML single sign-on the token is not authorized for (X-GitHub-SSO:
// partial-results) fails the login: read as complete, it let a member of
// acme/contractors in without that group, past the rules that name it.
// The organizations the token may read, and a list without the header,
// still sign in.
func TestSEC167_SSOPartialGroupsFailLogin(t *testing.T) {
	u := octocat
	u.Orgs = []string{"public-club", "acme"}
	u.Teams = []githubtest.Team{{Org: "acme", Slug: "contractors"}}
	u.Unauthorized = []string{"acme"}
	e := newEnv(t, u)
	c := e.connector(github.Config{Groups: true})
	got, err := e.login(c)
	if err == nil || !strings.Contains(err.Error(), "SAML single sign-on") || !strings.Contains(err.Error(), "organizations=1001") {
		t.Errorf("login with acme left out for SAML SSO: groups %q, err %v; want an error naming SAML single sign-on and the organization", got.Groups, err)
	}
	u.Unauthorized = nil
	e = newEnv(t, u)
	if got, err := e.login(e.connector(github.Config{Groups: true})); err != nil || !slices.Equal(got.Groups, []string{"public-club", "acme", "acme/contractors"}) {
		t.Errorf("login with every organization authorized: groups %q, err %v; want all three", got.Groups, err)
	}
}
