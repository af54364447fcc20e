package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The binary with rate_limits in its file: alice's third call of a tool
// limited per user gets the gateway's JSON-RPC error and never reaches the
// upstream; bob's calls are his own; the audit log says rate_limited
// (SEC-100, SEC-101). A bad entry stops the binary with its index.
func TestBinaryRateLimits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ran := make(chan string, 16)
	server := mcp.NewServer(&mcp.Implementation{Name: "search", Version: "1"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "search_web"}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
		ran <- "search_web"
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "found"}}}, nil, nil
	})
	up := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil))
	t.Cleanup(up.Close) // after the binary and the sessions: it waits for their streams

	dir := t.TempDir()
	auditPath := filepath.Join(dir, "audit.jsonl")
	cfgPath := filepath.Join(dir, "mcpgate.yaml")
	cfg := `local_users: ["alice:` + password + `", "bob:` + password + `"]
upstream: ` + up.URL + `/mcp
audit_log: ` + auditPath + `
rate_limits:
  - {tools: ["search_*"], per: user, rate: 2/h}
`
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startBinary(t, freePort(t), "--data-dir", filepath.Join(dir, "data"), "--config", cfgPath)
	connect := func(name string) *mcp.ClientSession {
		h, _ := oauthClientAs(t, name, password)
		sess, err := mcp.NewClient(&mcp.Implementation{Name: "e2e-" + name, Version: "1"}, nil).Connect(ctx,
			&mcp.StreamableClientTransport{Endpoint: p.base + "/mcp", OAuthHandler: h}, nil)
		if err != nil {
			t.Fatalf("%s: connect: %v\n%s", name, err, p.Stderr())
		}
		t.Cleanup(func() { sess.Close() })
		return sess
	}
	call := func(sess *mcp.ClientSession) error {
		_, err := sess.CallTool(ctx, &mcp.CallToolParams{Name: "search_web"})
		return err
	}
	alice, bob := connect("alice"), connect("bob")
	for i := range 2 {
		if err := call(alice); err != nil {
			t.Fatalf("alice's call %d: %v", i, err)
		}
		<-ran
	}
	if err := call(alice); err == nil || !strings.Contains(err.Error(), "rate limited: search_web; try again in 1800 s") {
		t.Fatalf("alice's third call: %v, want the gateway's rate limited error", err)
	}
	select {
	case <-ran:
		t.Fatal("the upstream ran a call over the rate limit")
	default:
	}
	if err := call(bob); err != nil {
		t.Fatalf("bob, limited by alice's calls: %v", err)
	}
	<-ran

	want := []string{"local:alice ok", "local:alice ok", "local:alice rate_limited", "local:bob ok"}
	var got []string
	// An event is written as its handler returns, just after the answer.
	for deadline := time.Now().Add(10 * time.Second); len(got) < len(want) && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		got = got[:0]
		for _, e := range readAudit(t, auditPath) {
			got = append(got, e["user"].(string)+" "+e["outcome"].(string))
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("audit events (sorted) %q, want %q", got, want)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("rate_limits:\n  - {tools: [a], per: user, rate: 1/s}\n  - {tools: [a], per: user, rate: 5/day}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runBinary(t, "serve", "--data-dir", filepath.Join(dir, "data2"), "--config", bad)
	if code != 2 || !strings.Contains(stderr, `rate_limits[1]: rate "5/day": the unit must be s, m or h`) {
		t.Errorf("a bad rate: exit %d, %s; want exit 2 naming rate_limits[1]", code, stderr)
	}
}
