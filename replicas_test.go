package mcpgate_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/mcpgate/mcpgate/internal/pgtest"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/postgres"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

// balancer sends each request to the replica it points at, as a load
// balancer in front of the replicas would: the Host stays the one the
// client asked for, the gateway's public name.
type balancer struct {
	token  string
	target atomic.Pointer[string] // host:port of a replica
}

func (b *balancer) to(g *gw) { u, _ := url.Parse(g.url); b.target.Store(&u.Host) }

func (b *balancer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Host = r.URL.Host
	r.URL.Host = *b.target.Load()
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

// sharedStores opens two stores on one database, as two replicas do.
func sharedStores(t *testing.T, backend string) (store.Store, store.Store) {
	t.Helper()
	var open func() (store.Store, error)
	switch backend {
	case "sqlite":
		file := filepath.Join(t.TempDir(), "mcpgate.db")
		open = func() (store.Store, error) { return sqlite.Open(t.Context(), file) }
	case "postgres":
		dsn := pgtest.Start(t)
		open = func() (store.Store, error) { return postgres.Open(t.Context(), dsn) }
	}
	var out [2]store.Store
	for i := range out {
		s, err := open()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		out[i] = s
	}
	return out[0], out[1]
}

// SESS-3 across replicas: two gateways on one database, in front of one
// streamable HTTP server. A session opened through A is used through B;
// another user's token with its id is refused (404) by both; the session
// ended through B is refused through A afterwards and its binding is gone
// from the store. On the replica that opened it, the session's requests
// read nothing from the store.
func TestSESS3_SessionsAcrossReplicas(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) { testSessionsAcrossReplicas(t, backend) })
	}
}

func testSessionsAcrossReplicas(t *testing.T, backend string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	server := mcp.NewServer(&mcp.Implementation{Name: "up", Version: "1"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "echo"}, func(_ context.Context, _ *mcp.CallToolRequest, in struct {
		Text string `json:"text"`
	}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
	})
	up := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil))
	t.Cleanup(up.Close) // after the sessions close: it waits for their streams

	stA, stB := sharedStores(t, backend)
	watch := &watchedStore{inner: stA}
	replica := func(st store.Store) gwOption {
		return func(c *mcpgateConfig) {
			c.Store = st
			c.Resources = []mcpgate.Resource{{Path: "/mcp", Upstream: up.URL + "/mcp"}}
		}
	}
	a := newGateway(t, replica(watch))
	b := newGateway(t, replica(stB))
	if err := a.local.SetUser(ctx, "bob", hashed(testPassword)); err != nil {
		t.Fatal(err)
	}
	_, _, alice := a.fullFlow()
	client := a.register(nil)
	auth := a.newAuth(client.ClientID)
	code, _, _, err := browser.New("bob", testPassword).Authorize(ctx, auth.URL(), auth.Redirect)
	if err != nil {
		t.Fatalf("bob: authorize: %v", err)
	}
	resp, bob := a.exchange(auth, code)
	if resp.StatusCode != 200 {
		t.Fatalf("bob: token: %d", resp.StatusCode)
	}

	lb := &balancer{token: alice.AccessToken}
	lb.to(a)
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil).Connect(ctx,
		&mcp.StreamableClientTransport{Endpoint: a.url + "/mcp", HTTPClient: &http.Client{Transport: lb}}, nil)
	if err != nil {
		t.Fatalf("initialize through A: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	sid := cs.ID()
	echo := func(through string) {
		t.Helper()
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": through}})
		if err != nil || res.IsError || len(res.Content) != 1 || res.Content[0].(*mcp.TextContent).Text != through {
			t.Fatalf("echo through %s: %+v, %v; want it echoed", through, res, err)
		}
	}
	watch.armed.Store(true)
	for range 5 {
		echo("A")
	}
	watch.armed.Store(false)
	if seen := watch.seen(); len(seen) != 0 {
		t.Errorf("the session's requests on the replica that opened it called the store: %v", seen)
	}

	lb.to(b)
	for range 3 {
		echo("B")
	}

	raw := func(g *gw, method, token string) (int, string) {
		t.Helper()
		var body io.Reader
		if method == http.MethodPost {
			body = strings.NewReader(`{"jsonrpc":"2.0","id":9,"method":"tools/list"}`)
		}
		req, _ := http.NewRequestWithContext(ctx, method, g.url+"/mcp", body)
		req.Host = strings.TrimPrefix(a.url, "http://")
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
		req.Header.Set("Mcp-Session-Id", sid)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return resp.StatusCode, string(out)
	}
	for name, g := range map[string]*gw{"A": a, "B": b} {
		if status, body := raw(g, http.MethodPost, bob.AccessToken); status != http.StatusNotFound {
			t.Errorf("bob with alice's session through %s: %d %s; want 404", name, status, body)
		}
	}
	echo("B, after bob was refused")

	if status, body := raw(b, http.MethodDelete, alice.AccessToken); status >= 300 {
		t.Fatalf("DELETE through B: %d %s; want it ended", status, body)
	}
	if status, body := raw(a, http.MethodPost, alice.AccessToken); status != http.StatusNotFound {
		t.Errorf("the session ended through B, through A: %d %s; want 404", status, body)
	}
	h := sha256.Sum256([]byte(sid))
	for name, st := range map[string]store.Store{"A": stA, "B": stB} {
		if _, err := st.GetMCPSession(ctx, "/mcp", h[:], time.Now()); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the ended session's binding in %s's store: %v, want ErrNotFound", name, err)
		}
	}
}
