package bench

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/mcpgate/mcpgate/store/memory"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/oauth2"
)

// The server under test answers as the demo server does: echo sends its
// text back, whoami without a verified caller is a tool error.
func TestServerTools(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ct, st := mcp.NewInMemoryTransports()
	ss, err := Server("test").Connect(ctx, st, nil)
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

// bearer adds an access token to every request.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// Inside the gateway of GatewayConfig, whoami sees the caller the gateway
// verified: the user who went through the real flow, the client and the
// resource of the token.
func TestServerInGateway(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const user, password, callback = "bench", "server test password 1", "http://127.0.0.1:33429/callback"
	cfg, err := GatewayConfig(ctx, memory.New(), user, password, nil)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := mcpgate.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close(ctx)
	srv := httptest.NewServer(gw)
	defer srv.Close()
	base, resource := srv.URL, srv.URL+"/mcp"

	clientID, err := RegisterClient(ctx, srv.Client(), base, "server test", callback)
	if err != nil {
		t.Fatal(err)
	}
	code, verifier, err := Authorize(ctx, browser.New(user, password), AuthorizeURL(base, clientID, callback, resource), callback, base)
	if err != nil {
		t.Fatal(err)
	}
	conf := &oauth2.Config{ClientID: clientID, RedirectURL: callback,
		Endpoint: oauth2.Endpoint{TokenURL: base + "/token", AuthStyle: oauth2.AuthStyleInParams}}
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier), oauth2.SetAuthURLParam("resource", resource))
	if err != nil {
		t.Fatal(err)
	}

	transport := &mcp.StreamableClientTransport{Endpoint: resource,
		HTTPClient: &http.Client{Transport: bearer{tok.AccessToken, http.DefaultTransport}}}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil).Connect(ctx, transport, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "whoami"})
	if err != nil {
		t.Fatal(err)
	}
	var who WhoamiResult
	if b, err := json.Marshal(res.StructuredContent); err != nil || json.Unmarshal(b, &who) != nil {
		t.Fatalf("whoami: %+v", res)
	}
	if res.IsError || who.User.Username != user || who.ClientID != clientID || who.Resource != resource {
		t.Errorf("whoami: %+v (error %v), want user %s, client %s, resource %s", who, res.IsError, user, clientID, resource)
	}
}
