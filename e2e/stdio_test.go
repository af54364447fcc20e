package e2e

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/internal/backend/bridge"
)

// The reference "everything" server (TypeScript, over stdio) behind the
// stdio backend: the go-sdk client goes through the whole OAuth flow, then
// lists and calls tools; a second user gets a process of their own.
func TestStdioEverythingServerThroughGateway(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	node, entry := node22(t), everythingStdio(t)

	logs := &safeBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	pool, err := bridge.NewStdio(bridge.StdioOptions{Command: []string{node, entry, "stdio"}, Dir: t.TempDir(),
		ReadPaths: []string{packageRoot(entry)}, Resource: "/mcp", Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer ccancel()
		if err := pool.Close(cctx); err != nil {
			t.Errorf("closing the pool: %v", err)
		}
	}()
	srv := startGateway(t, ctx, mcpgate.Config{Logger: logger, MCP: pool}, [2]string{"bob", "e2e password 2"})

	connect := func(name, pw string) *mcp.ClientSession {
		h, _ := oauthClientAs(t, name, pw)
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil).
			Connect(ctx, &mcp.StreamableClientTransport{Endpoint: srv.URL + "/mcp", OAuthHandler: h}, nil)
		if err != nil {
			t.Fatalf("connect as %s: %v\n%s", name, err, logs)
		}
		return cs
	}
	echo := func(cs *mcp.ClientSession, msg string) {
		t.Helper()
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": msg}})
		if err != nil || res.IsError || len(res.Content) == 0 {
			t.Fatalf("echo: %v %+v\n%s", err, res, logs)
		}
		if got := res.Content[0].(*mcp.TextContent).Text; !strings.Contains(got, msg) {
			t.Fatalf("echo returned %q, want it to contain %q", got, msg)
		}
	}

	alice := connect(user, password)
	defer alice.Close()
	if ir := alice.InitializeResult(); ir == nil || ir.ServerInfo == nil || !strings.Contains(ir.ServerInfo.Name, "everything") {
		t.Fatalf("initialize result: %+v, want the everything server", alice.InitializeResult())
	}
	if alice.ID() == "" {
		t.Fatal("no bridge session id, want the session the bridge opened")
	}
	tools, err := alice.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, tl := range tools.Tools {
		found = found || tl.Name == "echo"
	}
	if !found {
		t.Fatalf("no echo tool in %d tools, want it listed", len(tools.Tools))
	}
	echo(alice, "hello from alice")

	bob := connect("bob", "e2e password 2")
	defer bob.Close()
	echo(bob, "hello from bob")

	// One process each, with its own pid, started for the right user.
	started := func(u string) int {
		n := 0
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, `msg="stdio server started"`) && strings.Contains(l, "user="+u+" ") {
				n++
			}
		}
		return n
	}
	if a, b := started("local:alice"), started("local:bob"); a != 1 || b != 1 {
		t.Fatalf("processes started: alice %d, bob %d (want 1 each)\n%s", a, b, logs)
	}
}
