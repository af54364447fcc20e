package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/identity"
)

// Defaults of Options.
const (
	DefaultTimeout      = 30 * time.Second
	DefaultMaxBodyBytes = 4 << 20
)

// IdentityHeaders name the request headers that carry the verified caller
// to the backend. An empty field takes its default; "-" sends nothing for
// that field. Whatever the client sent under any of these names (and their
// underscore spellings) is removed first.
type IdentityHeaders struct {
	// User carries identity.User.ID, "<upstream>:<subject>", the only
	// stable identifier of the person. Default X-Forwarded-User.
	User string
	// PreferredUsername carries User.Username when it is set. Default
	// X-Forwarded-Preferred-Username.
	PreferredUsername string
	// Email carries User.Email only when User.EmailVerified. Default
	// X-Forwarded-Email.
	Email string
	// Groups carries User.Groups joined with ","; a group whose name holds
	// a comma is left out. Default X-Forwarded-Groups.
	Groups string
	// ClientID carries the OAuth client the caller uses. Default
	// X-Forwarded-Client-Id.
	ClientID string
}

func (h IdentityHeaders) withDefaults() IdentityHeaders {
	def := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
		if *v != "-" {
			*v = http.CanonicalHeaderKey(*v)
		}
	}
	def(&h.User, "X-Forwarded-User")
	def(&h.PreferredUsername, "X-Forwarded-Preferred-Username")
	def(&h.Email, "X-Forwarded-Email")
	def(&h.Groups, "X-Forwarded-Groups")
	def(&h.ClientID, "X-Forwarded-Client-Id")
	return h
}

func (h IdentityHeaders) names() []string {
	var out []string
	for _, n := range []string{h.User, h.PreferredUsername, h.Email, h.Groups, h.ClientID} {
		if n != "-" {
			out = append(out, n)
		}
	}
	return out
}

// Options configure the proxy.
type Options struct {
	// Upstream is the MCP endpoint of the backend, e.g.
	// http://127.0.0.1:3000/mcp. Every request goes to exactly this path.
	Upstream        *url.URL
	IdentityHeaders IdentityHeaders
	// Timeout bounds the wait for the upstream's response headers
	// (DefaultTimeout); a response body, such as an SSE stream, may then
	// run as long as it likes.
	Timeout time.Duration
	// MaxBodyBytes limits a request body (DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// Transport reaches the upstream; nil means NewTransport().
	Transport http.RoundTripper
	Logger    *slog.Logger
}

// NewTransport returns the default transport to an upstream: enough idle
// connections for a busy gateway (http.DefaultTransport keeps 2 per host),
// keep-alive, a 5 s dial timeout, no proxy from the environment, and no
// transparent compression, so that encodings pass through unchanged.
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
}

// handler is the proxy.
type handler struct {
	upstream *url.URL
	ids      IdentityHeaders
	strip    []string // identity header names, canonical
	maxBody  int64
	log      *slog.Logger
	rp       *httputil.ReverseProxy
	sessions *sessionOwners
}

// New returns the proxy to opts.Upstream. Mount it behind the resource
// guard: a request without a verified caller is refused with 500.
func New(opts Options) (http.Handler, error) {
	u := opts.Upstream
	if u == nil {
		return nil, errors.New("proxy: no upstream URL")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Fragment != "" {
		return nil, fmt.Errorf("proxy: upstream %q must be an absolute http or https URL without user info or fragment", u.Redacted())
	}
	u = &url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}
	if u.Path == "" {
		u.Path = "/"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.Transport == nil {
		opts.Transport = NewTransport()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h := &handler{
		upstream: u,
		ids:      opts.IdentityHeaders.withDefaults(),
		maxBody:  opts.MaxBodyBytes,
		log:      opts.Logger,
		sessions: newSessionOwners(100_000, 24*time.Hour, time.Now),
	}
	h.strip = h.ids.names()
	h.rp = &httputil.ReverseProxy{
		Rewrite:        h.rewrite,
		Transport:      &transport{next: opts.Transport, timeout: opts.Timeout},
		FlushInterval:  -1, // every write, so each SSE event leaves at once
		ErrorLog:       slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
		ErrorHandler:   h.upstreamError,
		ModifyResponse: h.recordSession,
		BufferPool:     bufferPool{},
	}
	return h, nil
}

// JSON-RPC error bodies; id is null because the proxy does not parse the
// request.
var (
	errNoCaller    = []byte(`{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"internal error"}}` + "\n")
	errTooLarge    = []byte(`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"request body too large"}}` + "\n")
	errBadBody     = []byte(`{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"could not read the request body"}}` + "\n")
	errUnavailable = []byte(`{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"upstream MCP server unavailable"}}` + "\n")
)

func writeError(w http.ResponseWriter, status int, body []byte) {
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(body)
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	caller := identity.FromContext(r.Context())
	if caller == nil {
		// The guard did not run: a wiring mistake, never forward.
		h.log.Error("proxy reached without a verified caller; is the resource guard in front?", "path", r.URL.Path)
		writeError(w, http.StatusInternalServerError, errNoCaller)
		return
	}
	if id := r.Header.Get(sessionHeader); id != "" && !h.sessions.allowed(id, caller.User.ID) {
		// SESS-3: not a session this user opened through this gateway.
		h.log.Info("session refused: unknown or opened by another user", "user", caller.User.ID)
		writeError(w, http.StatusNotFound, errNoSession)
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		if r.ContentLength > h.maxBody {
			w.Header().Set("Connection", "close")
			writeError(w, http.StatusRequestEntityTooLarge, errTooLarge)
			return
		}
		body, err := h.readBody(w, r)
		if err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				writeError(w, http.StatusRequestEntityTooLarge, errTooLarge)
				return
			}
			h.log.Info("reading the request body failed", "error", err)
			writeError(w, http.StatusBadRequest, errBadBody)
			return
		}
		r2 := new(http.Request)
		*r2 = *r
		r2.ContentLength = int64(len(body))
		r2.TransferEncoding = nil
		if len(body) == 0 {
			r2.Body = http.NoBody
		} else {
			r2.Body = io.NopCloser(bytes.NewReader(body))
			r2.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		}
		r = r2
	}
	h.rp.ServeHTTP(w, r)
}

// readBody reads the whole body, at most maxBody bytes.
func (h *handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	rd := http.MaxBytesReader(w, r.Body, h.maxBody)
	if r.ContentLength >= 0 {
		// Known length: one allocation; read one byte more to see a body
		// longer than announced.
		buf := make([]byte, r.ContentLength+1)
		n, err := io.ReadFull(rd, buf)
		switch {
		case err == nil:
			return nil, errors.New("request body longer than its Content-Length")
		case int64(n) == r.ContentLength && (err == io.ErrUnexpectedEOF || err == io.EOF):
			return buf[:n], nil
		case err == io.EOF:
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
	return io.ReadAll(rd)
}

// rewrite builds the outbound request. ReverseProxy has already removed
// hop-by-hop headers and Forwarded / X-Forwarded-{For,Host,Proto}.
func (h *handler) rewrite(pr *httputil.ProxyRequest) {
	out := pr.Out
	out.URL.Scheme = h.upstream.Scheme
	out.URL.Host = h.upstream.Host
	out.URL.Path = h.upstream.Path
	out.URL.RawPath = h.upstream.RawPath
	// out.URL.RawQuery is the client's query, cleaned by ReverseProxy.
	if h.upstream.RawQuery != "" {
		if out.URL.RawQuery == "" {
			out.URL.RawQuery = h.upstream.RawQuery
		} else {
			out.URL.RawQuery = h.upstream.RawQuery + "&" + out.URL.RawQuery
		}
	}
	out.Host = h.upstream.Host

	hd := out.Header
	hd.Del("Authorization") // PASS-2
	hd.Del("Cookie")
	hd.Del("Origin")
	hd.Del("Sec-Fetch-Site")
	// MCP never upgrades the connection; do not tunnel one.
	hd.Del("Connection")
	hd.Del("Upgrade")
	for _, n := range h.strip {
		hd.Del(n)
	}
	for k := range hd {
		if strings.IndexByte(k, '_') >= 0 && h.isIdentityName(strings.ReplaceAll(k, "_", "-")) {
			delete(hd, k)
		}
	}

	c := identity.FromContext(pr.In.Context())
	h.set(hd, h.ids.User, c.User.ID)
	h.set(hd, h.ids.PreferredUsername, c.User.Username)
	if c.User.EmailVerified {
		h.set(hd, h.ids.Email, c.User.Email)
	}
	if len(c.User.Groups) > 0 {
		h.set(hd, h.ids.Groups, joinGroups(c.User.Groups))
	}
	h.set(hd, h.ids.ClientID, c.ClientID)
}

func (h *handler) isIdentityName(name string) bool {
	for _, n := range h.strip {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// set sets an identity header unless it is disabled, v is empty or v could
// not travel in a header (control characters).
func (h *handler) set(hd http.Header, name, v string) {
	if name == "-" || v == "" {
		return
	}
	if !validValue(v) {
		h.log.Warn("identity value not forwarded: it holds control characters", "header", name)
		return
	}
	hd[name] = []string{v}
}

func validValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

func joinGroups(groups []string) string {
	var b strings.Builder
	for _, g := range groups {
		if g == "" || strings.IndexByte(g, ',') >= 0 || !validValue(g) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(g)
	}
	return b.String()
}

// upstreamError answers a request that could not reach the upstream.
func (h *handler) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		// The client left; nobody reads an answer.
		h.log.Debug("client went away before the upstream answered", "error", err)
		return
	}
	status := http.StatusBadGateway
	if errors.Is(err, errHeaderTimeout) {
		status = http.StatusGatewayTimeout
	}
	h.log.Warn("upstream MCP server unavailable", "upstream", h.upstream.Redacted(), "method", r.Method, "status", status, "error", err)
	writeError(w, status, errUnavailable)
}

// bufferPool recycles ReverseProxy's 32 KiB copy buffers, which it would
// otherwise allocate for every response.
type bufferPool struct{}

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *copyBuffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { copyBuffers.Put(&b) }

// errHeaderTimeout is the upstream not sending headers within Timeout.
var errHeaderTimeout = errors.New("upstream sent no response headers in time")

// transport bounds the wait for response headers and follows one
// trailing-slash redirect on the upstream.
type transport struct {
	next    http.RoundTripper
	timeout time.Duration
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.roundTrip(req)
	if err != nil {
		return nil, err
	}
	loc := slashRedirect(req, resp)
	if loc == nil || (req.Body != nil && req.Body != http.NoBody && req.GetBody == nil) {
		return resp, nil
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	req2 := req.Clone(req.Context())
	req2.URL = loc
	req2.Host = loc.Host
	if req.GetBody != nil {
		if req2.Body, err = req.GetBody(); err != nil {
			return nil, err
		}
	}
	return t.roundTrip(req2)
}

// slashRedirect returns where resp redirects req when it is a 307 or 308
// to the same scheme, host and path but for a trailing slash.
func slashRedirect(req *http.Request, resp *http.Response) *url.URL {
	if resp.StatusCode != http.StatusTemporaryRedirect && resp.StatusCode != http.StatusPermanentRedirect {
		return nil
	}
	l := resp.Header.Get("Location")
	if l == "" {
		return nil
	}
	loc, err := req.URL.Parse(l)
	if err != nil || loc.Scheme != req.URL.Scheme || loc.Host != req.URL.Host || loc.User != nil {
		return nil
	}
	p, lp := req.URL.EscapedPath(), loc.EscapedPath()
	if lp != p+"/" && p != lp+"/" {
		return nil
	}
	loc.Fragment = ""
	return loc
}

// roundTrip is one exchange with the upstream, failing with
// errHeaderTimeout when the headers take longer than t.timeout. The body
// that follows is not bounded.
func (t *transport) roundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	timer := time.AfterFunc(t.timeout, func() { cancel(errHeaderTimeout) })
	resp, err := t.next.RoundTrip(req.WithContext(ctx))
	if !timer.Stop() && context.Cause(ctx) == errHeaderTimeout {
		if err == nil {
			resp.Body.Close()
		}
		cancel(nil)
		return nil, fmt.Errorf("%w (%v)", errHeaderTimeout, t.timeout)
	}
	if err != nil {
		cancel(nil)
		return nil, err
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelCauseFunc
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel(nil)
	return err
}

// callerOf is the verified user behind a request, or "".
func callerOf(r *http.Request) string {
	if r == nil {
		return ""
	}
	if c := identity.FromContext(r.Context()); c != nil {
		return c.User.ID
	}
	return ""
}
