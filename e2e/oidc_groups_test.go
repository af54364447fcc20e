package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/mcpgate/mcpgate/internal/oidctest"
)

// oidcToken walks one authorization for the resource at path through
// mcpgate's consent page and the provider's login as sub, in a fresh
// browser, and returns the access token.
func oidcToken(t *testing.T, ctx context.Context, p *process, op *oidctest.Provider, sub, path string) string {
	t.Helper()
	redirect := "http://127.0.0.1:1/oidc-groups/cb"
	a := newChromiumAuthz(p.base, chromiumRegister(t, p.base, "oidc-groups", redirect), redirect)
	a.path = path
	b := browser.New("", "")
	toProvider, err := b.Walk(ctx, a.url(), op.Issuer()+"/")
	if err != nil {
		t.Fatalf("%s for %s: authorize at mcpgate: %v\n%s", sub, path, err, p.Stderr())
	}
	done, err := b.Walk(ctx, op.Login(t, b.Client, toProvider.String(), sub).String(), redirect)
	if err != nil {
		t.Fatalf("%s for %s: callback at mcpgate: %v\n%s", sub, path, err, p.Stderr())
	}
	return a.exchange(t, a.check(t, done.String()))
}

// The groups of an OpenID provider's user reach everything that uses
// groups, through the binary: a proxied upstream gets them in
// X-Forwarded-Groups and in the identity token (checked with the
// gateway's JWKS), a tool_policy group rule lets the provider's admins
// call deploy and refuses a user in devs alone, and a stdio server's
// process gets MCPGATE_USER_GROUPS (read with the everything server's
// get-env).
func TestBinaryOIDCGroupsReachBackends(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	node, entry := node22(t), everythingStdio(t)

	var mu sync.Mutex
	var calls []string // "tool X-Forwarded-Groups" of each call that reached the upstream
	var idTokens []string
	server := mcp.NewServer(&mcp.Implementation{Name: "up", Version: "1"}, nil)
	for _, name := range []string{"deploy", "read"} {
		mcp.AddTool(server, &mcp.Tool{Name: name}, func(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			mu.Lock()
			calls = append(calls, name+" "+req.Extra.Header.Get("X-Forwarded-Groups"))
			idTokens = append(idTokens, req.Extra.Header.Get("X-Mcpgate-Identity"))
			mu.Unlock()
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "ok"}}}, nil, nil
		})
	}
	up := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil))
	defer up.Close()

	port := freePort(t)
	op := oidctest.Start(t, oidctest.Options{
		Clients: []oidctest.Client{{ID: "mcpgate", Secret: "op-s3cret", RedirectURIs: []string{"http://127.0.0.1:" + strconv.Itoa(port) + "/callback/oidc"}}},
		Users: []oidctest.User{
			{Sub: "u-vera", Email: "vera@corp.example", EmailVerified: true, Username: "vera", Groups: []string{"admins", "devs"}},
			{Sub: "u-ursula", Email: "ursula@corp.example", EmailVerified: true, Username: "ursula", Groups: []string{"devs"}},
		},
	})
	// Under a directory the servers' uids may traverse (SEC-22).
	dir := sharedDir(t)
	file := filepath.Join(dir, "mcpgate.yaml")
	yaml := `resources:
  - path: /mcp
    upstream: ` + up.URL + `/mcp
    identity_token: true
    tool_policy:
      default: deny
      rules:
        - allow: [deploy]
          groups: [admins]
        - allow: [read]
  - path: /stdio/mcp
    stdio: ` + strconv.Quote(shellQuote(node)+" "+shellQuote(entry)+" stdio") + `
    stdio_read_paths: [` + strconv.Quote(packageRoot(entry)) + `]
`
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startBinary(t, port, "--config", file, "--data-dir", filepath.Join(dir, "data"),
		"--oidc-issuer", op.Issuer(), "--oidc-client-id", "mcpgate", "--oidc-client-secret", "op-s3cret")
	defer p.stop(t)

	connect := func(sub, path string) *mcp.ClientSession {
		t.Helper()
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "e2e-" + sub, Version: "1"}, nil).
			Connect(ctx, staticTransport(p.base+path, oidcToken(t, ctx, p, op, sub, path)), nil)
		if err != nil {
			t.Fatalf("%s: connect to %s: %v\n%s", sub, path, err, p.Stderr())
		}
		t.Cleanup(func() { cs.Close() })
		return cs
	}
	call := func(cs *mcp.ClientSession, tool string) error {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool})
		if err == nil && res.IsError {
			return errToolResult
		}
		return err
	}

	vera, ursula := connect("u-vera", "/mcp"), connect("u-ursula", "/mcp")
	if err := call(vera, "deploy"); err != nil {
		t.Fatalf("vera, in admins at the provider, calls deploy: %v; want it allowed by the group rule", err)
	}
	if err := call(ursula, "deploy"); err == nil || !strings.Contains(err.Error(), "not allowed") {
		t.Fatalf("ursula, in devs alone, calls deploy: %v; want not allowed", err)
	}
	if err := call(ursula, "read"); err != nil {
		t.Fatalf("ursula calls read: %v; want it allowed to everyone", err)
	}
	mu.Lock()
	gotCalls, gotTokens := slices.Clone(calls), slices.Clone(idTokens)
	mu.Unlock()
	if want := []string{"deploy admins,devs", "read devs"}; !slices.Equal(gotCalls, want) {
		t.Fatalf("calls at the upstream %q, want %q (deploy by vera alone, each with its caller's X-Forwarded-Groups)", gotCalls, want)
	}
	claims := verifyIdentityToken(t, p.base, gotTokens[0])
	var groups []string
	for _, g := range asSlice(claims["groups"]) {
		groups = append(groups, g.(string))
	}
	if claims["sub"] != "oidc:u-vera" || !slices.Equal(groups, []string{"admins", "devs"}) {
		t.Fatalf("vera's identity token claims %v; want sub oidc:u-vera with groups [admins devs]", claims)
	}

	res, err := connect("u-vera", "/stdio/mcp").CallTool(ctx, &mcp.CallToolParams{Name: "get-env"})
	if err != nil || res.IsError || len(res.Content) != 1 {
		t.Fatalf("get-env at the stdio server: %+v, %v\n%s", res, err, p.Stderr())
	}
	var env map[string]string
	text := res.Content[0].(*mcp.TextContent).Text
	if err := json.Unmarshal([]byte(text), &env); err != nil {
		t.Fatalf("get-env answered %q: %v", text, err)
	}
	if env["MCPGATE_USER"] != "oidc:u-vera" || env["MCPGATE_USER_GROUPS"] != "admins,devs" {
		t.Fatalf("the stdio server's MCPGATE_USER %q, MCPGATE_USER_GROUPS %q; want oidc:u-vera and admins,devs", env["MCPGATE_USER"], env["MCPGATE_USER_GROUPS"])
	}
}

var errToolResult = errors.New("the tool answered isError")
