package policy

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/bytebudget"
)

// SEC-122: a backend that lists a denied tool where the policy would not
// look, on the stream of another request, under another id, on the GET
// stream or compressed, never gets it to the client: a client matches an
// answer to its tools/list by id, whatever stream it came on, and
// net/http's client unpacks gzip by itself.
func TestSEC122_ToolsListedAnywhereFiltered(t *testing.T) {
	const list = `{"jsonrpc":"2.0","id":%s,"result":{"tools":[{"name":"nuke"},{"name":"fail"}]}}`
	listed := func(id string) string { return strings.Replace(list, "%s", id, 1) }
	for _, c := range []struct {
		name, method, body string
		backend            func(w http.ResponseWriter, r *http.Request)
	}{
		{"the stream of a tools/call", http.MethodPost, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fail"}}`,
			func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(w, "data: "+listed(`"x9"`)+"\n\n")
				io.WriteString(w, "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[]}}\n\n")
			}},
		{"the JSON answer of a ping, under another id", http.MethodPost, `{"jsonrpc":"2.0","id":1,"method":"ping"}`,
			func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, `[`+listed("7")+`,{"jsonrpc":"2.0","id":1,"result":{}}]`)
			}},
		{"a tools/list answered under another id", http.MethodPost, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
			func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, listed(`"zzz"`))
			}},
		{"the GET stream", http.MethodGet, "",
			func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(w, "event: message\ndata: "+listed("3")+"\n\n")
			}},
		{"a gzip answer", http.MethodPost, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
			func(w http.ResponseWriter, r *http.Request) {
				if ae := r.Header.Get("Accept-Encoding"); ae != "" {
					t.Errorf("the backend got Accept-Encoding %q, want none: an answer it packs cannot be filtered", ae)
				}
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Content-Encoding", "gzip")
				zw := gzip.NewWriter(w)
				io.WriteString(zw, listed("1"))
				zw.Close()
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := front(t, http.HandlerFunc(c.backend), Options{Policy: testPolicy()}, bob)
			var body io.Reader
			if c.body != "" {
				body = strings.NewReader(c.body)
			}
			req, _ := http.NewRequestWithContext(t.Context(), c.method, srv.URL, body)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			resp, err := http.DefaultClient.Do(req) // asks for gzip and unpacks it, as clients do
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if strings.Contains(string(b), "nuke") {
				t.Fatalf("%d %s: the denied tool nuke reached the client", resp.StatusCode, b)
			}
		})
	}
}

// SEC-122: an answer the policy cannot read (packed, or beyond what it
// holds) is replaced by an error that carries the id of the request it
// answers, whatever its method, so that the client's request ends with it
// instead of waiting for an answer that never comes.
func TestSEC122_RefusedAnswerKeepsTheRequestsID(t *testing.T) {
	big := `{"jsonrpc":"2.0","id":42,"result":{"contents":[{"uri":"file:///big","text":"` + strings.Repeat("a", maxHold) + `"}]}}`
	for _, c := range []struct {
		name    string
		backend func(w http.ResponseWriter, r *http.Request)
	}{
		{"packed", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Encoding", "gzip") // whatever the request asked for
			zw := gzip.NewWriter(w)
			io.WriteString(zw, `{"jsonrpc":"2.0","id":42,"result":{"contents":[]}}`)
			zw.Close()
		}},
		{"too large to hold", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, big)
		}},
		{"an event too large to hold", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "event: message\ndata: "+big+"\n\n")
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := front(t, http.HandlerFunc(c.backend), Options{Policy: testPolicy()}, bob)
			status, b := postRPC(t, srv.URL, `{"jsonrpc":"2.0","id":42,"method":"resources/read","params":{"uri":"file:///big"}}`)
			if !strings.Contains(b, `"id":42`) || !strings.Contains(b, listUnfiltered) {
				t.Fatalf("%d %.300s: want the policy's error under the request's id 42", status, b)
			}
		})
	}
}

// SEC-161: the JSON answers held to filter their tools are bounded all
// together, and each user to a share, not only each answer: past either
// an answer is refused as one too large is, with its request's id, and
// every answer gives back what it held once written.
func TestSEC161_HeldAnswersBounded(t *testing.T) {
	answer := `{"jsonrpc":"2.0","id":42,"result":{"contents":[{"uri":"file:///a","text":"` + strings.Repeat("a", 1000) + `"}]}}`
	h := Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, answer)
	}), Options{Policy: testPolicy()}).(*handler)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(identity.WithCaller(r.Context(), bob)))
	}))
	t.Cleanup(srv.Close)
	read := func() (int, string) {
		return postRPC(t, srv.URL, `{"jsonrpc":"2.0","id":42,"method":"resources/read","params":{"uri":"file:///a"}}`)
	}
	if status, body := read(); status != 200 || body != answer {
		t.Fatalf("an answer within the budget: %d %.100s, want it whole", status, body)
	}
	if n := h.held.Held(); n != 0 {
		t.Fatalf("%d bytes still counted as held after the answer was written, want 0", n)
	}
	for _, c := range []struct {
		name string
		held func()
	}{
		{"others hold nearly all of the budget", func() {
			h.held.Reserve("local:someone", maxHeldPerUser-50)
			h.held.Reserve("local:other", maxHeldPerUser-50)
			h.held.Reserve("local:third", maxHeldPerUser-50)
			h.held.Reserve("local:fourth", maxHeldPerUser-50)
		}},
		{"bob holds nearly all of his share", func() { h.held.Reserve(bob.User.ID, maxHeldPerUser-100) }},
	} {
		c.held()
		before := h.held.Held()
		status, body := read()
		if status != http.StatusBadGateway || !strings.Contains(body, `"id":42`) || !strings.Contains(body, listUnfiltered) {
			t.Errorf("%s: %d %s, want 502 with the request's id", c.name, status, body)
		}
		if n := h.held.Held(); n != before {
			t.Errorf("%s: the refused answer left %d bytes counted", c.name, n-before)
		}
		h.held = bytebudget.Budget{Total: maxHeldTotal, PerUser: maxHeldPerUser} // nothing held
	}
	if status, _ := read(); status != 200 {
		t.Errorf("with nothing held: %d, want 200", status)
	}
}

// postRPC posts one JSON-RPC message to url, as a streamable HTTP client
// does, and returns the answer's status and body.
func postRPC(t *testing.T, url, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// listThrough sends a tools/list through Wrap (testPolicy: carol may not
// call nuke) to a backend that answers ct and body, and returns what the
// client gets.
func listThrough(t *testing.T, ct string, body []byte) (int, string) {
	t.Helper()
	backend := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ct)
		w.Write(body)
	})
	srv := front(t, backend, Options{Policy: testPolicy()}, carol)
	return postRPC(t, srv.URL, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
}

func utf16LE(s string) []byte {
	b := []byte{0xff, 0xfe}
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u), byte(u>>8))
	}
	return b
}

// SEC-122: a backend cannot get a tool past the filter by writing what the
// gateway does not read and a client does: a field the event-stream reader
// does not know ("ï»¿data", which the TypeScript SDK's eventsource-parser
// takes for a byte order mark and a data field) is dropped; an answer in a
// charset other than UTF-8 (which Python's httpx decodes by) is refused;
// and a JSON answer the filter cannot parse that is no UTF-8 text (UTF-16,
// which Python's json.loads detects) is refused. Each passed nuke to the
// client before this change.
func TestSEC122_WhatTheFilterCannotReadDoesNotPass(t *testing.T) {
	const list = `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"nuke"},{"name":"echo"}]}}`
	for _, tc := range []struct {
		name, ct string
		body     []byte
	}{
		{"a field named with a false byte order mark", "text/event-stream", []byte("\u00ef\u00bb\u00bfdata: " + list + "\n\n")},
		{"an event stream in UTF-16", "text/event-stream; charset=utf-16", utf16LE("data: " + list + "\n\n")},
		{"a JSON answer in UTF-16", "application/json", utf16LE(list)},
		{"a JSON answer that says UTF-16", "application/json; charset=UTF-16", utf16LE(list)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, out := listThrough(t, tc.ct, tc.body)
			for _, nuke := range []string{"nuke", "n\x00u\x00k\x00e"} {
				if strings.Contains(out, nuke) {
					t.Errorf("the client got nuke: %d %q", status, out)
				}
			}
		})
	}
	// What the filter reads still passes, filtered.
	if status, out := listThrough(t, "text/event-stream; charset=UTF-8", []byte("data: "+list+"\n\n")); status != 200 || !strings.Contains(out, "echo") || strings.Contains(out, "nuke") {
		t.Errorf("an ordinary event stream: %d %q, want echo alone", status, out)
	}
}

// SEC-161: what the filter holds of an event stream's event under way is
// counted with the JSON answers held, in all and per user: past the
// budget the event is dropped and refused as one too large is, and its
// bytes are given back. Fails before this change: a stream's event (up to
// 16 MiB each) was held outside the budget.
func TestSEC161_HeldEventsCounted(t *testing.T) {
	event := "data: " + `{"jsonrpc":"2.0","id":42,"result":{"contents":[{"uri":"file:///a","text":"` + strings.Repeat("a", 4000) + `"}]}}` + "\n\n"
	h := Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 0; i < len(event); i += 1000 { // the event in pieces: held between them
			io.WriteString(w, event[i:min(i+1000, len(event))])
		}
	}), Options{Policy: testPolicy()}).(*handler)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(identity.WithCaller(r.Context(), bob)))
	}))
	t.Cleanup(srv.Close)
	read := func() string {
		_, body := postRPC(t, srv.URL, `{"jsonrpc":"2.0","id":42,"method":"resources/read","params":{"uri":"file:///a"}}`)
		return body
	}
	if body := read(); !strings.Contains(body, strings.Repeat("a", 4000)) {
		t.Fatalf("an event within the budget: %.100s, want it whole", body)
	}
	if n := h.held.Held(); n != 0 {
		t.Fatalf("%d bytes still counted as held after the stream, want 0", n)
	}
	h.held.Reserve(bob.User.ID, maxHeldPerUser-2000)
	before := h.held.Held()
	if body := read(); strings.Contains(body, strings.Repeat("a", 4000)) || !strings.Contains(body, listUnfiltered) {
		t.Errorf("an event past bob's share: %.200s, want it refused", body)
	}
	if n := h.held.Held(); n != before {
		t.Errorf("the refused event left %d bytes counted", n-before)
	}
}

// SEC-201: the request bodies held until their answers are written are
// bounded, each user's to a share: a client that sends 4 MiB bodies and
// reads no answer (or calls a tool that never answers) held 6 MB of the
// gateway's memory per connection, for as long as it liked. Past its
// share a user's next request gets 429 with Retry-After, another user's
// still passes, and each body is given back once its answer is written.
// Fails before: every request reached the backend.
func TestSEC201_HeldRequestBodiesBounded(t *testing.T) {
	release := make(chan struct{})
	var reached sync.WaitGroup
	h := Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.Header.Get("X-Test"), "hold") {
			reached.Done()
			<-release
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
	}), Options{}).(*handler)
	callers := map[string]*identity.Caller{"bob": bob, "eve": {User: identity.User{ID: "local:eve"}, ClientID: "c"}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(identity.WithCaller(r.Context(), callers[r.Header.Get("X-User")])))
	}))
	t.Cleanup(srv.Close)
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"pad":"` + strings.Repeat("x", DefaultMaxBodyBytes-200) + `"}}}`
	send := func(user, mode string) (int, http.Header) {
		req, _ := http.NewRequest("POST", srv.URL, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("X-User", user)
		req.Header.Set("X-Test", mode)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return 0, nil
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Header
	}
	held := maxBodiesPerUser / len(body)
	reached.Add(held)
	var done sync.WaitGroup
	for range held {
		done.Go(func() { send("bob", "hold") })
	}
	reached.Wait()
	if status, header := send("bob", ""); status != http.StatusTooManyRequests || header.Get("Retry-After") != "1" {
		t.Errorf("bob's request past his share, %d bodies held: %d, Retry-After %q; want 429 with Retry-After", held, status, header.Get("Retry-After"))
	}
	if status, _ := send("eve", ""); status != http.StatusOK {
		t.Errorf("another user's request meanwhile: %d, want 200", status)
	}
	close(release)
	done.Wait()
	if status, _ := send("bob", ""); status != http.StatusOK {
		t.Errorf("bob's request once his were answered: %d, want 200", status)
	}
	if n := h.bodies.Held(); n != 0 {
		t.Errorf("%d bytes of bodies still counted once every answer was written, want 0", n)
	}
}

// SEC-215: the head of a tools/call's answer, kept to read its outcome
// from (up to 1 MiB, JSON or the event under way), counts with the
// answers held, by user and in all, while the answer is written: a client
// that reads nothing keeps it. Past the budget the answer still passes
// whole, its outcome unread. Fails before: nothing counted.
func TestSEC215_OutcomeHeadCounted(t *testing.T) {
	for _, ct := range []string{"application/json", "text/event-stream"} {
		t.Run(ct, func(t *testing.T) {
			release := make(chan struct{})
			answer := `{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"` + strings.Repeat("x", 900<<10) + `"}]}}`
			if ct == "text/event-stream" {
				answer = "event: message\ndata: " + answer // the event under way, its blank line to come
			}
			ev := &events{}
			h := Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", ct)
				io.WriteString(w, answer)
				<-release
				if ct == "text/event-stream" {
					io.WriteString(w, "\n\n")
				}
			}), Options{Audit: ev}).(*handler)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				h.ServeHTTP(w, r.WithContext(identity.WithCaller(r.Context(), bob)))
			}))
			defer srv.Close()
			call := func() (int, int) {
				req, _ := http.NewRequest("POST", srv.URL, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"}}`))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "application/json, text/event-stream")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return 0, 0
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				return resp.StatusCode, len(b)
			}
			done := make(chan struct{})
			go func() { defer close(done); call() }()
			deadline := time.Now().Add(10 * time.Second)
			for h.held.Held() < 900<<10-freeSniff && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if n := h.held.Held(); n < 900<<10-freeSniff {
				t.Errorf("the head of an answer under way: %d bytes counted, want its 900 KiB but the first 4 KiB", n)
			}
			close(release)
			<-done
			if n := h.held.Held(); n != 0 {
				t.Errorf("%d bytes still counted once the answer was written, want 0", n)
			}
			// With bob's share all but spent, the answer passes whole.
			h.held.Reserve(bob.User.ID, maxHeldPerUser-1000)
			if status, n := call(); status != http.StatusOK || n < len(answer) {
				t.Errorf("an answer with the budget spent: %d, %d bytes; want 200 and all of it", status, n)
			}
			if n := h.held.Held(); n != maxHeldPerUser-1000 {
				t.Errorf("%d bytes counted after, want only the %d reserved before", n, maxHeldPerUser-1000)
			}
		})
	}
}

// SEC-215: with the answers held over budget (others' slow clients), a
// small answer's outcome is still read: the head's first 4 KiB are kept
// uncounted. Fails with the whole head counted: the call was audited as
// failed.
func TestSEC215_SmallAnswerOutcomeReadOverBudget(t *testing.T) {
	for _, ct := range []string{"application/json", "text/event-stream"} {
		t.Run(ct, func(t *testing.T) {
			ev := &events{}
			h := Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", ct)
				a := `{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"ok"}]}}`
				if ct == "text/event-stream" {
					a = "event: message\ndata: " + a + "\n\n"
				}
				io.WriteString(w, a)
			}), Options{Audit: ev}).(*handler)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				h.ServeHTTP(w, r.WithContext(identity.WithCaller(r.Context(), bob)))
			}))
			defer srv.Close()
			for i := 0; h.held.Reserve(fmt.Sprintf("local:other%d", i), maxHeldPerUser); i++ {
			}
			req, _ := http.NewRequest("POST", srv.URL, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"}}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if got := ev.all(); len(got) != 1 || got[0].Outcome != "ok" {
				t.Errorf("a successful call with the budget spent by others: audited %+v, want ok", got)
			}
		})
	}
}
