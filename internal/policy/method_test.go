package policy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// counting is a backend that counts the requests that reach it.
type counting struct{ hits atomic.Int32 }

func (c *counting) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.hits.Add(1)
	w.WriteHeader(http.StatusTeapot)
}

func send(t *testing.T, method, url string, body io.Reader, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), method, url, body)
	for i := 0; i < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// SEC-30: only the methods the transport defines reach the backend; a
// denied tool cannot be called with PUT, PATCH or any other method.
func TestSEC30_OnlyTransportMethodsPass(t *testing.T) {
	be := &counting{}
	rec := &events{}
	srv := front(t, be, Options{Policy: testPolicy(), Audit: rec, Resource: "/mcp"}, bob)
	call := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"nuke"}}`
	for _, m := range []string{http.MethodPut, http.MethodPatch, http.MethodHead, http.MethodTrace, "PROPFIND", "post", "Get"} {
		resp, b := send(t, m, srv.URL, strings.NewReader(call), "Content-Type", "application/json")
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s: status %d, want 405", m, resp.StatusCode)
		}
		if got := resp.Header.Get("Allow"); got != "GET, POST, DELETE, OPTIONS" {
			t.Errorf("%s: Allow %q, want the transport's methods", m, got)
		}
		if m != http.MethodHead {
			if e := decodeError(t, b); e.Error.Code != -32600 || !strings.Contains(e.Error.Message, "method not allowed") {
				t.Errorf("%s: body %s, want a JSON-RPC -32600 \"method not allowed\"", m, b)
			}
		}
	}
	if n := be.hits.Load(); n != 0 {
		t.Errorf("the backend got %d requests of other methods, want none", n)
	}
	// The transport's own methods still pass (the denied POST is answered
	// by the policy, and audited).
	for _, m := range []string{http.MethodGet, http.MethodDelete} {
		if resp, _ := send(t, m, srv.URL, nil); resp.StatusCode != http.StatusTeapot {
			t.Errorf("%s without a body: status %d, want the backend's 418", m, resp.StatusCode)
		}
	}
	if resp, b := post(t, srv.URL, call); resp.StatusCode != http.StatusOK || decodeError(t, b).Error.Code != -32602 {
		t.Errorf("POST of a denied tool: %d %s, want 200 with -32602", resp.StatusCode, b)
	}
	if ev := rec.all(); len(ev) != 1 || ev[0].Tool != "nuke" {
		t.Errorf("audit events %+v, want the one denied POST", ev)
	}
}

// SEC-31: GET and DELETE carry no body; one that does is refused, since
// the policy reads only POST bodies.
func TestSEC31_BodyOnGetOrDeleteRefused(t *testing.T) {
	be := &counting{}
	srv := front(t, be, Options{Policy: testPolicy()}, bob)
	call := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"nuke"}}`
	for _, m := range []string{http.MethodGet, http.MethodDelete} {
		resp, b := send(t, m, srv.URL, strings.NewReader(call), "Content-Type", "application/json")
		if resp.StatusCode != http.StatusBadRequest || decodeError(t, b).Error.Code != -32600 {
			t.Errorf("%s with a body: %d %s, want 400 with -32600", m, resp.StatusCode, b)
		}
		// A body of unknown length (chunked) is a body too.
		resp, _ = send(t, m, srv.URL, io.MultiReader(strings.NewReader(call)))
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s with a chunked body: status %d, want 400", m, resp.StatusCode)
		}
	}
	if n := be.hits.Load(); n != 0 {
		t.Errorf("the backend got %d requests with a body, want none", n)
	}
	// An empty body announced as such is no body.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodDelete, srv.URL, http.NoBody)
	req.Header.Set("Content-Length", "0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTeapot {
		t.Errorf("DELETE with Content-Length 0: status %d, want the backend's 418", resp.StatusCode)
	}
}

// SEC-32: a request with two Mcp-Session-Id values is refused before any
// backend, whichever value a backend would read.
func TestSEC32_OneSessionIDOnly(t *testing.T) {
	be := &counting{}
	srv := front(t, be, Options{}, bob)
	for _, m := range []string{http.MethodGet, http.MethodDelete, http.MethodPost} {
		var body io.Reader
		if m == http.MethodPost {
			body = strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`)
		}
		resp, b := send(t, m, srv.URL, body, "Content-Type", "application/json", "Mcp-Session-Id", "a", "Mcp-Session-Id", "b")
		if resp.StatusCode != http.StatusBadRequest || decodeError(t, b).Error.Code != -32600 {
			t.Errorf("%s with two session ids: %d %s, want 400 with -32600", m, resp.StatusCode, b)
		}
	}
	if n := be.hits.Load(); n != 0 {
		t.Errorf("the backend got %d requests with two session ids, want none", n)
	}
}

// SEC-31: a GET or DELETE whose body is of unknown length but empty (a
// chunked body of no chunk, as a proxy in front may send for an HTTP/2
// request whose end came after its headers) is no body, and passes.
func TestSEC31_EmptyChunkedBodyPasses(t *testing.T) {
	be := &counting{}
	srv := front(t, be, Options{Policy: testPolicy()}, bob)
	for _, m := range []string{http.MethodGet, http.MethodDelete} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "%s / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n", m)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		conn.Close()
		if resp.StatusCode != http.StatusTeapot {
			t.Errorf("%s with an empty chunked body: status %d, want the backend's 418", m, resp.StatusCode)
		}
	}
}

// SEC-133: a POST reaches the backend only as the UTF-8 JSON the policy
// read: a charset other than UTF-8, another media type or parameter, two
// Content-Types, or a Content-Encoding are refused with 415, before the
// body is read; without a Content-Type, or labelled as JSON in UTF-8 in
// any case, it passes.
func TestSEC133_OnlyUTF8JSONBodiesPass(t *testing.T) {
	be := &counting{}
	srv := front(t, be, Options{Policy: testPolicy()}, bob)
	call := `{"jsonrpc":"2.0","id":1,"method":"ping"}`
	for _, h := range [][]string{
		{"Content-Type", "application/json; charset=utf-7"},
		{"Content-Type", "application/json; charset=UTF-16"},
		{"Content-Type", "application/json;charset=iso-8859-1"},
		{"Content-Type", "application/json; charset=utf-8; boundary=x"},
		{"Content-Type", "text/plain"},
		{"Content-Type", "application/json; charset="},
		{"Content-Type", "application/json", "Content-Type", "application/json; charset=utf-7"},
		{"Content-Type", "application/json", "Content-Encoding", "gzip"},
		{"Content-Type", "application/json", "Content-Encoding", "identity", "Content-Encoding", "br"},
	} {
		resp, b := send(t, http.MethodPost, srv.URL, strings.NewReader(call), h...)
		if resp.StatusCode != http.StatusUnsupportedMediaType || decodeError(t, b).Error.Code != -32600 {
			t.Errorf("POST with %q: %d %s, want 415 with a JSON-RPC -32600", h, resp.StatusCode, b)
		}
	}
	if n := be.hits.Load(); n != 0 {
		t.Fatalf("the backend got %d of the refused requests", n)
	}
	for _, h := range [][]string{
		nil,
		{"Content-Type", "application/json"},
		{"Content-Type", "Application/JSON; Charset=UTF-8"},
		{"Content-Type", "application/json", "Content-Encoding", "identity"},
	} {
		if resp, b := send(t, http.MethodPost, srv.URL, strings.NewReader(call), h...); resp.StatusCode != http.StatusTeapot {
			t.Errorf("POST with %q: %d %s, want the backend's 418", h, resp.StatusCode, b)
		}
	}
}
