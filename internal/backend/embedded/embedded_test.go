package embedded

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// An idle session ends after the handler's idle time: its id then gets 404,
// and a session in use lives on.
func TestIdleSessionEnds(t *testing.T) {
	const idle = 300 * time.Millisecond
	srv := httptest.NewServer(handler(Demo("test"), nil, idle))
	defer srv.Close()
	ctx := t.Context()
	client := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil)
	connect := func() *mcp.ClientSession {
		cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: srv.URL, DisableStandaloneSSE: true}, nil)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		return cs
	}
	idleOne, busy := connect(), connect()
	defer busy.Close()
	// The busy session is used more often than the idle time, for 3 idle times.
	for deadline := time.Now().Add(3 * idle); time.Now().Before(deadline); time.Sleep(idle / 4) {
		if _, err := busy.ListTools(ctx, nil); err != nil {
			t.Fatalf("a session in use ended: %v", err)
		}
	}
	if code := post(t, ctx, srv.URL, idleOne.ID()); code != http.StatusNotFound {
		t.Errorf("a request in a session idle for 3 idle times: status %d, want 404 (session ended)", code)
	}
	if code := post(t, ctx, srv.URL, busy.ID()); code == http.StatusNotFound {
		t.Errorf("a request in the session in use: 404, want it served")
	}
}

func post(t *testing.T, ctx context.Context, url, session string) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(`{"jsonrpc":"2.0","id":9,"method":"tools/list"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", session)
	req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
