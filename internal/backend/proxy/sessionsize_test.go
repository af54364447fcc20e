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
// new id of 256 KiB (its headers may hold 1 MiB) would otherwise make the
// gateway keep them all, up to the 100,000 sessions it remembers.
func TestSEC124_LongSessionIDsKeptSmall(t *testing.T) {
	var n atomic.Int64
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(sessionHeader, fmt.Sprintf("%d-%s", n.Add(1), strings.Repeat("s", 256<<10)))
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`))
	}))
	fe := front(t, be.URL, Options{}, alice)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const answers = 200 // 50 MiB of ids
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
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 10<<20 {
		t.Fatalf("the heap grew by %d MiB after %d sessions with ids of 256 KiB, want under 10 MiB", grew>>20, answers)
	}
}
