package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate"
)

// startTSServer runs e2e/testdata/tsserver.mjs, a real TypeScript SDK
// server built with createMcpExpressApp, and returns its MCP endpoint.
func startTSServer(t *testing.T, ctx context.Context) string {
	t.Helper()
	node, sdk := node22(t), tssdkDir(t)
	script, err := os.ReadFile(filepath.Join("testdata", "tsserver.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(sdk, "e2e-run-") // bare imports resolve from the SDK's node_modules
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "tsserver.mjs")
	if err := os.WriteFile(path, script, 0o644); err != nil {
		t.Fatal(err)
	}
	p := startNode(t, ctx, node, dir, nil, path)
	port := p.waitFor(t, ctx, p.stdout, regexp.MustCompile(`PORT (\d+)`))[1]
	return "http://127.0.0.1:" + port + "/mcp"
}

// charsetSmuggler labels the client's POSTs as UTF-7 once on is set.
type charsetSmuggler struct {
	base http.RoundTripper
	on   atomic.Bool
}

func (s *charsetSmuggler) RoundTrip(r *http.Request) (*http.Response, error) {
	if s.on.Load() && r.Method == http.MethodPost {
		r = r.Clone(r.Context())
		r.Header.Set("Content-Type", "application/json; charset=utf-7")
	}
	return s.base.RoundTrip(r)
}

// SEC-133: a denied tool's name hidden in UTF-7 in an allowed call's
// arguments, in a request labelled charset=utf-7, never reaches a real
// TypeScript SDK server built as its docs recommend (createMcpExpressApp:
// express.json decodes any "utf-*" charset). The gateway reads the body
// as UTF-8 JSON, a call of echo; the server would read
// {"name":"echo",…,"name":"delete"} and run delete. The gateway refuses
// the request with 415. Fails before this change: the call answered
// "DELETE RAN" and the audit said echo.
func TestSEC133_CharsetSmugglingRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	up := startTSServer(t, ctx)
	srv := startGateway(t, ctx, mcpgate.Config{Resources: []mcpgate.Resource{{Path: "/mcp", Upstream: up,
		ToolPolicy: &mcpgate.ToolPolicy{Rules: []mcpgate.ToolRule{{Deny: []string{"delete"}}}}}}})

	h, _ := oauthClient(t)
	smuggler := &charsetSmuggler{base: http.DefaultTransport}
	client := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil)
	sess, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: srv.URL + "/mcp", OAuthHandler: h,
		HTTPClient: &http.Client{Transport: smuggler}}, nil)
	if err != nil {
		t.Fatalf("connect through the gateway: %v", err)
	}
	defer sess.Close()
	text := func(res *mcp.CallToolResult) string {
		if res == nil || len(res.Content) == 0 {
			return ""
		}
		tc, _ := res.Content[0].(*mcp.TextContent)
		if tc == nil {
			return ""
		}
		return tc.Text
	}
	if res, err := sess.CallTool(ctx, &mcp.CallToolParams{Name: "echo"}); err != nil || text(res) != "ECHO RAN" {
		t.Fatalf("echo through the gateway: %v %+v, want ECHO RAN", err, res)
	}
	if res, err := sess.CallTool(ctx, &mcp.CallToolParams{Name: "delete"}); err == nil && !res.IsError && strings.Contains(text(res), "RAN") {
		t.Fatalf("delete, denied by the policy, ran: %+v", res)
	}

	// UTF-7 for `"},"name":"delete","y":{"z":"`: the arguments' object
	// closes, and params gets a second name.
	const hidden = `+ACI-+AH0-,+ACI-name+ACI-:+ACI-delete+ACI-,+ACI-y+ACI-:+AHs-+ACI-z+ACI-:+ACI-`
	smuggler.on.Store(true)
	res, err := sess.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"x": hidden}})
	if strings.Contains(text(res), "DELETE RAN") {
		t.Fatalf("SEC-133: the denied tool delete ran through the gateway, hidden in UTF-7 in a call of echo")
	}
	if err == nil || !strings.Contains(err.Error(), "Unsupported Media Type") {
		t.Errorf("SEC-133: the call labelled charset=utf-7: %v %+v, want it refused with 415", err, res)
	}
}
