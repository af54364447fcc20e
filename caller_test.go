package mcpgate_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The README's library example: a tool of one's own go-sdk server, served
// with MCPHandler behind the gateway, reads the verified caller with
// CallerFromRequest, and gets the user and client the token was issued to.
func TestCallerFromRequest(t *testing.T) {
	server := mcp.NewServer(&mcp.Implementation{Name: "mine", Version: "1.0"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "hello"}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		caller := mcpgate.CallerFromRequest(ctx, req)
		if caller == nil {
			return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "no caller"}}}, nil, nil
		}
		text := "hello " + caller.User.Username + " from " + caller.ClientID
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}}, nil, nil
	})
	g := newGateway(t, func(c *mcpgateConfig) { c.MCP = mcpgate.MCPHandler(server) })
	reg, _, tok := g.fullFlow()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil).Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint: g.url + "/mcp", HTTPClient: &http.Client{Transport: bearer(tok.AccessToken)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	want := "hello " + testUser + " from " + reg.ClientID
	if res.IsError || len(res.Content) != 1 || res.Content[0].(*mcp.TextContent).Text != want {
		t.Errorf("hello: %+v, want the text %q", res, want)
	}
}
