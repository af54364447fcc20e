package mcpgate_test

import (
	"context"
	"log"
	"net/http"
	"path/filepath"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/store/sqlite"
	"github.com/mcpgate/mcpgate/upstream"
	"github.com/mcpgate/mcpgate/upstream/local"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Protect your own go-sdk MCP server: the README's example, compiled.
func Example() {
	ctx := context.Background()
	server := mcp.NewServer(&mcp.Implementation{Name: "mine", Version: "1.0"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "hello"}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		caller := mcpgate.CallerFromRequest(ctx, req)
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "hello " + caller.User.Username}}}, nil, nil
	})

	st, err := sqlite.Open(ctx, "mcpgate-data/mcpgate.db")
	if err != nil {
		log.Fatal(err)
	}
	key, err := tokens.LoadOrCreateKeyFile(filepath.Join("mcpgate-data", "secret.key"))
	if err != nil {
		log.Fatal(err)
	}
	users := local.New(st, local.Options{})
	if err := users.SetUser(ctx, "alice", "a long password"); err != nil {
		log.Fatal(err)
	}
	gw, err := mcpgate.New(ctx, mcpgate.Config{
		Store:      st,
		SecretKey:  key,
		Connectors: []upstream.Connector{users},
		MCP:        mcpgate.MCPHandler(server),
	})
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", gw))
}
