package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// spoof adds a forged identity header to every request of the client.
type spoof struct{ base http.RoundTripper }

func (s spoof) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-User", "local:admin")
	r.Header.Set("X-Forwarded-Email", "admin@evil.example")
	return s.base.RoundTrip(r)
}

// The binary in front of an upstream go-sdk MCP server (--upstream): the
// go-sdk client goes through the whole OAuth flow at the gateway, its
// session id passes through, the upstream sees the verified identity in
// headers and never the client's token (PASS-2), and a client-sent
// X-Forwarded-User never reaches it.
func TestBinaryUpstreamProxy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	type seen struct{ user, email, auth string }
	got := make(chan seen, 16)
	server := mcp.NewServer(&mcp.Implementation{Name: "upstream", Version: "1"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "who"}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		h := req.Extra.Header
		got <- seen{h.Get("X-Forwarded-User"), h.Get("X-Forwarded-Email"), h.Get("Authorization")}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: h.Get("X-Forwarded-User")}}}, nil, nil
	})
	up := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil))
	defer up.Close()

	port := freePort(t)
	p := startBinary(t, port, "--data-dir", t.TempDir(), "--local-user", user+":"+password, "--upstream", up.URL+"/mcp")
	h, _ := oauthClient(t)
	client := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil)
	sess, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: p.base + "/mcp", OAuthHandler: h,
		HTTPClient: &http.Client{Transport: spoof{http.DefaultTransport}}}, nil)
	if err != nil {
		t.Fatalf("connect through the gateway: %v\n%s", err, p.Stderr())
	}
	if sess.ID() == "" {
		t.Fatal("the upstream's session id did not pass through, want the client to hold it")
	}
	res, err := sess.CallTool(ctx, &mcp.CallToolParams{Name: "who"})
	if err != nil || res.IsError {
		t.Fatalf("call: %v %+v, want a result", err, res)
	}
	s := <-got
	if s.user != "local:alice" || s.email != "" || s.auth != "" {
		t.Fatalf("the upstream saw user %q, email %q, authorization %q; want local:alice, no spoofed email and no Authorization (PASS-2)", s.user, s.email, s.auth)
	}
	if text := res.Content[0].(*mcp.TextContent).Text; !strings.HasPrefix(text, "local:alice") {
		t.Fatalf("result %q, want it to start with local:alice", text)
	}
	sess.Close() // ends the client's GET stream, so that shutdown need not wait for it
	p.stop(t)
}

// A stateless upstream (the go-sdk's Stateless mode: no Mcp-Session-Id,
// GET answers 405) through the binary, called by the go-sdk client with its
// default protocol version (2026-07-28) after the OAuth flow: calls work,
// no session id is made up on the way, and the upstream sees the caller.
func TestBinaryUpstreamStateless(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	server := mcp.NewServer(&mcp.Implementation{Name: "stateless", Version: "1"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "who"}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: req.Extra.Header.Get("X-Forwarded-User")}}}, nil, nil
	})
	up := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, &mcp.StreamableHTTPOptions{Stateless: true}))
	defer up.Close()

	port := freePort(t)
	p := startBinary(t, port, "--data-dir", t.TempDir(), "--local-user", user+":"+password, "--upstream", up.URL+"/mcp")
	sess := connectWithOAuth(t, ctx, p)
	defer sess.Close()
	if sess.ID() != "" {
		t.Fatalf("a stateless upstream got a session id %q through the gateway", sess.ID())
	}
	if ir := sess.InitializeResult(); ir == nil || ir.ProtocolVersion != "2026-07-28" {
		t.Fatalf("want the stateless 2026-07-28 protocol, got %+v", ir)
	}
	for range 3 {
		res, err := sess.CallTool(ctx, &mcp.CallToolParams{Name: "who"})
		if err != nil || res.IsError || res.Content[0].(*mcp.TextContent).Text != "local:alice" {
			t.Fatalf("call: %v %+v, want the text local:alice\n%s", err, res, p.Stderr())
		}
	}
	p.stop(t)
}
