package bench

import (
	"context"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/identity"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// WhoamiResult is what the whoami tool returns.
type WhoamiResult struct {
	User     identity.User `json:"user"`
	ClientID string        `json:"client_id"`
	Scopes   []string      `json:"scopes"`
	Resource string        `json:"resource"`
}

// EchoArgs are the arguments of the echo tool.
type EchoArgs struct {
	Text string `json:"text" jsonschema:"the text to send back"`
}

// EchoResult is what the echo tool returns.
type EchoResult struct {
	Text string `json:"text"`
}

// Server is the MCP server under test: a go-sdk server with the tools of
// mcpgate's demo server, whoami and echo, answering as they do. The
// harness defines it here rather than reach into the product for its demo
// server, so that the same server sits behind every target: inside the
// gateway (mcpgate.MCPHandler), behind it (-target proxy) and directly.
func Server(version string) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "mcpgate-bench", Version: version}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "whoami", Description: "Returns the identity of the caller, as mcpgate verified it."},
		func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, WhoamiResult, error) {
			c := mcpgate.CallerFromRequest(ctx, req)
			if c == nil {
				return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "no verified caller"}}}, WhoamiResult{}, nil
			}
			return nil, WhoamiResult{User: c.User, ClientID: c.ClientID, Scopes: c.Scopes, Resource: c.Resource}, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "Returns its text argument."},
		func(ctx context.Context, req *mcp.CallToolRequest, args EchoArgs) (*mcp.CallToolResult, EchoResult, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: args.Text}}}, EchoResult{Text: args.Text}, nil
		})
	return s
}
