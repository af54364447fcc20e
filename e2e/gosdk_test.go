package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/e2e/browser"
)

const (
	user     = "alice"
	password = "e2e password 1"
	callback = "http://127.0.0.1:33419/callback"
)

// oauthClient is a go-sdk MCP client whose OAuth handler registers (DCR),
// and whose "browser" logs in as alice and consents headlessly.
func oauthClient(t *testing.T) (*auth.AuthorizationCodeHandler, *browser.Browser) {
	t.Helper()
	return oauthClientAs(t, user, password)
}

// connectWithOAuth connects a go-sdk client to p's /mcp as alice, through
// the whole OAuth flow of oauthClient; the caller closes the session.
func connectWithOAuth(t *testing.T, ctx context.Context, p *process) *mcp.ClientSession {
	t.Helper()
	h, _ := oauthClient(t)
	sess, err := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil).
		Connect(ctx, &mcp.StreamableClientTransport{Endpoint: p.base + "/mcp", OAuthHandler: h}, nil)
	if err != nil {
		t.Fatalf("connect: %v\n%s", err, p.Stderr())
	}
	return sess
}

// oauthClientAs is oauthClient for another local user.
func oauthClientAs(t *testing.T, name, pw string) (*auth.AuthorizationCodeHandler, *browser.Browser) {
	t.Helper()
	b := browser.New(name, pw)
	h, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		RedirectURL: callback,
		AuthorizationCodeFetcher: func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
			code, state, iss, err := b.Authorize(ctx, args.URL, callback)
			if err != nil {
				return nil, err
			}
			return &auth.AuthorizationResult{Code: code, State: state, Iss: iss}, nil
		},
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{Metadata: &oauthex.ClientRegistrationMetadata{
			ClientName:              "go-sdk e2e",
			RedirectURIs:            []string{callback},
			TokenEndpointAuthMethod: "none",
			GrantTypes:              []string{"authorization_code", "refresh_token"},
		}},
		RequestRefreshToken: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return h, b
}

// whoami connects with transport and returns the user id of the caller.
func whoami(t *testing.T, ctx context.Context, transport mcp.Transport) map[string]any {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil)
	sess, err := client.Connect(ctx, transport, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer sess.Close()
	res, err := sess.CallTool(ctx, &mcp.CallToolParams{Name: "whoami"})
	if err != nil || res.IsError {
		t.Fatalf("whoami: %v %+v, want a result", err, res)
	}
	out, _ := json.Marshal(res.StructuredContent)
	var m map[string]any
	json.Unmarshal(out, &m)
	echo, err := sess.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hello"}})
	if err != nil || echo.IsError || echo.Content[0].(*mcp.TextContent).Text != "hello" {
		t.Fatalf("echo: %v %+v, want \"hello\" back", err, echo)
	}
	return m
}

// The whole path in process: the go-sdk client discovers (PRM, AS
// metadata), registers, authorizes with PKCE and resource through the
// login and consent pages, and calls whoami; SQLite on a real file.
func TestGoSDKClientInProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var logs safeBuffer
	srv := startGateway(t, ctx, mcpgate.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})

	h, _ := oauthClient(t)
	m := whoami(t, ctx, &mcp.StreamableClientTransport{Endpoint: srv.URL + "/mcp", OAuthHandler: h})
	u, _ := m["user"].(map[string]any)
	if u["sub"] != "local:alice" || m["resource"] != srv.URL+"/mcp" {
		t.Fatalf("whoami: %v, want local:alice at resource %s/mcp", m, srv.URL)
	}
	ts, _ := h.TokenSource(ctx)
	tok, err := ts.Token()
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("no refresh token: %v, want one with the access token", err)
	}
}

// A bearer-token transport for calls made with a token obtained outside
// the go-sdk's OAuth handler.
type bearer struct {
	token string
	base  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

func staticTransport(endpoint, token string) mcp.Transport {
	return &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: &http.Client{Transport: bearer{token, http.DefaultTransport}}}
}

type mcpStreamable struct {
	endpoint string
	h        *auth.AuthorizationCodeHandler
}

func (m mcpStreamable) transport() mcp.Transport {
	return &mcp.StreamableClientTransport{Endpoint: m.endpoint, OAuthHandler: m.h}
}

// clientIDOf reads the client_id claim of an access token (no check: the
// gateway checks it).
func clientIDOf(t *testing.T, at string) string {
	t.Helper()
	parts := strings.Split(at, ".")
	if len(parts) != 3 {
		t.Fatalf("access token with %d parts, want a JWT (3)", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		ClientID string `json:"client_id"`
	}
	json.Unmarshal(raw, &c)
	return c.ClientID
}
