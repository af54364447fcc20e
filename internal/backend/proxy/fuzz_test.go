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
	"testing"
	"time"
)

// Fuzz targets for what the proxy reads from an upstream: the Location of
// a trailing-slash redirect, and the response its own HTTP/1.1 client
// reads and passes on.

func fuzzHandler(t testing.TB, upstream string) *handler {
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Options{Upstream: u})
	if err != nil {
		t.Fatal(err)
	}
	return h.(*handler)
}

// oneSlash reports whether a and b differ by exactly one trailing slash.
func oneSlash(a, b string) bool { return a+"/" == b || a == b+"/" }

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
		hs[i] = fuzzHandler(f, s)
	}
	f.Fuzz(func(t *testing.T, loc string, status int, query string, which uint8) {
		if strings.ContainsFunc(query, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '#' }) {
			return // not a query net/http's server lets through
		}
		h := hs[int(which)%len(hs)]
		u := h.target(&http.Request{URL: &url.URL{RawQuery: query}})
		before := u.String()
		resp := &http.Response{StatusCode: status, Header: http.Header{"Location": {loc}}}
		got := slashRedirect(u, resp)
		if u.String() != before {
			t.Fatalf("the request URL changed from %s to %s", before, u)
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
		// What the own client writes for it: one request to the same
		// host, with the redirect's path and query, no header injected.
		o := &outbound{method: http.MethodPost, url: got, in: http.Header{}, body: []byte("{}")}
		head := h.appendHead(nil, o)
		if !bytes.HasSuffix(head, []byte("\r\n\r\n")) || bytes.Count(head, []byte("\r\n\r\n")) != 1 {
			t.Fatalf("head %q", head)
		}
		first, rest, _ := bytes.Cut(head, []byte("\r\n"))
		if !bytes.HasPrefix(first, []byte("POST "+got.EscapedPath())) || !bytes.HasSuffix(first, []byte(" HTTP/1.1")) ||
			!bytes.HasPrefix(rest, []byte("Host: "+u.Host+"\r\n")) || bytes.ContainsAny(first, "\r\n") {
			t.Fatalf("head %q", head)
		}
		if strings.Contains(got.RawQuery, " ") {
			t.Fatalf("a Location with a space was followed: %q", got)
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
		if err != nil {
			t.Fatalf("head %q does not parse: %v", head, err)
		}
		// An empty query ("?") is not written: the same resource.
		if req.Host != u.Host || req.RequestURI != strings.TrimSuffix(got.RequestURI(), "?") || req.URL.Path != got.Path || req.URL.RawQuery != got.RawQuery {
			t.Fatalf("head %q: host %q, URI %q, want %q %q", head, req.Host, req.RequestURI, u.Host, got.RequestURI())
		}
	})
}

// fuzzConn is an upstream connection that has sent r.
type fuzzConn struct {
	r      io.Reader
	closed bool
}

func (c *fuzzConn) Read(p []byte) (int, error) {
	if c.closed {
		return 0, net.ErrClosed
	}
	return c.r.Read(p)
}
func (c *fuzzConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *fuzzConn) Close() error                     { c.closed = true; return nil }
func (c *fuzzConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *fuzzConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *fuzzConn) SetDeadline(time.Time) error      { return nil }
func (c *fuzzConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fuzzConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzUpstreamResponse feeds arbitrary bytes, as an upstream's answer, to
// the own HTTP/1.1 client and passes the response on as the proxy does.
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
		"garbage\r\n\r\n", "",
	} {
		f.Add([]byte(s), false)
	}
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody"), true)
	h := fuzzHandler(f, "http://up.example:8080/mcp")
	c := h.h1
	f.Fuzz(func(t *testing.T, raw []byte, isHead bool) {
		method := http.MethodPost
		if isHead {
			method = http.MethodHead
		}
		// What net/http makes of the bytes, for comparison.
		wantStatus, wantBody, wantErr := 0, []byte(nil), error(nil)
		{
			br := bufio.NewReader(bytes.NewReader(raw))
			req := &http.Request{Method: method}
			resp, err := http.ReadResponse(br, req)
			for err == nil && resp.StatusCode < 200 && resp.StatusCode != 101 {
				resp, err = http.ReadResponse(br, req)
			}
			if err == nil && resp.StatusCode != 101 {
				wantStatus = resp.StatusCode
				wantBody, wantErr = io.ReadAll(resp.Body)
			}
		}

		conn := &fuzzConn{r: bytes.NewReader(raw)}
		pc := &h1Conn{nc: conn, lim: headLimit{r: conn, n: -1}}
		pc.br = bufio.NewReaderSize(&pc.lim, 8<<10)
		o := &outbound{method: method, url: h.upstream, in: http.Header{}}
		resp, err := c.exchange(context.Background(), pc, o, []byte(method+" /mcp HTTP/1.1\r\nHost: up.example:8080\r\n\r\n"))
		if err != nil {
			if wantStatus != 0 {
				t.Fatalf("%q: %v, but net/http reads a %d", raw, err, wantStatus)
			}
			return
		}
		if resp.StatusCode < 200 || resp.StatusCode != wantStatus {
			t.Fatalf("%q: status %d, net/http reads %d", raw, resp.StatusCode, wantStatus)
		}
		upConn := resp.Header["Connection"]
		rec := httptest.NewRecorder()
		r := httptest.NewRequest(method, "/mcp", nil)
		aborted := func() (aborted bool) {
			defer func() {
				if v := recover(); v != nil {
					if v != http.ErrAbortHandler {
						panic(v)
					}
					aborted = true
				}
			}()
			h.respond(rec, r, resp)
			return false
		}()
		c.mu.Lock()
		idle := len(c.idle)
		c.mu.Unlock()
		resp.Body.Close()
		c.mu.Lock()
		pooled := len(c.idle) > idle
		clear(c.idle)
		c.idle = c.idle[:0]
		c.mu.Unlock()

		// A body that breaks off aborts the client's connection; a
		// whole one is passed on as it is.
		if aborted != (wantErr != nil) {
			t.Fatalf("%q: aborted %v, net/http's read: %v", raw, aborted, wantErr)
		}
		res := rec.Result()
		if res.StatusCode != resp.StatusCode {
			t.Fatalf("%q: status %d passed as %d", raw, resp.StatusCode, res.StatusCode)
		}
		if !aborted && !isHead && !bytes.Equal(rec.Body.Bytes(), wantBody) {
			t.Fatalf("%q: body %q passed as %q", raw, wantBody, rec.Body.Bytes())
		}
		// No hop-by-hop header passes, nor one that Connection names;
		// every other one passes unchanged.
		for k, vv := range res.Header {
			if k == "Trailer" && len(resp.Trailer) > 0 {
				continue // the proxy's own, for the trailers it passes
			}
			if hopByHop[k] || listed(upConn, k) {
				t.Fatalf("%q: header %s: %q passed", raw, k, vv)
			}
			if !slices.Equal(vv, resp.Header[k]) {
				t.Fatalf("%q: header %s: %q passed as %q", raw, k, resp.Header[k], vv)
			}
		}
		for k := range resp.Header {
			if _, ok := res.Header[k]; !ok && !hopByHop[k] && !listed(upConn, k) {
				t.Fatalf("%q: header %s dropped", raw, k)
			}
		}

		// A connection goes back to the pool only after a whole answer
		// of known length, with nothing after it: bytes an upstream sent
		// beyond its answer must never be read as the answer to the next
		// request (of another user).
		if pooled == conn.closed {
			t.Fatalf("%q: pooled %v and closed %v", raw, pooled, conn.closed)
		}
		if pooled {
			if aborted || resp.Close || pc.br.Buffered() != 0 {
				t.Fatalf("%q: pooled, with aborted %v, close %v, %d bytes buffered", raw, aborted, resp.Close, pc.br.Buffered())
			}
			if rest, _ := io.ReadAll(conn.r); len(raw) <= 8<<10 && len(rest) != 0 {
				t.Fatalf("%q: pooled with %q unread", raw, rest)
			}
		}
	})
}
