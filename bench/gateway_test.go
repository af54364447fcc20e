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

// Inside the gateway of GatewayConfig, the demo server's whoami sees the caller the gateway
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
	var who struct {
		User struct {
			Username string `json:"preferred_username"`
		} `json:"user"`
		ClientID string `json:"client_id"`
		Resource string `json:"resource"`
	}
	if b, err := json.Marshal(res.StructuredContent); err != nil || json.Unmarshal(b, &who) != nil {
		t.Fatalf("whoami: %+v", res)
	}
	if res.IsError || who.User.Username != user || who.ClientID != clientID || who.Resource != resource {
		t.Errorf("whoami: %+v (error %v), want user %s, client %s, resource %s", who, res.IsError, user, clientID, resource)
	}
}
