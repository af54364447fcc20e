package proxy

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// NewTransport returns the default transport to an upstream: enough idle
// connections for a busy gateway (http.DefaultTransport keeps 2 per host,
// so that a gateway under load dials and closes connections all the
// time), keep-alive, a 5 s dial timeout, HTTP/2 when an https upstream
// offers it, no proxy from the environment, no transparent compression
// (encodings pass through unchanged), and at most 64 KiB of response head,
// as the gateway takes from its own clients: net/http bounds the head's
// bytes, not its fields, and 1 MiB of short distinct fields, parsed then
// copied for the client, held about 60 MiB for as long as the upstream
// kept the answer open (SEC-211).
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           1024,
		MaxIdleConnsPerHost:    256,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    5 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 64 << 10,
		DisableCompression:     true,
	}
}

// Buffers of the event streams (GETs), which hold them while idle: an MCP
// client keeps its standalone stream open for as long as it runs, and a
// gateway holds thousands. ReverseProxy's default copy buffer is 32 KiB
// and the Transport's buffers 4 KiB each way: 64 KB of heap per idle
// stream in all, 30 KB with these (TestSEC81_IdleStreamHeap). A copy
// buffer larger than net/http's 2 KiB response buffer goes to the client
// as one chunk; one of 2 KiB is copied into it first. Measured with
// BenchmarkProxyEventStream (a busy machine, two runs each), a stream of
// 16 KiB events: 240–262 MB/s with a 2 KiB copy buffer, 410–437 with
// 4 KiB, 461–551 with 32 KiB; events of 200 bytes: the same with each. A
// GET answered with one 4 MiB body, which no MCP server sends, is the
// price: 390–415 MB/s against 910. The request head of a GET (a few
// headers, the identity token) rarely needs more than streamWriteBuffer,
// and the response head is read in pieces when it does not fit.
const (
	streamCopyBuffer  = 4 << 10
	streamReadBuffer  = 1 << 10
	streamWriteBuffer = 2 << 10
)

// streamTransport is the RoundTripper of the event streams: a copy of rt
// (NewTransport when nil), when it is an *http.Transport, with small
// buffers unless it sets its own; any other rt as it is.
func streamTransport(rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		rt = NewTransport()
	}
	t, ok := rt.(*http.Transport)
	if !ok {
		return rt
	}
	t = t.Clone()
	if t.ReadBufferSize == 0 {
		t.ReadBufferSize = streamReadBuffer
	}
	if t.WriteBufferSize == 0 {
		t.WriteBufferSize = streamWriteBuffer
	}
	return t
}

// streamBuffers gives each event stream a copy buffer of its own, held for
// as long as the stream is open; no pool, since a stream lives long.
type streamBuffers struct{}

func (streamBuffers) Get() []byte { return make([]byte, streamCopyBuffer) }
func (streamBuffers) Put([]byte)  {}

// transportFor returns the RoundTripper of Options: rt, or NewTransport;
// an *http.Transport (a copy of the caller's) waits at most timeout for
// the response headers.
func transportFor(rt http.RoundTripper, timeout time.Duration) http.RoundTripper {
	if rt == nil {
		rt = NewTransport()
	}
	if t, ok := rt.(*http.Transport); ok && t.ResponseHeaderTimeout == 0 {
		t = t.Clone()
		t.ResponseHeaderTimeout = timeout
		rt = t
	}
	return slashRedirects{next: rt}
}

// headerTimeout reports whether err is the transport giving up on the
// response headers (ResponseHeaderTimeout): the request went out and no
// answer came in time. A dial or TLS handshake that times out means the
// upstream cannot be reached (502), as a refused connection does.
func headerTimeout(err error) bool {
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		return false
	}
	if op, ok := errors.AsType[*net.OpError](err); ok && op.Op == "dial" {
		return false
	}
	return !strings.Contains(err.Error(), "TLS handshake")
}

// slashRedirects follows, once, a 307 or 308 redirect to the same path
// with or without a trailing slash (a server mounted at /mcp/ redirects
// /mcp): the request body is in memory (GetBody) and is sent again. Any
// other redirect reaches the client unchanged.
type slashRedirects struct{ next http.RoundTripper }

func (t slashRedirects) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	loc := slashRedirect(req.URL, resp)
	if loc == nil || (req.Body != nil && req.GetBody == nil) {
		return resp, nil
	}
	again := req.Clone(req.Context())
	again.URL = loc
	if req.GetBody != nil {
		if again.Body, err = req.GetBody(); err != nil {
			return resp, nil
		}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	resp.Body.Close()
	return t.next.RoundTrip(again)
}

// CloseIdleConnections passes the call on to the transport behind, as
// http.Client's does.
func (t slashRedirects) CloseIdleConnections() {
	if c, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// slashRedirect returns where resp redirects a request to u when it is a
// 307 or 308 to the same scheme, host and path but for a trailing slash.
func slashRedirect(u *url.URL, resp *http.Response) *url.URL {
	if resp.StatusCode != http.StatusTemporaryRedirect && resp.StatusCode != http.StatusPermanentRedirect {
		return nil
	}
	l := resp.Header.Get("Location")
	if l == "" || strings.ContainsAny(l, " \t") {
		return nil // a space would end up in the request line
	}
	loc, err := u.Parse(l)
	if err != nil || loc.Scheme != u.Scheme || loc.Host != u.Host || loc.User != nil {
		return nil
	}
	p, lp := u.EscapedPath(), loc.EscapedPath()
	if lp != p+"/" && p != lp+"/" {
		return nil
	}
	loc.Fragment = ""
	return loc
}

// copyBuffers recycles the buffers ReverseProxy copies answers with;
// without a BufferPool it allocates 32 KiB per answer. Measured:
// BenchmarkProxyCopyBuffers, 75–78 µs and 17.5 KB per request pooled
// against 82–86 µs and 50 KB allocated (three runs each); bench/mcpload
// -target proxy, 325 KB allocated per proxied request in the whole
// process against 355 KB (the direct calls: 311 KB).
var copyBuffers = &bufferPool{}

type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }
