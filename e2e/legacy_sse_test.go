package e2e

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate"
)

// A legacy HTTP+SSE MCP server (protocol 2024-11-05, the go-sdk's
// SSEHandler) behind the gateway (upstream_transport: sse): the go-sdk
// client, which speaks only streamable HTTP to it, goes through the whole
// OAuth flow and calls a tool that returns the X-Forwarded-User its SSE
// connection was opened with. Every request the upstream gets carries the
// verified user and a signed identity token, never the client's token or
// the identity headers it forged.
func TestLegacySSEUpstreamThroughGateway(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	type seen struct{ method, user, auth, token string }
	var (
		mu   sync.Mutex
		reqs []seen
	)
	legacy := mcp.NewSSEHandler(func(r *http.Request) *mcp.Server {
		// A legacy server learns its user when the connection opens.
		opener := r.Header.Get("X-Forwarded-User")
		s := mcp.NewServer(&mcp.Implementation{Name: "legacy-sse", Version: "1"}, nil)
		mcp.AddTool(s, &mcp.Tool{Name: "who"}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: opener}}}, nil, nil
		})
		return s
	}, nil)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		reqs = append(reqs, seen{r.Method, r.Header.Get("X-Forwarded-User"), r.Header.Get("Authorization"), r.Header.Get("X-Mcpgate-Identity")})
		mu.Unlock()
		legacy.ServeHTTP(w, r)
	}))
	t.Cleanup(up.Close) // after the gateway's cleanup, which ends its SSE connection to up

	var logs safeBuffer
	srv := startGateway(t, ctx, mcpgate.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Resources: []mcpgate.Resource{{Path: "/mcp", Upstream: up.URL + "/sse", UpstreamTransport: "sse", IdentityToken: true}}})

	h, _ := oauthClient(t)
	client := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil)
	sess, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: srv.URL + "/mcp", OAuthHandler: h,
		HTTPClient: &http.Client{Transport: spoof{http.DefaultTransport}}}, nil)
	if err != nil {
		t.Fatalf("connect through the gateway: %v\n%s", err, logs.String())
	}
	defer sess.Close()
	if ir := sess.InitializeResult(); ir == nil || ir.ServerInfo == nil || ir.ServerInfo.Name != "legacy-sse" {
		t.Fatalf("initialize result: %+v, want the server legacy-sse", ir)
	}
	res, err := sess.CallTool(ctx, &mcp.CallToolParams{Name: "who"})
	if err != nil || res.IsError {
		t.Fatalf("call: %v %+v, want a result\n%s", err, res, logs.String())
	}
	if text := res.Content[0].(*mcp.TextContent).Text; text != "local:alice" {
		t.Fatalf("the legacy server's connection was opened for %q, want local:alice", text)
	}

	mu.Lock()
	defer mu.Unlock()
	var gets, posts int
	for _, s := range reqs {
		if s.user != "local:alice" || s.auth != "" || s.token == "" {
			t.Errorf("the upstream saw %s with user %q, authorization %q, identity token %q; want local:alice, no Authorization (PASS-2) and an identity token", s.method, s.user, s.auth, s.token)
		}
		switch s.method {
		case http.MethodGet:
			gets++
		case http.MethodPost:
			posts++
		}
	}
	// One SSE connection; initialize, initialized, then at least the call.
	if gets != 1 || posts < 3 {
		t.Fatalf("%d GETs, %d POSTs; want one SSE connection (GET) and at least 3 POSTs", gets, posts)
	}
}
