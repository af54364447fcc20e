package mcpgate_test

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/oidctest"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/upstream/oidc"
)

// watchedStore passes every call to inner and, while armed, records its
// name. It implements each method itself rather than embedding the
// interface, so that a method added to store.Store cannot slip past the
// watch: this file stops compiling until it is listed here.
type watchedStore struct {
	inner store.Store
	armed atomic.Bool
	mu    sync.Mutex
	calls []string
	// background counts the revocation follower's calls, which are no
	// request's.
	background atomic.Int64
	// flowAppends counts the flow recorder's writes, made from its own
	// goroutine in batches, never on a request's path.
	flowAppends atomic.Int64
}

var _ store.Store = (*watchedStore)(nil)

func (s *watchedStore) saw(method string) {
	if s.armed.Load() {
		s.mu.Lock()
		s.calls = append(s.calls, method)
		s.mu.Unlock()
	}
}

// seen returns the calls recorded while armed.
func (s *watchedStore) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

func (s *watchedStore) CreateClient(ctx context.Context, c *store.Client) error {
	s.saw("CreateClient")
	return s.inner.CreateClient(ctx, c)
}
func (s *watchedStore) GetClient(ctx context.Context, id string) (*store.Client, error) {
	s.saw("GetClient")
	return s.inner.GetClient(ctx, id)
}
func (s *watchedStore) TouchClient(ctx context.Context, id string, now time.Time) error {
	s.saw("TouchClient")
	return s.inner.TouchClient(ctx, id, now)
}
func (s *watchedStore) DeleteUnusedClients(ctx context.Context, unusedSince, now time.Time, limit int) (int, error) {
	s.saw("DeleteUnusedClients")
	return s.inner.DeleteUnusedClients(ctx, unusedSince, now, limit)
}
func (s *watchedStore) CreateAuthRequest(ctx context.Context, r *store.AuthRequest) error {
	s.saw("CreateAuthRequest")
	return s.inner.CreateAuthRequest(ctx, r)
}
func (s *watchedStore) GetAuthRequest(ctx context.Context, id string, now time.Time) (*store.AuthRequest, error) {
	s.saw("GetAuthRequest")
	return s.inner.GetAuthRequest(ctx, id, now)
}
func (s *watchedStore) AttachUpstreamState(ctx context.Context, id, connector string, stateHash []byte, now time.Time) error {
	s.saw("AttachUpstreamState")
	return s.inner.AttachUpstreamState(ctx, id, connector, stateHash, now)
}
func (s *watchedStore) TakeAuthRequestByUpstreamState(ctx context.Context, stateHash []byte, now time.Time) (*store.AuthRequest, error) {
	s.saw("TakeAuthRequestByUpstreamState")
	return s.inner.TakeAuthRequestByUpstreamState(ctx, stateHash, now)
}
func (s *watchedStore) GetAuthRequestByUpstreamState(ctx context.Context, stateHash []byte, now time.Time) (*store.AuthRequest, error) {
	s.saw("GetAuthRequestByUpstreamState")
	return s.inner.GetAuthRequestByUpstreamState(ctx, stateHash, now)
}
func (s *watchedStore) ReplaceUpstreamState(ctx context.Context, id, connector string, oldHash, newHash []byte, now time.Time) error {
	s.saw("ReplaceUpstreamState")
	return s.inner.ReplaceUpstreamState(ctx, id, connector, oldHash, newHash, now)
}
func (s *watchedStore) DeleteAuthRequest(ctx context.Context, id string) error {
	s.saw("DeleteAuthRequest")
	return s.inner.DeleteAuthRequest(ctx, id)
}
func (s *watchedStore) PutConsent(ctx context.Context, c *store.Consent) error {
	s.saw("PutConsent")
	return s.inner.PutConsent(ctx, c)
}
func (s *watchedStore) GetConsent(ctx context.Context, userID, clientID, resource string) (*store.Consent, error) {
	s.saw("GetConsent")
	return s.inner.GetConsent(ctx, userID, clientID, resource)
}
func (s *watchedStore) DeleteConsent(ctx context.Context, userID, clientID string) error {
	s.saw("DeleteConsent")
	return s.inner.DeleteConsent(ctx, userID, clientID)
}
func (s *watchedStore) CreateCode(ctx context.Context, c *store.Code) error {
	s.saw("CreateCode")
	return s.inner.CreateCode(ctx, c)
}
func (s *watchedStore) ConsumeCode(ctx context.Context, hash []byte, challenge string, now time.Time) (*store.Code, error) {
	s.saw("ConsumeCode")
	return s.inner.ConsumeCode(ctx, hash, challenge, now)
}
func (s *watchedStore) CreateGrant(ctx context.Context, g *store.Grant, rt *store.RefreshToken) error {
	s.saw("CreateGrant")
	return s.inner.CreateGrant(ctx, g, rt)
}
func (s *watchedStore) GetGrant(ctx context.Context, id string) (*store.Grant, error) {
	s.saw("GetGrant")
	return s.inner.GetGrant(ctx, id)
}
func (s *watchedStore) RotateRefresh(ctx context.Context, oldHash []byte, next *store.RefreshToken, successor []byte, now time.Time, grace time.Duration) (*store.Grant, *store.RefreshToken, error) {
	s.saw("RotateRefresh")
	return s.inner.RotateRefresh(ctx, oldHash, next, successor, now, grace)
}
func (s *watchedStore) GetRefresh(ctx context.Context, hash []byte, now time.Time) (*store.RefreshToken, *store.Grant, error) {
	s.saw("GetRefresh")
	return s.inner.GetRefresh(ctx, hash, now)
}
func (s *watchedStore) RevokeGrant(ctx context.Context, id string, now time.Time) error {
	s.saw("RevokeGrant")
	return s.inner.RevokeGrant(ctx, id, now)
}

// RevokedGrantsSince is also the revocation follower's, every half second
// in the background (SEC-80): a call outside any request's context (which
// net/http marks with its server) is that one, not a request's.
func (s *watchedStore) RevokedGrantsSince(ctx context.Context, since time.Time) ([]string, error) {
	if ctx.Value(http.ServerContextKey) == nil {
		s.background.Add(1)
		return s.inner.RevokedGrantsSince(ctx, since)
	}
	s.saw("RevokedGrantsSince")
	return s.inner.RevokedGrantsSince(ctx, since)
}
func (s *watchedStore) PutUpstreamSession(ctx context.Context, u *store.UpstreamSession) error {
	s.saw("PutUpstreamSession")
	return s.inner.PutUpstreamSession(ctx, u)
}
func (s *watchedStore) GetUpstreamSession(ctx context.Context, grantID string) (*store.UpstreamSession, error) {
	s.saw("GetUpstreamSession")
	return s.inner.GetUpstreamSession(ctx, grantID)
}
func (s *watchedStore) ClaimUpstreamRecheck(ctx context.Context, grantID string, checkedAt, now, until time.Time) (bool, error) {
	s.saw("ClaimUpstreamRecheck")
	return s.inner.ClaimUpstreamRecheck(ctx, grantID, checkedAt, now, until)
}
func (s *watchedStore) CreateSession(ctx context.Context, sess *store.Session) error {
	s.saw("CreateSession")
	return s.inner.CreateSession(ctx, sess)
}
func (s *watchedStore) GetSession(ctx context.Context, hash []byte, now time.Time) (*store.Session, error) {
	s.saw("GetSession")
	return s.inner.GetSession(ctx, hash, now)
}
func (s *watchedStore) DeleteSession(ctx context.Context, hash []byte) error {
	s.saw("DeleteSession")
	return s.inner.DeleteSession(ctx, hash)
}
func (s *watchedStore) PutMCPSession(ctx context.Context, m *store.MCPSession, now time.Time) error {
	s.saw("PutMCPSession")
	return s.inner.PutMCPSession(ctx, m, now)
}
func (s *watchedStore) GetMCPSession(ctx context.Context, resource string, hash []byte, now time.Time) (*store.MCPSession, error) {
	s.saw("GetMCPSession")
	return s.inner.GetMCPSession(ctx, resource, hash, now)
}
func (s *watchedStore) DeleteMCPSession(ctx context.Context, resource string, hash []byte) error {
	s.saw("DeleteMCPSession")
	return s.inner.DeleteMCPSession(ctx, resource, hash)
}
func (s *watchedStore) PutLocalUser(ctx context.Context, u *store.LocalUser) error {
	s.saw("PutLocalUser")
	return s.inner.PutLocalUser(ctx, u)
}
func (s *watchedStore) CreateLocalUser(ctx context.Context, u *store.LocalUser) error {
	s.saw("CreateLocalUser")
	return s.inner.CreateLocalUser(ctx, u)
}
func (s *watchedStore) GetLocalUser(ctx context.Context, name string) (*store.LocalUser, error) {
	s.saw("GetLocalUser")
	return s.inner.GetLocalUser(ctx, name)
}
func (s *watchedStore) CountLocalUsers(ctx context.Context) (int, error) {
	s.saw("CountLocalUsers")
	return s.inner.CountLocalUsers(ctx)
}
func (s *watchedStore) ListLocalUsers(ctx context.Context) ([]*store.LocalUser, error) {
	s.saw("ListLocalUsers")
	return s.inner.ListLocalUsers(ctx)
}
func (s *watchedStore) EnableLocalUser(ctx context.Context, name string) error {
	s.saw("EnableLocalUser")
	return s.inner.EnableLocalUser(ctx, name)
}

func (s *watchedStore) DisableLocalUser(ctx context.Context, name string, now time.Time) ([]string, error) {
	s.saw("DisableLocalUser")
	return s.inner.DisableLocalUser(ctx, name, now)
}
func (s *watchedStore) ListClients(ctx context.Context, limit int) ([]*store.Client, error) {
	s.saw("ListClients")
	return s.inner.ListClients(ctx, limit)
}
func (s *watchedStore) DeleteClient(ctx context.Context, id string, now time.Time) ([]string, error) {
	s.saw("DeleteClient")
	return s.inner.DeleteClient(ctx, id, now)
}
func (s *watchedStore) ListGrants(ctx context.Context, q store.GrantQuery) ([]*store.Grant, error) {
	s.saw("ListGrants")
	return s.inner.ListGrants(ctx, q)
}
func (s *watchedStore) CreateSigningKey(ctx context.Context, k *store.SigningKey) error {
	s.saw("CreateSigningKey")
	return s.inner.CreateSigningKey(ctx, k)
}
func (s *watchedStore) ListSigningKeys(ctx context.Context) ([]*store.SigningKey, error) {
	s.saw("ListSigningKeys")
	return s.inner.ListSigningKeys(ctx)
}
func (s *watchedStore) PutMetaOnce(ctx context.Context, name string, value []byte) ([]byte, error) {
	s.saw("PutMetaOnce")
	return s.inner.PutMetaOnce(ctx, name, value)
}
func (s *watchedStore) Ping(ctx context.Context) error {
	s.saw("Ping")
	return s.inner.Ping(ctx)
}
func (s *watchedStore) AddRateHit(ctx context.Context, key string, window, expires time.Time) (int, error) {
	s.saw("AddRateHit")
	return s.inner.AddRateHit(ctx, key, window, expires)
}
func (s *watchedStore) DeleteExpired(ctx context.Context, now, grantsBefore time.Time, limit int) (int, error) {
	s.saw("DeleteExpired")
	return s.inner.DeleteExpired(ctx, now, grantsBefore, limit)
}
func (s *watchedStore) DeleteSuccessors(ctx context.Context, rotatedBefore time.Time, limit int) (int, error) {
	s.saw("DeleteSuccessors")
	return s.inner.DeleteSuccessors(ctx, rotatedBefore, limit)
}
func (s *watchedStore) AppendFlowEvents(ctx context.Context, events []store.FlowEvent) error {
	s.flowAppends.Add(1)
	return s.inner.AppendFlowEvents(ctx, events)
}
func (s *watchedStore) ListFlowEvents(ctx context.Context, f store.FlowFilter) ([]store.FlowEvent, error) {
	s.saw("ListFlowEvents")
	return s.inner.ListFlowEvents(ctx, f)
}
func (s *watchedStore) DeleteFlowEvents(ctx context.Context, before time.Time, keep, limit int) (int, error) {
	s.saw("DeleteFlowEvents")
	return s.inner.DeleteFlowEvents(ctx, before, keep, limit)
}
func (s *watchedStore) Close() error {
	s.saw("Close")
	return s.inner.Close()
}

// TOK-2: the token check on /mcp is made from memory: the signature
// against the keys loaded at start, revocation against the in-memory
// denylist, the caller (their groups included) from the token's claims.
// Once a local account and an OpenID provider's user with groups have
// their tokens, the store is watched: MCP sessions with both tokens (the
// initialize, the event stream, tool calls, a tool policy deciding on the
// groups, the session's end) and refused tokens make no store call at all.
// A refresh, made while watched, is seen: the watch is wired in.
func TestTOK2_MCPNeverTouchesTheStore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ln, base := loopback(t)
	mira := oidctest.User{Sub: "u-31337", Email: "mira@corp.example", EmailVerified: true, Username: "mira", Name: "Mira Mendes",
		Groups: []string{"devs", "sre"}, Password: "mira-pw"}
	op := oidctest.Start(t, oidctest.Options{
		Clients: []oidctest.Client{{ID: "mcpgate", Secret: "op-secret", RedirectURIs: []string{base + "/callback/oidc"}}},
		Users:   []oidctest.User{mira},
	})
	con, err := oidc.New(ctx, oidc.Config{Issuer: op.Issuer(), ClientID: "mcpgate", ClientSecret: "op-secret"})
	if err != nil {
		t.Fatal(err)
	}
	var ws *watchedStore
	g := newGatewayOn(t, ln, func(c *mcpgateConfig) {
		ws = &watchedStore{inner: c.Store}
		c.Store = ws
		c.Connectors = append(c.Connectors, con)
		// echo is for sre only: the policy decides on the token's groups.
		c.Resources = []mcpgate.Resource{{Path: "/mcp", ToolPolicy: &mcpgate.ToolPolicy{Default: "deny", Rules: []mcpgate.ToolRule{
			{Allow: []string{"whoami"}},
			{Allow: []string{"echo"}, Groups: []string{"sre"}},
		}}}}
	})
	if err := g.local.SetUser(ctx, testUser, hashed(testPassword), "admins"); err != nil {
		t.Fatal(err)
	}
	client := g.register(nil)
	login := func(connector string) tokenResponse {
		t.Helper()
		a := g.newAuth(client.ClientID)
		var b *browser.Browser
		var code string
		if connector == "local" {
			b = browser.New(testUser, testPassword)
			b.Fields = map[string]string{"connector": connector}
			if code, _, _, err = b.Authorize(ctx, a.URL(), a.Redirect); err != nil {
				t.Fatalf("local: %v", err)
			}
		} else {
			b = browser.New("", "")
			b.Fields = map[string]string{"connector": connector}
			toProvider, err := b.Walk(ctx, a.URL(), op.Issuer()+"/")
			if err != nil {
				t.Fatalf("%s: authorize: %v", connector, err)
			}
			done, err := b.Walk(ctx, op.Login(t, b.Client, toProvider.String(), mira.Sub).String(), a.Redirect)
			if err != nil {
				t.Fatalf("%s: callback: %v", connector, err)
			}
			code = done.Query().Get("code")
		}
		resp, tok := g.exchange(a, code)
		if resp.StatusCode != 200 || tok.AccessToken == "" {
			t.Fatalf("%s: token: %d %+v, want 200 with an access token", connector, resp.StatusCode, tok)
		}
		return tok
	}
	users := []struct {
		tok     tokenResponse
		want    identity.User
		mayEcho bool
	}{
		{login("local"), identity.User{ID: "local:alice", Upstream: "local", Username: testUser, Name: testUser, Groups: []string{"admins"}}, false},
		{login("oidc"), identity.User{ID: "oidc:u-31337", Upstream: "oidc", Username: "mira", Name: "Mira Mendes", Email: "mira@corp.example",
			EmailVerified: true, Groups: []string{"devs", "sre"}}, true},
	}

	ws.armed.Store(true)
	const calls = 10
	for _, u := range users {
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil).Connect(ctx, &mcp.StreamableClientTransport{
			Endpoint: g.url + "/mcp", HTTPClient: &http.Client{Transport: bearer(u.tok.AccessToken)},
		}, nil)
		if err != nil {
			t.Fatalf("%s: connect: %v", u.want.ID, err)
		}
		// Before the server's own cleanup, which waits for open streams.
		t.Cleanup(func() { cs.Close() })
		for range calls {
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "whoami"})
			if err != nil || res.IsError {
				t.Fatalf("%s: whoami: %v %+v", u.want.ID, err, res)
			}
			var who struct {
				User identity.User `json:"user"`
			}
			raw, _ := json.Marshal(res.StructuredContent)
			if err := json.Unmarshal(raw, &who); err != nil || !reflect.DeepEqual(who.User, u.want) {
				t.Fatalf("whoami user %+v (%v); want %+v", who.User, err, u.want)
			}
			res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hi"}})
			if echoed := err == nil && !res.IsError; echoed != u.mayEcho {
				t.Fatalf("%s: echo answered %v (%v %+v); the policy allows it to sre only", u.want.ID, echoed, err, res)
			}
		}
		if err := cs.Close(); err != nil {
			t.Fatalf("%s: closing the session: %v", u.want.ID, err)
		}
	}
	// One character of the signature changed, away from its end, whose
	// last character carries bits that decoding ignores.
	tok := []byte(users[1].tok.AccessToken)
	i := len(tok) - 10
	tok[i] = map[bool]byte{true: 'B', false: 'A'}[tok[i] == 'A']
	tampered := string(tok)
	for _, bad := range []string{"not-a-token", tampered} {
		if resp, _ := g.mcpInitialize(g.url, bad); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("a bad token: %d, want 401", resp.StatusCode)
		}
	}
	if seen := ws.seen(); len(seen) != 0 {
		t.Fatalf("MCP requests called the store: %v; the token check must be made from memory", seen)
	}

	if resp, _ := g.refresh(client.ClientID, users[1].tok.RefreshToken, nil); resp.StatusCode != 200 {
		t.Fatalf("refresh: %d, want 200", resp.StatusCode)
	}
	if len(ws.seen()) == 0 {
		t.Fatal("a refresh made no store call the watch saw: the watch is not in the gateway's path")
	}
	// SEC-80: what keeps the denylist current runs beside the requests.
	deadline := time.Now().Add(30 * time.Second)
	for ws.background.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("SEC-80: no background reload of the revoked grants within 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
