package policy

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate/internal/metrics"
	"github.com/mcpgate/mcpgate/internal/metrics/metricstest"
)

// Every tools/call is counted by resource, tool and outcome, with no
// audit recorder: a denied call under the name the backend listed, or
// "other" before it listed any; a tool error as error; a call to a tool
// the backend does not have as error under "other" (SEC-90).
func TestToolCallMetrics(t *testing.T) {
	modes(t, func(t *testing.T, jsonResponse bool, version string) {
		var ran sync.Map
		m := metrics.New()
		srv := front(t, mcpBackend(jsonResponse, &ran), Options{Policy: testPolicy(), Metrics: m, Resource: "/mcp"}, bob)
		cs := connect(t, srv.URL, version)
		if _, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "delete_repo"}); err == nil {
			t.Fatal("delete_repo: no error, want denied")
		}
		if _, err := cs.ListTools(t.Context(), nil); err != nil {
			t.Fatal(err)
		}
		if _, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "delete_repo"}); err == nil {
			t.Fatal("delete_repo: no error, want denied")
		}
		if res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "fail"}); err != nil || !res.IsError {
			t.Fatalf("fail = %v, %v; want a result with isError", res, err)
		}
		if _, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "missing"}); err == nil {
			t.Fatal("missing: no error, want the backend's JSON-RPC error")
		}
		// A call is counted when the handler returns, which may be just
		// after the client has its answer.
		var f metricstest.Families
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			f = metricstest.Gather(t, m.Registry())
			// Gather reads each collector in turn, not at one instant: wait
			// for both families to hold the four calls.
			if (f.Value("mcpgate_tool_calls_total") >= 4 && f.Value("mcpgate_tool_call_duration_seconds", "resource", "/mcp") >= 4) || time.Now().After(deadline) {
				break
			}
		}
		for _, tc := range []struct {
			tool, outcome string
			want          float64
		}{
			{metrics.OtherTool, metrics.ToolDenied, 1},
			{"delete_repo", metrics.ToolDenied, 1},
			{"fail", metrics.ToolError, 1},
			{metrics.OtherTool, metrics.ToolError, 1},
			{"missing", metrics.ToolError, 0},
		} {
			if got := f.Value("mcpgate_tool_calls_total", "resource", "/mcp", "tool", tc.tool, "outcome", tc.outcome); got != tc.want {
				t.Errorf("tool_calls{%s,%s} = %v, want %v", tc.tool, tc.outcome, got, tc.want)
			}
		}
		if got := f.Value("mcpgate_tool_call_duration_seconds", "resource", "/mcp"); got != 4 {
			t.Errorf("%v calls timed, want 4", got)
		}
	})
}

// A tools/call refused for a rate limit is counted as rate_limited, not
// as an error of the backend, which never saw it.
func TestToolCallMetricsRateLimited(t *testing.T) {
	m := metrics.New()
	be := &stub{t: t}
	limit := func(user, client string, tools []string) (string, time.Duration) { return tools[0], time.Second }
	srv := front(t, be, Options{Policy: testPolicy(), Metrics: m, Resource: "/mcp", Limit: limit}, bob)
	if resp, b := post(t, srv.URL, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fail"}}`); resp.StatusCode != 200 || !strings.Contains(string(b), "-32029") {
		t.Fatalf("%d %s, want 200 and a -32029 error", resp.StatusCode, b)
	}
	var f metricstest.Families
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		f = metricstest.Gather(t, m.Registry())
		if f.Value("mcpgate_tool_calls_total") >= 1 || time.Now().After(deadline) {
			break
		}
	}
	if got := f.Value("mcpgate_tool_calls_total", "resource", "/mcp", "outcome", metrics.ToolRateLimited); got != 1 {
		t.Errorf("tool_calls{outcome=rate_limited} = %v, want 1", got)
	}
	if got := f.Value("mcpgate_tool_calls_total", "resource", "/mcp", "outcome", metrics.ToolError); got != 0 {
		t.Errorf("tool_calls{outcome=error} = %v, want 0", got)
	}
	if be.hits.Load() != 0 {
		t.Error("forwarded, want refused")
	}
}

// SEC-90: a result with isError is no proof that a tool exists: a server
// built on the TypeScript SDK answers a call to any name with one ("Tool
// X not found"). Such a call is counted under "other", so that a caller
// who makes up names cannot take the resource's label values from the
// tools it has.
func TestSEC90_ErrorResultMakesNoLabel(t *testing.T) {
	m := metrics.New()
	be := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Params struct{ Name string } `json:"params"`
		}
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &req)
		w.Header().Set("Content-Type", "application/json")
		if req.Params.Name == "real" {
			io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{"content":[]}}`)
			return
		}
		io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"Tool not found"}],"isError":true}}`)
	})
	srv := front(t, be, Options{Metrics: m, Resource: "/mcp"}, bob)
	const junk = metrics.MaxToolNames + 20
	for i := range junk {
		if resp, b := post(t, srv.URL, fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"made-up-%d"}}`, i)); resp.StatusCode != 200 {
			t.Fatalf("call %d: %d %s", i, resp.StatusCode, b)
		}
	}
	if resp, b := post(t, srv.URL, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"real"}}`); resp.StatusCode != 200 {
		t.Fatalf("real: %d %s", resp.StatusCode, b)
	}
	var f metricstest.Families
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		f = metricstest.Gather(t, m.Registry())
		if f.Value("mcpgate_tool_calls_total") >= junk+1 || time.Now().After(deadline) {
			break
		}
	}
	if got := f.Value("mcpgate_tool_calls_total", "resource", "/mcp", "tool", metrics.OtherTool, "outcome", metrics.ToolError); got != junk {
		t.Errorf("tool_calls{other,error} = %v, want all %d made-up names", got, junk)
	}
	if got := f.Value("mcpgate_tool_calls_total", "resource", "/mcp", "tool", "real", "outcome", metrics.ToolOK); got != 1 {
		t.Errorf("tool_calls{real,ok} = %v, want 1: the made-up names took the label values", got)
	}
}
