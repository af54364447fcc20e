package mcpgate_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/oidctest"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/sqlite"
	"github.com/mcpgate/mcpgate/upstream"
	"github.com/mcpgate/mcpgate/upstream/oidc"
)

// tokenCalls counts the requests a connector makes to the provider's token
// endpoint and keeps the refresh tokens the provider answers with.
type tokenCalls struct {
	n      atomic.Int32
	mu     sync.Mutex
	issued []string
}

func (c *tokenCalls) RoundTrip(r *http.Request) (*http.Response, error) {
	isToken := r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/token")
	if isToken {
		c.n.Add(1)
	}
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || !isToken {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var tr struct {
		RefreshToken string `json:"refresh_token"`
	}
	if json.Unmarshal(body, &tr) == nil && tr.RefreshToken != "" {
		c.mu.Lock()
		c.issued = append(c.issued, tr.RefreshToken)
		c.mu.Unlock()
	}
	return resp, nil
}

// recheckGateway is a gateway whose one connector is an OpenID provider
// with alice in admins and devs, her login done: it returns her tokens.
type recheckGateway struct {
	*gw
	op     *oidctest.Provider
	alice  oidctest.User
	calls  *tokenCalls
	st     *sqlite.Store
	dbPath string
	client registered
	// browser is the one alice logged in with: it holds the gateway's
	// session and the provider's.
	browser *browser.Browser
	mu      sync.Mutex
	seen    []identity.User
}

func newRecheckGateway(t *testing.T, ctx context.Context, mod func(*mcpgateConfig)) (*recheckGateway, tokenResponse) {
	t.Helper()
	return newRecheckGatewayAt(t, ctx, recheckProvider{}, mod)
}

// recheckProvider changes the provider's options and the connector's
// config of a recheckGateway.
type recheckProvider struct {
	options   func(*oidctest.Options)
	connector func(*oidc.Config)
}

func newRecheckGatewayAt(t *testing.T, ctx context.Context, rp recheckProvider, mod func(*mcpgateConfig)) (*recheckGateway, tokenResponse) {
	t.Helper()
	ln, base := loopback(t)
	r := &recheckGateway{calls: &tokenCalls{}, dbPath: filepath.Join(t.TempDir(), "mcpgate.db")}
	r.alice = oidctest.User{Sub: "alice", Email: "alice@corp.example", EmailVerified: true, Groups: []string{"admins", "devs"}, Password: "pw"}
	opts := oidctest.Options{
		Clients: []oidctest.Client{{ID: "mcpgate", Secret: "op-secret", RedirectURIs: []string{base + "/callback/oidc"}}},
		Users:   []oidctest.User{r.alice},
	}
	if rp.options != nil {
		rp.options(&opts)
	}
	r.op = oidctest.Start(t, opts)
	conCfg := oidc.Config{Issuer: r.op.Issuer(), ClientID: "mcpgate", ClientSecret: "op-secret",
		HTTPClient: &http.Client{Transport: r.calls, Timeout: 30 * time.Second}}
	if rp.connector != nil {
		rp.connector(&conCfg)
	}
	con, err := oidc.New(ctx, conCfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.st, err = sqlite.Open(ctx, r.dbPath); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.st.Close() })
	r.gw = newGatewayOn(t, ln, func(c *mcpgateConfig) {
		c.Store = r.st
		c.Connectors = []upstream.Connector{con}
		c.UpstreamRecheck = time.Hour
		c.MCP = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			r.mu.Lock()
			r.seen = append(r.seen, callerFromContext(req).User)
			r.mu.Unlock()
			w.WriteHeader(204)
		})
		if mod != nil {
			mod(c)
		}
	})
	r.client = r.register(nil)
	a := r.newAuth(r.client.ClientID)
	b := browser.New("", "")
	toProvider, err := b.Walk(ctx, a.URL(), r.op.Issuer()+"/")
	if err != nil {
		t.Fatalf("authorize: %v", err)
	}
	done, err := b.Walk(ctx, r.op.Login(t, b.Client, toProvider.String(), "alice").String(), a.Redirect)
	if err != nil {
		t.Fatalf("callback: %v", err)
	}
	resp, tok := r.exchange(a, done.Query().Get("code"))
	if resp.StatusCode != 200 || tok.RefreshToken == "" {
		t.Fatalf("token: %d %+v, want 200 with a refresh token", resp.StatusCode, tok)
	}
	r.browser = b
	return r, tok
}

// groupsOf calls the MCP endpoint with access and returns the groups the
// backend saw.
func (r *recheckGateway) groupsOf(t *testing.T, access string) []string {
	t.Helper()
	if resp, _ := r.mcpInitialize(r.url, access); resp.StatusCode != 204 {
		t.Fatalf("MCP request: %d, want 204", resp.StatusCode)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen[len(r.seen)-1].Groups
}

// RT-3: a grant that stands on an OpenID provider's login is rechecked
// there once its upstream tokens are older than UpstreamRecheck: a group
// removed at the provider is gone from the next access token, concurrent
// refreshes of one family make one upstream refresh, and a grant the
// provider revoked ends the family with invalid_grant. The provider's
// refresh token is stored sealed, never in clear.
func TestRT3_UpstreamRecheck(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	g, tok := newRecheckGateway(t, ctx, nil)
	op, st, calls, client, alice, dbPath := g.op, g.st, g.calls, g.client, g.alice, g.dbPath
	groupsOf := func(access string) []string { t.Helper(); return g.groupsOf(t, access) }
	if got := groupsOf(tok.AccessToken); !slices.Contains(got, "admins") {
		t.Fatalf("groups at login %v, want admins", got)
	}
	_, grant, err := st.GetRefresh(ctx, tokens.Hash(tok.RefreshToken), g.clock.Now())
	if err != nil {
		t.Fatal(err)
	}

	// Sealed at rest: the provider's refresh token is nowhere in the row.
	var raw []byte
	if err := rawDB(t, dbPath).QueryRowContext(ctx, `SELECT token FROM upstream_sessions WHERE grant_id = ?`, grant.ID).Scan(&raw); err != nil {
		t.Fatalf("upstream session row: %v", err)
	}
	calls.mu.Lock()
	issued := slices.Clone(calls.issued)
	calls.mu.Unlock()
	if len(issued) != 1 || len(raw) == 0 || bytes.Contains(raw, []byte(issued[0])) {
		t.Fatalf("provider issued %d refresh tokens; stored %d bytes; want one, stored sealed (not in clear)", len(issued), len(raw))
	}

	// Removed from admins at the provider: unseen until the recheck is due.
	alice.Groups = []string{"devs"}
	op.SetUser(t, alice)
	before := calls.n.Load()
	resp, tok := g.refresh(client.ClientID, tok.RefreshToken, nil)
	if resp.StatusCode != 200 || calls.n.Load() != before {
		t.Fatalf("refresh within the recheck period: %d, %d upstream calls; want 200 and none", resp.StatusCode, calls.n.Load()-before)
	}

	// Due: five refreshes of one token at once make one upstream refresh,
	// and every answer carries the provider's current groups.
	g.clock.Advance(2 * time.Hour)
	var wg sync.WaitGroup
	answers := make([]tokenResponse, 5)
	codes := make([]int, 5)
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, tr := g.refresh(client.ClientID, tok.RefreshToken, nil)
			codes[i], answers[i] = r.StatusCode, tr
		}()
	}
	wg.Wait()
	if n := calls.n.Load() - before; n != 1 {
		t.Fatalf("%d upstream refreshes for five concurrent refreshes of one family, want 1", n)
	}
	for i, tr := range answers {
		if codes[i] != 200 {
			t.Fatalf("concurrent refresh %d: %d %+v, want 200", i, codes[i], tr)
		}
		if got := groupsOf(tr.AccessToken); slices.Contains(got, "admins") || !slices.Contains(got, "devs") {
			t.Fatalf("groups after the recheck %v, want devs without admins", got)
		}
	}
	tok = answers[0]

	// Revoked at the provider: the next due recheck ends the family.
	op.RevokeGrants(t, "alice")
	g.clock.Advance(2 * time.Hour)
	resp, tr := g.refresh(client.ClientID, tok.RefreshToken, nil)
	if resp.StatusCode != 400 || tr.Error != "invalid_grant" {
		t.Fatalf("refresh after the provider revoked the grant: %d %+v, want 400 invalid_grant", resp.StatusCode, tr)
	}
	if got, err := st.GetGrant(ctx, grant.ID); err != nil || got.RevokedAt.IsZero() {
		t.Fatalf("grant after the provider ended the session: %+v, %v; want it revoked", got, err)
	}
	if r, _ := g.mcpInitialize(g.url, tok.AccessToken); r.StatusCode != 401 {
		t.Fatalf("access token of the ended family: %d, want 401", r.StatusCode)
	}
}

func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// RT-3 with the access rules: a user the provider takes out of the only
// group let in loses access at the first refresh after the recheck, and the
// family ends.
func TestRT3_RecheckAppliesAccessRules(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	g, tok := newRecheckGateway(t, ctx, func(c *mcpgateConfig) { c.Access.Groups = []string{"admins"} })
	g.alice.Groups = []string{"devs"}
	g.op.SetUser(t, g.alice)
	if resp, tr := g.refresh(g.client.ClientID, tok.RefreshToken, nil); resp.StatusCode != 200 {
		t.Fatalf("refresh within the recheck period: %d %+v, want 200 (the provider is not asked yet)", resp.StatusCode, tr)
	} else {
		tok = tr
	}
	g.clock.Advance(2 * time.Hour)
	resp, tr := g.refresh(g.client.ClientID, tok.RefreshToken, nil)
	if resp.StatusCode != 400 || tr.Error != "invalid_grant" {
		t.Fatalf("refresh after leaving the allowed group upstream: %d %+v, want 400 invalid_grant", resp.StatusCode, tr)
	}
	if r, _ := g.mcpInitialize(g.url, tok.AccessToken); r.StatusCode != 401 {
		t.Fatalf("access token of the ended family: %d, want 401", r.StatusCode)
	}
}

// RT-3 at a provider that issues refresh tokens only for offline_access
// (Okta, Entra ID, Auth0) and lists the scope in discovery: the connector
// asks for it, the provider's refresh token is kept with the grant, and a
// user the provider takes out of the only group let in loses access at
// the first refresh after the recheck.
func TestRT3_OfflineAccessBringsTheRecheck(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	g, tok := newRecheckGatewayAt(t, ctx, recheckProvider{
		options:   func(o *oidctest.Options) { o.RefreshTokens = oidctest.RefreshWithOfflineAccess },
		connector: func(c *oidc.Config) { c.OfflineAccess = oidc.OfflineAccessIfListed },
	}, func(c *mcpgateConfig) { c.Access.Groups = []string{"admins"} })
	g.calls.mu.Lock()
	issued := len(g.calls.issued)
	g.calls.mu.Unlock()
	if issued != 1 {
		t.Fatalf("the provider issued %d refresh tokens at login, want 1 (offline_access asked for)", issued)
	}
	if strings.Contains(g.logs.String(), "no refresh token") {
		t.Fatalf("a login that got a refresh token was logged as one without:\n%s", g.logs.String())
	}
	g.alice.Groups = []string{"devs"}
	g.op.SetUser(t, g.alice)
	g.clock.Advance(2 * time.Hour)
	resp, tr := g.refresh(g.client.ClientID, tok.RefreshToken, nil)
	if resp.StatusCode != 400 || tr.Error != "invalid_grant" {
		t.Fatalf("refresh after leaving the allowed group upstream: %d %+v, want 400 invalid_grant", resp.StatusCode, tr)
	}
	if r, _ := g.mcpInitialize(g.url, tok.AccessToken); r.StatusCode != 401 {
		t.Fatalf("access token of the ended family: %d, want 401", r.StatusCode)
	}
}

// RT-3 fails closed: a provider that gives no refresh token at login,
// even when asked for offline_access, cannot be rechecked, so the grant
// holds only until the recheck is due; its refresh then fails with
// invalid_grant (the user logs in again, with the provider deciding anew),
// rather than keeping the login's groups for the grant's life. The log
// says why, at the login and at the refusal.
func TestRT3_NoUpstreamRefreshTokenEndsTheGrantAtTheRecheck(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	g, tok := newRecheckGatewayAt(t, ctx, recheckProvider{
		options:   func(o *oidctest.Options) { o.RefreshTokens = oidctest.RefreshNever },
		connector: func(c *oidc.Config) { c.OfflineAccess = oidc.OfflineAccessIfListed },
	}, nil)
	if !strings.Contains(g.logs.String(), "the provider gave no refresh token at login") {
		t.Fatalf("no warning at a login without the provider's refresh token:\n%s", g.logs.String())
	}
	before := g.calls.n.Load()
	resp, tr := g.refresh(g.client.ClientID, tok.RefreshToken, nil)
	if resp.StatusCode != 200 || g.calls.n.Load() != before {
		t.Fatalf("refresh within the recheck period: %d %+v, %d upstream calls; want 200 and none", resp.StatusCode, tr, g.calls.n.Load()-before)
	}
	tok = tr
	_, grant, err := g.st.GetRefresh(ctx, tokens.Hash(tok.RefreshToken), g.clock.Now())
	if err != nil {
		t.Fatal(err)
	}

	g.clock.Advance(2 * time.Hour)
	resp, tr = g.refresh(g.client.ClientID, tok.RefreshToken, nil)
	if resp.StatusCode != 400 || tr.Error != "invalid_grant" {
		t.Fatalf("refresh once the recheck is due, with no upstream refresh token: %d %+v, want 400 invalid_grant", resp.StatusCode, tr)
	}
	if got, err := g.st.GetGrant(ctx, grant.ID); err != nil || got.RevokedAt.IsZero() {
		t.Fatalf("grant that could not be rechecked: %+v, %v; want it revoked", got, err)
	}
	if r, _ := g.mcpInitialize(g.url, tok.AccessToken); r.StatusCode != 401 {
		t.Fatalf("access token of the ended family: %d, want 401", r.StatusCode)
	}
	if logs := g.logs.String(); !strings.Contains(logs, "upstream session ended") || !strings.Contains(logs, "offline_access") {
		t.Fatalf("the log does not say the grant ended for want of an upstream refresh token:\n%s", logs)
	}
}

// lateStore, once late, stores an upstream session as if the recheck's
// 30-second deadline passed during the write: under a context that can
// end, the write fails with context.DeadlineExceeded and stores nothing,
// as the SQLite writer does with an operation whose caller gave up.
type lateStore struct {
	store.Store
	late *atomic.Bool
}

func (s lateStore) PutUpstreamSession(ctx context.Context, sess *store.UpstreamSession) error {
	if s.late.Load() && ctx.Done() != nil {
		return context.DeadlineExceeded
	}
	return s.Store.PutUpstreamSession(ctx, sess)
}

// RT-3: the provider's answer to a recheck is stored whatever time the
// recheck has left: the provider has rotated its refresh token by then,
// and a lost renewal would leave the store with the spent one, which the
// next recheck presents (a provider that detects reuse then ends the
// person's session). Fails before: the renewal was written under the
// recheck's deadline, and the refresh failed with the renewal lost.
func TestRT3_RenewalStoredPastTheRechecksDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	late := &atomic.Bool{}
	g, tok := newRecheckGateway(t, ctx, func(c *mcpgateConfig) { c.Store = lateStore{c.Store, late} })
	late.Store(true)
	_, grant, err := g.st.GetRefresh(ctx, tokens.Hash(tok.RefreshToken), g.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	before, err := g.st.GetUpstreamSession(ctx, grant.ID)
	if err != nil {
		t.Fatal(err)
	}
	g.clock.Advance(2 * time.Hour)
	resp, tr := g.refresh(g.client.ClientID, tok.RefreshToken, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("refresh with the recheck due: %d %+v, want 200", resp.StatusCode, tr)
	}
	after, err := g.st.GetUpstreamSession(ctx, grant.ID)
	if err != nil || !after.CheckedAt.After(before.CheckedAt) || bytes.Equal(after.Token, before.Token) {
		t.Fatalf("upstream session after the recheck: %v, checked %v (before %v), token changed %v; want the renewal stored",
			err, after.CheckedAt, before.CheckedAt, !bytes.Equal(after.Token, before.Token))
	}
}
