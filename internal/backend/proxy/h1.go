package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// h1Client is the proxy's own HTTP/1.1 client to a plain-http upstream.
//
// Why not http.Transport: it runs every exchange through two goroutines
// per connection (writeLoop, readLoop) and channels between them and the
// caller, which on the benchmark machine cost more CPU per proxied request
// than the proxy's own logic; this client writes the request and reads the
// answer in the handler's goroutine. It keeps what the Transport gave the
// proxy: keep-alive connections (at most maxIdleConns idle, closed after
// idleConnTimeout), a dial timeout, a bound on the response head, the
// header Timeout, and cancellation when the client goes away. It parses
// answers with http.ReadResponse, so framing (Content-Length, chunked,
// close-delimited, HEAD, 1xx) is net/http's. It speaks HTTP/1.1 only;
// https upstreams and custom transports go through net/http.
type h1Client struct {
	addr    string // host:port
	timeout time.Duration
	dialer  net.Dialer

	mu      sync.Mutex
	idle    []*h1Conn // the most recently used last
	reaping bool      // a reap is scheduled
}

type h1Conn struct {
	nc     net.Conn
	lim    headLimit // between nc and br
	br     *bufio.Reader
	idleAt time.Time
}

const (
	// maxHeadBytes bounds an upstream's status line and headers.
	maxHeadBytes = 1 << 20
	// probeAfter is how long a connection may sit idle before it is
	// checked (one system call) for a close by the upstream before it is
	// used again: many servers close idle connections after a few seconds,
	// and a request sent on such a connection could not be retried
	// safely, since a POST is not idempotent. http.Transport notices the
	// close with a read that is always pending, a goroutine per
	// connection. Below probeAfter the check is skipped, so it costs a
	// busy gateway nothing.
	probeAfter = 5 * time.Millisecond
)

func newH1Client(u *url.URL, timeout time.Duration) *h1Client {
	port := u.Port()
	if port == "" {
		port = "80"
	}
	return &h1Client{
		addr:    net.JoinHostPort(u.Hostname(), port),
		timeout: timeout,
		dialer:  net.Dialer{Timeout: min(dialTimeout, timeout), KeepAlive: 30 * time.Second},
	}
}

// errNothingWritten marks a failure before any byte of the request left.
type errNothingWritten struct{ error }

func (e errNothingWritten) Unwrap() error { return e.error }

// do sends o and reads the response head; the caller must close the body.
func (c *h1Client) do(ctx context.Context, o *outbound, head []byte) (*http.Response, error) {
	for retried := false; ; retried = true {
		pc, reused, err := c.get(ctx)
		if err != nil {
			return nil, err
		}
		resp, err := c.exchange(ctx, pc, o, head)
		if err == nil {
			return resp, nil
		}
		pc.nc.Close()
		// A kept-alive connection that fails before anything was written
		// cannot have delivered the request: one more try on a new one.
		if _, ok := errors.AsType[errNothingWritten](err); ok && reused && !retried && ctx.Err() == nil {
			continue
		}
		return nil, err
	}
}

// appendHead appends o's request line and headers: no http.Header is built
// for the request.
func (h *handler) appendHead(b []byte, o *outbound) []byte {
	b = append(b, o.method...)
	b = append(b, ' ')
	b = append(b, o.url.EscapedPath()...)
	if o.url.RawQuery != "" {
		b = append(b, '?')
		b = append(b, o.url.RawQuery...)
	}
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, o.url.Host...)
	b = append(b, "\r\n"...)
	conn := o.in["Connection"]
	for k, vv := range o.in {
		if !h.forward(k, conn) || !validName(k) {
			continue // net/http's server lets no invalid name through; a middleware might
		}
		for _, v := range vv {
			b = appendField(b, k, v)
		}
	}
	for i := 0; i < o.nids; i += 2 {
		b = appendField(b, o.ids[i], o.ids[i+1])
	}
	if len(o.body) > 0 || o.method == http.MethodPost || o.method == http.MethodPut || o.method == http.MethodPatch {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(o.body)), 10)
		b = append(b, "\r\n"...)
	}
	return append(b, "\r\n"...)
}

func appendField(b []byte, k, v string) []byte {
	b = append(b, k...)
	b = append(b, ": "...)
	if strings.IndexByte(v, '\r') >= 0 || strings.IndexByte(v, '\n') >= 0 {
		v = newlineToSpace.Replace(v) // as http.Header.Write does
	}
	b = append(b, v...)
	return append(b, "\r\n"...)
}

var newlineToSpace = strings.NewReplacer("\n", " ", "\r", " ")

// validName reports whether k is an RFC 9110 token.
func validName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// aLongTimeAgo is a deadline that has passed: it unblocks a read or write.
var aLongTimeAgo = time.Unix(1, 0)

// exchange writes the request on pc and reads the response head, within
// c.timeout, or until ctx ends (the client went away).
func (c *h1Client) exchange(ctx context.Context, pc *h1Conn, o *outbound, head []byte) (*http.Response, error) {
	pc.nc.SetDeadline(time.Now().Add(c.timeout))
	stop := context.AfterFunc(ctx, func() { pc.nc.SetDeadline(aLongTimeAgo) })
	fail := func(err error) (*http.Response, error) {
		stop()
		switch {
		case ctx.Err() != nil:
			return nil, context.Cause(ctx)
		case errors.Is(err, os.ErrDeadlineExceeded):
			return nil, fmt.Errorf("%w (%v)", errHeaderTimeout, c.timeout)
		}
		return nil, err
	}
	// One write for head and body (writev), as the upstream sees from a
	// direct client.
	bufs := net.Buffers{head, o.body}
	if n, err := bufs.WriteTo(pc.nc); err != nil {
		if n == 0 {
			err = errNothingWritten{err}
		}
		return fail(err)
	}
	req := &http.Request{Method: o.method, URL: o.url} // for ReadResponse: HEAD has no body
	pc.lim.n = maxHeadBytes
	resp, err := http.ReadResponse(pc.br, req)
	for err == nil && resp.StatusCode < 200 {
		if resp.StatusCode == http.StatusSwitchingProtocols {
			return fail(errors.New("upstream switched protocols, which the proxy never asks for"))
		}
		resp, err = http.ReadResponse(pc.br, req) // 100, 103: not passed on
	}
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("upstream closed the connection: %w", err)
		}
		return fail(err)
	}
	pc.lim.n = -1
	// The body may take as long as it likes (an SSE stream). Should the
	// client leave meanwhile, stop's func still ends the exchange: if it
	// ran before this line, ctx.Err() says so below.
	pc.nc.SetDeadline(time.Time{})
	if ctx.Err() != nil {
		return fail(ctx.Err())
	}
	resp.Body = &h1Body{
		rc:   resp.Body,
		c:    c,
		pc:   pc,
		stop: stop,
		keep: !resp.Close,
		eof:  resp.Body == http.NoBody,
	}
	return resp, nil
}

// h1Body is a response body; closing it returns the connection to the
// pool when the body was read to its end, or closes it.
type h1Body struct {
	rc     io.ReadCloser // http.ReadResponse's body; never closed, see Close
	c      *h1Client
	pc     *h1Conn
	stop   func() bool
	keep   bool
	eof    bool
	closed bool
}

func (b *h1Body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

// Buffered is what has arrived from the upstream but not been read: when
// it is 0 the next Read may wait for the network.
func (b *h1Body) Buffered() int { return b.pc.br.Buffered() }

// Close does not close rc, which would read the rest of the body: an SSE
// stream never ends.
func (b *h1Body) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	// stop is false when the cancellation has run or is running: then
	// the connection's deadline is not ours to trust.
	if b.stop() && b.keep && b.eof && b.pc.br.Buffered() == 0 {
		b.c.put(b.pc)
		return nil
	}
	return b.pc.nc.Close()
}

// get returns an idle connection, or dials one.
func (c *h1Client) get(ctx context.Context) (pc *h1Conn, reused bool, err error) {
	now := time.Now()
	c.mu.Lock()
	for n := len(c.idle); n > 0; n = len(c.idle) {
		pc = c.idle[n-1]
		c.idle[n-1] = nil
		c.idle = c.idle[:n-1]
		c.mu.Unlock()
		idle := now.Sub(pc.idleAt)
		if idle < idleConnTimeout && (idle < probeAfter || alive(pc.nc)) {
			return pc, true, nil
		}
		pc.nc.Close()
		c.mu.Lock()
	}
	c.mu.Unlock()
	nc, err := c.dialer.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return nil, false, err
	}
	pc = &h1Conn{nc: nc, lim: headLimit{r: nc, n: -1}}
	pc.br = bufio.NewReaderSize(&pc.lim, 8<<10)
	return pc, false, nil
}

// put keeps pc for another request, unless maxIdleConns are idle already.
func (c *h1Client) put(pc *h1Conn) {
	pc.idleAt = time.Now()
	c.mu.Lock()
	if len(c.idle) >= maxIdleConns {
		c.mu.Unlock()
		pc.nc.Close()
		return
	}
	c.idle = append(c.idle, pc)
	schedule := !c.reaping
	c.reaping = true
	c.mu.Unlock()
	if schedule {
		time.AfterFunc(idleConnTimeout, c.reap)
	}
}

// reap closes the connections idle for idleConnTimeout; it runs while
// there are idle connections, one timer per client, not per request.
func (c *h1Client) reap() {
	now := time.Now()
	var old []*h1Conn
	c.mu.Lock()
	// The oldest are first.
	i := 0
	for i < len(c.idle) && now.Sub(c.idle[i].idleAt) >= idleConnTimeout {
		i++
	}
	old = append(old, c.idle[:i]...)
	n := copy(c.idle, c.idle[i:])
	clear(c.idle[n:])
	c.idle = c.idle[:n]
	c.reaping = n > 0
	c.mu.Unlock()
	for _, pc := range old {
		pc.nc.Close()
	}
	if n > 0 {
		time.AfterFunc(idleConnTimeout/2, c.reap)
	}
}

// headLimit bounds the bytes read while n ≥ 0 (the response head).
type headLimit struct {
	r io.Reader
	n int64
}

var errHeadTooLarge = errors.New("upstream response head too large")

func (l *headLimit) Read(p []byte) (int, error) {
	if l.n < 0 {
		return l.r.Read(p)
	}
	if l.n == 0 {
		return 0, errHeadTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}
