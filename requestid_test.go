package mcpgate_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate"
)

// requestIDs is a transport that adds the bearer token and keeps the
// X-Request-Id of every answer.
type requestIDs struct {
	token string
	mu    sync.Mutex
	ids   []string
}

func (t *requestIDs) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+t.token)
	r.Header.Set("X-Request-Id", "chosen-by-the-client")
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		t.mu.Lock()
		t.ids = append(t.ids, strings.Join(resp.Header.Values("X-Request-Id"), ","))
		t.mu.Unlock()
	}
	return resp, err
}

var requestIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// SEC-103: every answer carries a request id the gateway made (128 random
// bits), never the client's X-Request-Id; the access log line and the
// audit event of a tools/call carry the same id.
func TestSEC103_RequestIDOnEveryRequest(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	server := mcp.NewServer(&mcp.Implementation{Name: "up", Version: "1"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "echo"}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "ok"}}}, nil, nil
	})
	// An upstream with request ids of its own: the client gets the
	// gateway's alone.
	sdk := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "upstream-id")
		sdk.ServeHTTP(w, r)
	}))
	t.Cleanup(up.Close)
	events := &auditLog{}
	g := newGateway(t, func(c *mcpgateConfig) {
		c.Resources = []mcpgate.Resource{{Path: "/mcp", Upstream: up.URL + "/mcp"}}
		c.Audit = events
	})

	seen := map[string]bool{}
	for range 2 {
		resp, _ := g.get(g.url+"/.well-known/oauth-authorization-server", "X-Request-Id", "chosen-by-the-client")
		id := resp.Header.Get("X-Request-Id")
		if !requestIDPattern.MatchString(id) {
			t.Fatalf("X-Request-Id %q, want 32 lowercase hex digits made by the gateway", id)
		}
		if seen[id] {
			t.Fatalf("X-Request-Id %q given twice", id)
		}
		seen[id] = true
		if !strings.Contains(g.logs.String(), "request_id="+id+" client_request_id=chosen-by-the-client") {
			t.Errorf("no access log line with request_id=%s and the client's beside it:\n%s", id, g.logs.String())
		}
	}
	// A client's id that could forge a line is not logged at all.
	resp, _ := g.get(g.url+"/.well-known/oauth-authorization-server", "X-Request-Id", "x level=ERROR msg=forged")
	if id := resp.Header.Get("X-Request-Id"); !requestIDPattern.MatchString(id) || strings.Contains(g.logs.String(), "forged") {
		t.Errorf("X-Request-Id %q; the client's malformed id reached the log:\n%s", id, g.logs.String())
	}

	_, _, tok := g.fullFlow()
	rt := &requestIDs{token: tok.AccessToken}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil).Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint: g.url + "/mcp", HTTPClient: &http.Client{Transport: rt},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo"}); err != nil {
		t.Fatal(err)
	}
	rt.mu.Lock()
	ids := slices.Clone(rt.ids)
	rt.mu.Unlock()
	var audited []string
	for _, e := range events.events() {
		if e.Tool == "echo" {
			audited = append(audited, e.RequestID)
		}
	}
	for _, id := range ids {
		if !requestIDPattern.MatchString(id) {
			t.Errorf("an answer from /mcp has X-Request-Id %q, want the gateway's alone", id)
		}
	}
	if len(audited) != 1 || !requestIDPattern.MatchString(audited[0]) || !slices.Contains(ids, audited[0]) {
		t.Fatalf("audit event request ids %q, want one of the answers' %q", audited, ids)
	}
	if !strings.Contains(g.logs.String(), "request_id="+audited[0]+" ") {
		t.Errorf("no access log line with the tools/call's request_id=%s", audited[0])
	}
}

// SEC-116: the request log shows at most 512 bytes of a path, the
// client's to make as long as its header allows (64 KiB), on a line every
// unauthenticated request writes. Fails before this change: the whole
// path was logged.
func TestSEC116_LoggedPathBounded(t *testing.T) {
	g := newGateway(t)
	long := "/" + strings.Repeat("a", 20000)
	if resp, _ := g.get(g.url + long); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET a long path: %d, want 404", resp.StatusCode)
	}
	logs := g.logs.String()
	if strings.Contains(logs, strings.Repeat("a", 600)) || !strings.Contains(logs, strings.Repeat("a", 400)) {
		t.Errorf("the request log holds %d bytes for a path of 20001, want its first 512 or so", len(logs))
	}
}

// SEC-116: the request log shows at most 32 bytes of a method, which
// net/http takes as any token up to the header's 64 KiB. Fails before
// this change: a line of 20 KB for a made-up method of 20,000 letters.
func TestSEC116_LoggedMethodBounded(t *testing.T) {
	g := newGateway(t)
	method := strings.Repeat("M", 20000)
	req, err := http.NewRequest(method, g.url+"/mcp", nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp, _ := g.do(req); resp.StatusCode < 400 {
		t.Fatalf("a made-up method: %d, want a refusal", resp.StatusCode)
	}
	logs := g.logs.String()
	if strings.Contains(logs, strings.Repeat("M", 33)) || !strings.Contains(logs, "method="+strings.Repeat("M", 32)) {
		t.Errorf("the request log holds %d bytes for a method of 20,000, want its first 32", len(logs))
	}
}
