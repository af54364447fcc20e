package proxy

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/identity"
)

// Fuzz targets for what the proxy reads from an upstream: the Location of
// a trailing-slash redirect, and the response it passes on.

func fuzzHandler(t testing.TB, upstream string, rt http.RoundTripper) *handler {
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Options{Upstream: u, Transport: rt})
	if err != nil {
		t.Fatal(err)
	}
	return h.(*handler)
}

// oneSlash reports whether a and b differ by exactly one trailing slash.
func oneSlash(a, b string) bool { return a+"/" == b || a == b+"/" }

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func FuzzSlashRedirect(f *testing.F) {
	upstreams := []string{
		"http://up.example:8080/mcp",
		"http://up.example:8080/mcp/",
		"http://127.0.0.1:3000/",
		"https://up.example/a%2Fb/mcp?key=1",
		"http://[::1]:3000/m%C3%A9/mcp",
	}
	for _, loc := range []string{
		"/mcp/", "/mcp", "http://up.example:8080/mcp/", "//up.example:8080/mcp/?sessionId=1#f", "mcp/", "./",
		"http://evil.example/mcp/", "https://up.example:8080/mcp/", "http://u@up.example:8080/mcp/",
		"/mcp%2F", "/mc%70/", "/mcp/../mcp/", "/MCP/", "/mcp//", "/mcp/?a b", "/mcp/?a=1&b=%zz", "",
		"http://up.example:8080:80/mcp/", "/mcp/\r\nX: y", "http:/mcp/", "http:mcp/", "/a%2Fb/mcp/", "/a/b/mcp/",
		"/", "/mé/mcp/", "/m%C3%A9/mcp", "/m%c3%a9/mcp",
	} {
		for i := range upstreams {
			f.Add(loc, 307, "sessionId=abc", uint8(i))
		}
	}
	f.Add("/mcp/", 308, "", uint8(0))
	f.Add("/mcp/", 301, "", uint8(0))
	f.Add("/mcp/", 302, "x=1;y=2", uint8(0))
	hs := make([]*handler, len(upstreams))
	for i, s := range upstreams {
		hs[i] = fuzzHandler(f, s, nil)
	}
	f.Fuzz(func(t *testing.T, loc string, status int, query string, which uint8) {
		if strings.ContainsFunc(query, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '#' }) {
			return // not a query net/http's server lets through
		}
		h := hs[int(which)%len(hs)]
		u := &url.URL{RawQuery: query}
		h.target(u)
		before := u.String()

		// The redirect RoundTripper, in front of an upstream that answers
		// the first request with the redirect and records the second.
		var sent []*http.Request
		rt := slashRedirects{next: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			sent = append(sent, r)
			if len(sent) == 1 {
				return &http.Response{StatusCode: status, Header: http.Header{"Location": {loc}}, Body: http.NoBody, Request: r}, nil
			}
			return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
		})}
		req := &http.Request{Method: http.MethodPost, URL: u, Header: http.Header{}, ContentLength: 2,
			Body:    io.NopCloser(strings.NewReader("{}")),
			GetBody: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("{}")), nil }}
		if _, err := rt.RoundTrip(req); err != nil {
			t.Fatal(err)
		}
		if u.String() != before {
			t.Fatalf("the request URL changed from %s to %s", before, u)
		}
		got := slashRedirect(u, &http.Response{StatusCode: status, Header: http.Header{"Location": {loc}}})
		if followed := len(sent) == 2; followed != (got != nil) {
			t.Fatalf("%s: Location %q: followed %v, slashRedirect %v", u, loc, followed, got)
		}
		if got == nil {
			return
		}
		if status != http.StatusTemporaryRedirect && status != http.StatusPermanentRedirect {
			t.Fatalf("status %d followed to %s", status, got)
		}
		// The same origin, no user info, no fragment.
		if got.Scheme != u.Scheme || got.Host != u.Host || got.User != nil || got.Fragment != "" || got.Opaque != "" {
			t.Fatalf("%s: Location %q followed to %s", u, loc, got)
		}
		// A path that differs by one trailing slash, escaped and decoded.
		p, gp := u.EscapedPath(), got.EscapedPath()
		if !oneSlash(p, gp) || !oneSlash(u.Path, got.Path) {
			t.Fatalf("%s: Location %q followed to path %q (%q), from %q (%q)", u, loc, gp, got.Path, p, u.Path)
		}
		if strings.Contains(got.RawQuery, " ") {
			t.Fatalf("a Location with a space was followed: %q", got)
		}
		// What goes on the wire for it: one request to the same host, with
		// the redirect's path and query and the body again, no header
		// injected.
		again := sent[1]
		if again.URL.String() != got.String() {
			t.Fatalf("followed to %s, want %s", again.URL, got)
		}
		var wire bytes.Buffer
		if err := again.Write(&wire); err != nil {
			t.Fatalf("writing the followed request: %v", err)
		}
		if bytes.Count(wire.Bytes(), []byte("\r\n\r\n")) != 1 || !bytes.HasSuffix(wire.Bytes(), []byte("\r\n\r\n{}")) {
			t.Fatalf("request %q", wire.Bytes())
		}
		r, err := http.ReadRequest(bufio.NewReader(&wire))
		if err != nil {
			t.Fatalf("request %q does not parse: %v", wire.Bytes(), err)
		}
		trim := func(s string) string { return strings.TrimSuffix(s, "?") }
		if r.Host != u.Host || trim(r.RequestURI) != trim(got.RequestURI()) || r.URL.Path != got.Path || r.URL.RawQuery != got.RawQuery {
			t.Fatalf("request %q: host %q, URI %q, want %q %q", wire.Bytes(), r.Host, r.RequestURI, u.Host, got.RequestURI())
		}
	})
}

// fuzzConn is an upstream connection that answers r to a request.
type fuzzConn struct {
	r     io.Reader
	asked chan struct{} // closed by the first write
	once  sync.Once
}

func newFuzzConn(raw []byte) *fuzzConn {
	return &fuzzConn{r: bytes.NewReader(raw), asked: make(chan struct{})}
}

func (c *fuzzConn) Read(p []byte) (int, error) {
	<-c.asked // a server answers once asked: the transport drops an answer that comes first
	return c.r.Read(p)
}

func (c *fuzzConn) Write(p []byte) (int, error) {
	c.once.Do(func() { close(c.asked) })
	return len(p), nil
}

func (c *fuzzConn) Close() error                     { return nil }
func (c *fuzzConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *fuzzConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *fuzzConn) SetDeadline(time.Time) error      { return nil }
func (c *fuzzConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fuzzConn) SetWriteDeadline(time.Time) error { return nil }

// hopByHop are the response headers a proxy never passes on (RFC 9110
// §7.6.1), besides those the upstream's Connection header names.
var hopByHop = map[string]bool{
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true,
	"Proxy-Authenticate": true, "Proxy-Authorization": true, "Te": true,
	"Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

// listed reports whether a Connection header (its values) names k.
func listed(conn []string, k string) bool {
	for _, v := range conn {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), k) {
				return true
			}
		}
	}
	return false
}

// FuzzUpstreamResponse feeds arbitrary bytes, as an upstream's answer,
// through the proxy to a client: the transport reads them, the proxy
// passes the response on.
func FuzzUpstreamResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
		"HTTP/1.1 200 OK\r\nConnection: X-Hop, keep-alive\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nMcp-Session-Id: s\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n4\r\nbody\r\n0\r\nX-Checksum: 42\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nevent: message\ndat\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nspoof",
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
		"HTTP/1.0 200 OK\r\n\r\nclose-delimited",
		"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
		"HTTP/1.1 307 Temporary Redirect\r\nLocation: /mcp/\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
		"HTTP/1.1 999 X\r\nProxy-Connection: x\r\nTe: y\r\nProxy-Authenticate: z\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nWWW-Authenticate: Bearer x\r\nAccess-Control-Allow-Origin: *\r\nSet-Cookie: a=1\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer resource_metadata=\"https://evil.example/\"\r\nContent-Length: 0\r\n\r\n",
		"garbage\r\n\r\n", "",
	} {
		f.Add([]byte(s), false)
	}
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody"), true)
	var raw []byte // what the next connection to the upstream reads
	tr := NewTransport()
	tr.DisableKeepAlives = true // a connection per exchange: nothing is left from the last input
	tr.DialContext = func(context.Context, string, string) (net.Conn, error) {
		return newFuzzConn(raw), nil
	}
	h := fuzzHandler(f, "http://up.example:8080/mcp", tr)
	f.Fuzz(func(t *testing.T, in []byte, isHead bool) {
		raw = in
		method := http.MethodPost
		if isHead {
			method = http.MethodHead
		}
		// What net/http makes of the bytes, for comparison; 0: no
		// response the proxy may pass on. Informational answers (1xx)
		// are skipped; 101, and a status net/http's server would not
		// write, are refused.
		wantStatus, wantBody, wantErr := 0, []byte(nil), error(nil)
		var want *http.Response
		{
			br := bufio.NewReader(bytes.NewReader(raw))
			req := &http.Request{Method: method}
			resp, err := http.ReadResponse(br, req)
			for err == nil && resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != 101 {
				resp, err = http.ReadResponse(br, req)
			}
			// An upstream's 401 or 407 is refused too (SEC-123).
			if err == nil && resp.StatusCode >= 200 && resp.StatusCode <= 999 && resp.StatusCode != 401 && resp.StatusCode != 407 {
				want, wantStatus = resp, resp.StatusCode
				wantBody, wantErr = io.ReadAll(resp.Body)
			}
		}

		rec := httptest.NewRecorder()
		r := httptest.NewRequest(method, "/mcp", strings.NewReader("{}"))
		// As under net/http's server, where a broken answer aborts the
		// client's connection.
		r = r.WithContext(context.WithValue(identity.WithCaller(r.Context(), alice), http.ServerContextKey, &http.Server{}))
		aborted := func() (aborted bool) {
			defer func() {
				if v := recover(); v != nil {
					if v != http.ErrAbortHandler {
						panic(v)
					}
					aborted = true
				}
			}()
			h.ServeHTTP(rec, r)
			return false
		}()
		res := rec.Result()
		if wantStatus == 0 {
			if res.StatusCode != http.StatusBadGateway {
				t.Fatalf("%q: status %d, want 502: net/http reads no response", raw, res.StatusCode)
			}
			return
		}
		if res.StatusCode != wantStatus {
			t.Fatalf("%q: status %d passed as %d", raw, wantStatus, res.StatusCode)
		}
		// A body that breaks off aborts the client's connection; a
		// whole one is passed on as it is.
		if aborted != (wantErr != nil) {
			t.Fatalf("%q: aborted %v, net/http's read: %v", raw, aborted, wantErr)
		}
		if !aborted && !isHead && !bytes.Equal(rec.Body.Bytes(), wantBody) {
			t.Fatalf("%q: body %q passed as %q", raw, wantBody, rec.Body.Bytes())
		}
		// No hop-by-hop header passes, nor one that Connection names, nor
		// one by which the upstream speaks for the gateway's origin
		// (SEC-121, SEC-123); every other one passes unchanged.
		upConn := want.Header["Connection"]
		for k, vv := range res.Header {
			if k == "Trailer" && len(want.Trailer) > 0 {
				continue // the proxy's own, for the trailers it passes
			}
			if hopByHop[k] || listed(upConn, k) || originHeader(k) {
				t.Fatalf("%q: header %s: %q passed", raw, k, vv)
			}
			if !slices.Equal(vv, want.Header[k]) {
				t.Fatalf("%q: header %s: %q passed as %q", raw, k, want.Header[k], vv)
			}
		}
		for k := range want.Header {
			if _, ok := res.Header[k]; !ok && !hopByHop[k] && !listed(upConn, k) && !originHeader(k) {
				t.Fatalf("%q: header %s dropped", raw, k)
			}
		}
	})
}
