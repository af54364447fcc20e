package e2e

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// seenRequests records the method and headers of every request an
// upstream gets.
type seenRequests struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (s *seenRequests) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.reqs = append(s.reqs, &http.Request{Method: r.Method, Header: r.Header.Clone()})
		s.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (s *seenRequests) all() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*http.Request(nil), s.reqs...)
}

// forger sends, on every request of the go-sdk client, forged identity,
// address and session headers, and keeps the access token it carries.
type forger struct {
	mu    sync.Mutex
	token string
}

func (f *forger) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range map[string]string{
		"X-Forwarded-User": "local:admin", "X_Forwarded_User": "local:admin", "x-forwarded-groups": "admins",
		"X_Forwarded_Groups": "admins", "X-Remote-User": "local:admin", "X_Remote_User": "local:admin",
		"X-Real-IP": "10.6.6.6", "X_Real_IP": "10.6.6.6", "Forwarded": "for=10.6.6.6", "X-Forwarded-For": "10.6.6.6",
		"X-Forwarded-Port": "6666", "Mcp_Session_Id": "forged",
	} {
		r.Header[k] = []string{v}
	}
	if a := r.Header.Get("Authorization"); a != "" {
		f.mu.Lock()
		f.token = strings.TrimPrefix(a, "Bearer ")
		f.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(r)
}

// The binary, configured from a file with a renamed user header and the
// groups header turned off, in front of an upstream that records what it
// gets: no forged identity, address or session header reaches it under
// any spelling (PASS-2, SEC-33, SESS-3); methods other than the
// transport's, a body on GET or DELETE and two session ids stop at the
// gateway (SEC-30, SEC-31, SEC-32), so a denied tool cannot be called
// with PUT.
func TestBinaryUpstreamRequestHygiene(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	server := mcp.NewServer(&mcp.Implementation{Name: "upstream", Version: "1"}, nil)
	for _, name := range []string{"who", "nuke"} {
		mcp.AddTool(server, &mcp.Tool{Name: name}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: name}}}, nil, nil
		})
	}
	seen := &seenRequests{}
	up := httptest.NewServer(seen.wrap(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)))
	defer up.Close()

	dir := t.TempDir()
	cfg := `local_users: ["` + user + `:` + password + `"]
upstream: ` + up.URL + `/mcp
identity_headers: {user: X-Remote-User, groups: "-"}
tool_policy:
  rules:
    - deny: ["nuke"]
`
	cfgPath := filepath.Join(dir, "mcpgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startBinary(t, freePort(t), "--data-dir", filepath.Join(dir, "data"), "--config", cfgPath)
	h, _ := oauthClient(t)
	fg := &forger{}
	sess, err := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil).Connect(ctx,
		&mcp.StreamableClientTransport{Endpoint: p.base + "/mcp", OAuthHandler: h, HTTPClient: &http.Client{Transport: fg}}, nil)
	if err != nil {
		t.Fatalf("connect: %v\n%s", err, p.Stderr())
	}
	defer sess.Close()
	if res, err := sess.CallTool(ctx, &mcp.CallToolParams{Name: "who"}); err != nil || res.IsError {
		t.Fatalf("who: %v %+v, want a result", err, res)
	}
	forged := []string{"local:admin", "admins", "10.6.6.6", "6666", "forged"}
	for _, r := range seen.all() {
		for k, v := range r.Header {
			norm := strings.ToLower(strings.ReplaceAll(k, "_", "-"))
			for _, f := range forged {
				if strings.Contains(strings.Join(v, ","), f) {
					t.Errorf("%s: the upstream got %s %q, a value the client forged", r.Method, k, v)
				}
			}
			switch {
			case norm == "x-remote-user" && (len(v) != 1 || v[0] != "local:"+user):
				t.Errorf("%s: the upstream got %s %q, want only the gateway's local:%s", r.Method, k, v, user)
			case norm == "x-forwarded-user", norm == "x-forwarded-groups":
				t.Errorf("%s: the upstream got %s %q, want nothing under a renamed or disabled default name", r.Method, k, v)
			case norm == "mcp-session-id" && k != "Mcp-Session-Id":
				t.Errorf("%s: the upstream got %s %q, want only the checked Mcp-Session-Id", r.Method, k, v)
			}
		}
	}

	fg.mu.Lock()
	token := fg.token
	fg.mu.Unlock()
	before := len(seen.all())
	call := `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"nuke"}}`
	raw := func(method, body string, header ...string) (*http.Response, string) {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequestWithContext(ctx, method, p.base+"/mcp", rd)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Session-Id", sess.ID())
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Add(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	for _, m := range []string{http.MethodPut, http.MethodPatch} {
		if resp, b := raw(m, call); resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") == "" || !strings.Contains(b, `"error"`) {
			t.Errorf("%s with a denied call: %d, Allow %q, %s; want 405 with Allow and a JSON-RPC error", m, resp.StatusCode, resp.Header.Get("Allow"), b)
		}
	}
	for _, m := range []string{http.MethodGet, http.MethodDelete} {
		if resp, b := raw(m, call); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s with a body: %d %s, want 400", m, resp.StatusCode, b)
		}
	}
	if resp, b := raw(http.MethodPost, `{"jsonrpc":"2.0","id":10,"method":"ping"}`, "Mcp-Session-Id", "other"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("two session ids: %d %s, want 400", resp.StatusCode, b)
	}
	if got := seen.all()[before:]; len(got) != 0 {
		t.Errorf("the upstream got %d of the refused requests (first %s), want none", len(got), got[0].Method)
	}
	// Without a token every method gets the same challenge.
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, p.base+"/mcp", strings.NewReader(call))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("PUT without a token: %d, want 401 with a challenge", resp.StatusCode)
	}
	sess.Close()
	p.stop(t)
}
