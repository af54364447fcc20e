package mcpgate_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// A local account's groups reach what uses groups: whoami at the embedded
// server shows them, a tool_policy group rule lets their holder call a tool
// that another user may not, and a proxied upstream gets them in
// X-Forwarded-Groups.
func TestLocalUserGroupsReachBackends(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var mu sync.Mutex
	var calls []string // "tool groups-header" of each call that reached the upstream
	server := mcp.NewServer(&mcp.Implementation{Name: "up", Version: "1"}, nil)
	for _, name := range []string{"deploy", "read"} {
		mcp.AddTool(server, &mcp.Tool{Name: name}, func(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			mu.Lock()
			calls = append(calls, name+" "+req.Extra.Header.Get("X-Forwarded-Groups"))
			mu.Unlock()
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "ok"}}}, nil, nil
		})
	}
	up := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil))
	t.Cleanup(up.Close) // after the sessions close: it waits for their streams
	g := newGateway(t, func(c *mcpgateConfig) {
		c.Resources = []mcpgate.Resource{{Path: "/mcp"}, {Path: "/up/mcp", Upstream: up.URL + "/mcp",
			ToolPolicy: &mcpgate.ToolPolicy{Default: "deny", Rules: []mcpgate.ToolRule{
				{Allow: []string{"deploy"}, Groups: []string{"admins"}},
				{Allow: []string{"read"}},
			}}}}
	})
	if err := g.local.SetUser(ctx, testUser, hashed(testPassword), "admins", "devs"); err != nil {
		t.Fatal(err)
	}
	if err := g.local.SetUser(ctx, "bob", hashed(testPassword), "devs"); err != nil {
		t.Fatal(err)
	}
	c := g.register(nil)
	connect := func(user, path string) *mcp.ClientSession {
		t.Helper()
		a := g.newAuth(c.ClientID)
		a.Resource = g.url + path
		code, _, _, err := browser.New(user, testPassword).Authorize(ctx, a.URL(), a.Redirect)
		if err != nil {
			t.Fatalf("%s: authorize: %v", user, err)
		}
		resp, tok := g.exchange(a, code)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: token for %s: %d, want 200", user, path, resp.StatusCode)
		}
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil).Connect(ctx, &mcp.StreamableClientTransport{
			Endpoint: g.url + path, HTTPClient: &http.Client{Transport: bearer(tok.AccessToken)},
		}, nil)
		if err != nil {
			t.Fatalf("%s: connect to %s: %v", user, path, err)
		}
		t.Cleanup(func() { cs.Close() })
		return cs
	}

	res, err := connect(testUser, "/mcp").CallTool(ctx, &mcp.CallToolParams{Name: "whoami"})
	if err != nil || res.IsError || len(res.Content) != 1 {
		t.Fatalf("whoami: %+v, %v; want an answer", res, err)
	}
	var who struct {
		User struct {
			ID     string   `json:"sub"`
			Groups []string `json:"groups"`
		} `json:"user"`
	}
	text := res.Content[0].(*mcp.TextContent).Text
	if err := json.Unmarshal([]byte(text), &who); err != nil || who.User.ID != "local:alice" || !slices.Equal(who.User.Groups, []string{"admins", "devs"}) {
		t.Errorf("whoami = %s (%v), want local:alice with the groups [admins devs]", text, err)
	}

	call := func(cs *mcp.ClientSession, tool string) bool {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool})
		return err == nil && !res.IsError
	}
	alice, bob := connect(testUser, "/up/mcp"), connect("bob", "/up/mcp")
	if !call(alice, "deploy") {
		t.Error("alice, in admins, was refused deploy, which the group rule allows")
	}
	if call(bob, "deploy") {
		t.Error("bob, in devs only, could call deploy, which only admins may")
	}
	if !call(bob, "read") {
		t.Error("bob was refused read, which everyone may call")
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"deploy admins,devs", "read devs"}; !slices.Equal(calls, want) {
		t.Errorf("calls at the upstream %q, want %q (deploy by alice only, each with X-Forwarded-Groups)", calls, want)
	}
}
