package mcpgate_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The demo server's tools: echo sends its text back; whoami outside the
// gateway, with no verified caller, is a tool error rather than an answer
// about nobody.
func TestDemoServerTools(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ct, st := mcp.NewInMemoryTransports()
	ss, err := mcpgate.DemoServer("test").Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()

	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range tools.Tools {
		names = append(names, tl.Name)
	}
	if len(names) != 2 || names[0] != "echo" || names[1] != "whoami" {
		t.Errorf("tools %q, want [echo whoami]", names)
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hello"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.IsError || len(res.Content) != 1 || res.Content[0].(*mcp.TextContent).Text != "hello" {
		t.Errorf("echo: %+v, want the text hello", res)
	}
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "whoami"})
	if err != nil {
		t.Fatal(err)
	}
	if !res.IsError || len(res.Content) != 1 || res.Content[0].(*mcp.TextContent).Text != "no verified caller" {
		t.Errorf("whoami without a caller: %+v, want the tool error \"no verified caller\"", res)
	}
}

// SEC-209: one user cannot make the gateway hold many times what they
// send: an initialize over 64 KiB is refused at every backend (the go-sdk
// server kept its params, decoded, for a day idle), the demo server takes
// requests of at most 64 KiB (the go-sdk allocates about 20 times a body
// while it decodes it), and its echo takes at most 4 KiB of text (its
// answer carried the text twice, escaped: 47 MB for a request of 4 MiB).
// Fails before: all were served.
func TestSEC209_OneUserHoldsNoMultipleOfWhatTheySend(t *testing.T) {
	const maxEcho = 4 << 10 // internal/backend/embedded MaxEcho
	// session opens a session of a person at g, and returns what posts to it.
	session := func(g *gw) (post func(body string) (*http.Response, []byte), initialize func(body string) (*http.Response, []byte)) {
		_, _, tok := g.fullFlow()
		var sid string
		send := func(body string) (*http.Response, []byte) {
			req, _ := http.NewRequest("POST", g.url+"/mcp", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			if sid != "" {
				req.Header.Set("Mcp-Session-Id", sid)
				req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
			}
			return g.do(req)
		}
		initialize = func(body string) (*http.Response, []byte) {
			sid = ""
			resp, b := send(body)
			if sid = resp.Header.Get("Mcp-Session-Id"); sid != "" {
				if resp, _ := send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`); resp.StatusCode != http.StatusAccepted {
					t.Fatalf("notifications/initialized: %d, want 202", resp.StatusCode)
				}
			}
			return resp, b
		}
		return send, initialize
	}
	initBody := func(pad int) string {
		return `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{"experimental":{"x":[` +
			strings.Repeat("0,", pad) + `0]}},"clientInfo":{"name":"t","version":"1"}}}`
	}

	// A go-sdk server of the library's user, without the demo's bound on bodies.
	_, initialize := session(newGateway(t, func(c *mcpgateConfig) { c.MCP = mcpgate.MCPHandler(mcpgate.DemoServer("test")) }))
	resp, body := initialize(initBody(40 << 10))
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Mcp-Session-Id") != "" || !strings.Contains(string(body), `"code":-32602`) {
		t.Errorf("an initialize of 80 KiB: %d, session %q, %.200s; want 400, invalid params, no session", resp.StatusCode, resp.Header.Get("Mcp-Session-Id"), body)
	}
	if resp, body := initialize(initBody(20 << 10)); resp.StatusCode != http.StatusOK || resp.Header.Get("Mcp-Session-Id") == "" {
		t.Fatalf("an initialize of 40 KiB: %d %.200s; want 200 and a session", resp.StatusCode, body)
	}

	// The demo server of mcpgate serve.
	post, initialize := session(newGateway(t))
	if resp, body := initialize(initBody(0)); resp.StatusCode != http.StatusOK {
		t.Fatalf("initialize: %d %.200s", resp.StatusCode, body)
	}
	echo := func(text string) string {
		_, body := post(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"` + text + `"}}}`)
		return string(body)
	}
	if body := echo(strings.Repeat("<", maxEcho+1)); !strings.Contains(body, `"isError":true`) || strings.Contains(body, `\u003c\u003c`) {
		t.Errorf("echo of 4 KiB and a byte: %.300s; want a tool error without the text", body)
	}
	if body := echo(strings.Repeat("a", maxEcho)); strings.Contains(body, `"isError":true`) || !strings.Contains(body, strings.Repeat("a", maxEcho)) {
		t.Errorf("echo of 4 KiB: %.300s; want the text back", body)
	}
	if resp, _ := post(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"` + strings.Repeat("a", 64<<10) + `"}}}`); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a request of 64 KiB to the demo server: %d, want 413", resp.StatusCode)
	}
}

// SEC-213: a request to a protected resource with more than 100 header
// fields is refused (431) before anything holds it: net/http bounds a
// head's bytes, not its fields, and 60 KB of short distinct fields parse
// into about 1 MiB, held (twice when proxied) while the answer takes.
// Fails before: served.
func TestSEC213_ManyHeaderFieldsRefused(t *testing.T) {
	g := newGateway(t)
	_, _, tok := g.fullFlow()
	fields := func(n int) []string {
		var h []string
		for i := range n {
			h = append(h, fmt.Sprintf("X-%d", i), "")
		}
		return h
	}
	if resp, body := g.mcpInitialize(g.url, tok.AccessToken, fields(150)...); resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("initialize with 150 more header fields: %d %.200s; want 431", resp.StatusCode, body)
	}
	if resp, body := g.mcpInitialize(g.url, tok.AccessToken, fields(50)...); resp.StatusCode != http.StatusOK {
		t.Errorf("initialize with 50 more header fields: %d %.200s; want 200", resp.StatusCode, body)
	}
}
