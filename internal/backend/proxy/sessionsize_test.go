package proxy

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
)

// SEC-124: the session ids an upstream hands out cost the gateway what
// their hash does, whatever their length: one that hands every answer a
// new id of 4 KiB (the most it may, SEC-212) would otherwise make the
// gateway keep them all, up to the 100,000 sessions it remembers.
func TestSEC124_LongSessionIDsKeptSmall(t *testing.T) {
	var n atomic.Int64
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(sessionHeader, fmt.Sprintf("%d-%s", n.Add(1), strings.Repeat("s", maxSessionID-10)))
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`))
	}))
	fe := front(t, be.URL, Options{}, alice)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const answers = 3000 // 12 MiB of ids
	for range answers {
		// Not post, whose cleanup keeps each answer (and its id) alive.
		req, _ := http.NewRequest(http.MethodPost, fe.URL+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize"}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d, want the upstream's 200", resp.StatusCode)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 4<<20 {
		t.Fatalf("the heap grew by %d MiB after %d sessions with ids of 4 KiB, want under 4 MiB", grew>>20, answers)
	}
}

// SEC-211: an upstream's answer whose head is over 64 KiB is not passed
// on: 502 with a JSON-RPC error. Fails before: a head of 1 MiB of short
// distinct fields was parsed, copied for the client and held, about 60
// times its size, for as long as the upstream kept the answer open.
func TestSEC211_UpstreamResponseHeadBounded(t *testing.T) {
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := range 12_000 { // 80 KiB of fields
			w.Header().Set(fmt.Sprintf("X-%d", i), "")
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`))
	}))
	fe := front(t, be.URL, Options{}, alice)
	resp := post(t, fe.URL+"/mcp", `{"jsonrpc":"2.0","id":1,"method":"ping"}`, nil)
	if body := readAll(t, resp); resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, `"error"`) {
		t.Errorf("an upstream answer with 80 KiB of head: %d %.200s; want 502 with a JSON-RPC error", resp.StatusCode, body)
	}
}

// SEC-212: an upstream's Mcp-Session-Id over 4 KiB is not passed on (502):
// the gateway keeps every id a user holds, to end the oldest by its name.
// Fails before: an id of 60 KiB was handed to the client, and kept.
func TestSEC212_LongSessionIDRefused(t *testing.T) {
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(sessionHeader, strings.Repeat("s", 60<<10))
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`))
	}))
	fe := front(t, be.URL, Options{}, alice)
	resp := post(t, fe.URL+"/mcp", `{"jsonrpc":"2.0","id":1,"method":"initialize"}`, nil)
	if body := readAll(t, resp); resp.StatusCode != http.StatusBadGateway || resp.Header.Get(sessionHeader) != "" {
		t.Errorf("an upstream session id of 60 KiB: %d, session id of %d bytes, %.200s; want 502 and none", resp.StatusCode, len(resp.Header.Get(sessionHeader)), body)
	}
}
