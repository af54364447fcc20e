package embedded

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Handler serves server over streamable HTTP. Sessions are bound to the
// user who opened them through the auth.TokenInfo that the resource guard
// puts in the context (SESS-3). The guard validates Origin and Host itself
// (TRANS-1); the transport's own localhost check is off because behind a
// TLS proxy on loopback the Host is the public name, which it would refuse.
//
// A session left idle for SessionIdle ends, as the proxy forgets its
// session bindings and the bridges stop their processes: clients often
// leave without a DELETE, and the per-user cap (SEC-35) alone would keep
// up to that many sessions per user until the gateway restarts.
func Handler(server *mcp.Server, log *slog.Logger) http.Handler {
	return handler(server, log, SessionIdle)
}

// SessionIdle is how long an idle session of the embedded server lives.
const SessionIdle = 24 * time.Hour

func handler(server *mcp.Server, log *slog.Logger, idle time.Duration) http.Handler {
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, &mcp.StreamableHTTPOptions{
		Logger:                     log,
		DisableLocalhostProtection: true,
		SessionTimeout:             idle,
	})
}

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

// MaxEcho bounds echo's text, in bytes (SEC-209): its answer carries the
// text twice (as content and as structured content), and JSON writes <,
// > and & as six bytes, so that a request of 4 MiB made an answer of 47
// MB, held while a slow client read it.
const MaxEcho = 4 << 10

// EchoResult is what the echo tool returns.
type EchoResult struct {
	Text string `json:"text"`
}

// Demo returns the demo MCP server of `mcpgate serve`.
func Demo(version string) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "mcpgate-demo", Version: version}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "whoami", Description: "Returns the identity of the caller, as mcpgate verified it."},
		func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, WhoamiResult, error) {
			c := CallerOf(ctx, req)
			if c == nil {
				return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "no verified caller"}}}, WhoamiResult{}, nil
			}
			return nil, WhoamiResult{User: c.User, ClientID: c.ClientID, Scopes: c.Scopes, Resource: c.Resource}, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "Returns its text argument, of at most 4 KiB."},
		func(ctx context.Context, req *mcp.CallToolRequest, args EchoArgs) (*mcp.CallToolResult, EchoResult, error) {
			if len(args.Text) > MaxEcho {
				return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "text is over 4 KiB"}}}, EchoResult{}, nil
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: args.Text}}}, EchoResult{Text: args.Text}, nil
		})
	return s
}

// CallerOf finds the verified caller of a tool call. The go-sdk runs tool
// handlers with the session's context, not the HTTP request's, so the
// caller is read from the request's extra data when the context lacks it.
func CallerOf(ctx context.Context, req *mcp.CallToolRequest) *identity.Caller {
	if c := identity.FromContext(ctx); c != nil {
		return c
	}
	if req != nil && req.Extra != nil && req.Extra.TokenInfo != nil {
		if c, ok := req.Extra.TokenInfo.Extra[identity.TokenInfoKey].(*identity.Caller); ok {
			return c
		}
	}
	return nil
}
