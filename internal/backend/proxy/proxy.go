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
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/jsonrpc"
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
	// Token carries the signed identity token of Options.IdentityToken,
	// when that is set. Default X-Mcpgate-Identity.
	Token string
}

// WithDefaults fills in the default names, canonical; "-" stays (nothing
// is sent for that field).
func (h IdentityHeaders) WithDefaults() IdentityHeaders {
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
	def(&h.Token, "X-Mcpgate-Identity")
	return h
}

// MintToken returns the identity token for c from mint, or "" when there
// is no mint function or the token header is off. An error, an empty token
// or one that cannot travel in a header is an error: a backend may rely on
// the token, so a request must not go without it.
func (h IdentityHeaders) MintToken(mint func(*identity.Caller) (string, error), c *identity.Caller) (string, error) {
	if mint == nil || h.Token == "-" {
		return "", nil
	}
	token, err := mint(c)
	if err == nil && (token == "" || !identity.Printable(token)) {
		err = errors.New("empty or not a valid header value")
	}
	return token, err
}

// Each calls set with the name and value of each header that carries c to
// the backend, token (the identity token, "" for none) last, in the order
// of the fields: none for a field named "-" or an empty value, Email only
// when it is verified. A value that could not travel in a header (not
// identity.Printable) is left out, with a warning to log. h has its
// defaults (WithDefaults).
func (h IdentityHeaders) Each(c *identity.Caller, token string, log *slog.Logger, set func(name, value string)) {
	add := func(name, v string) {
		if name == "-" || v == "" {
			return
		}
		if !identity.Printable(v) {
			log.Warn("identity value not forwarded: it holds control characters", "header", name)
			return
		}
		set(name, v)
	}
	add(h.User, c.User.ID)
	add(h.PreferredUsername, c.User.Username)
	if c.User.EmailVerified {
		add(h.Email, c.User.Email)
	}
	if len(c.User.Groups) > 0 {
		add(h.Groups, identity.JoinGroups(c.User.Groups))
	}
	add(h.ClientID, c.ClientID)
	add(h.Token, token)
}

func (h IdentityHeaders) names() []string {
	var out []string
	for _, n := range []string{h.User, h.PreferredUsername, h.Email, h.Groups, h.ClientID, h.Token} {
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
	// IdentityToken, when set, is called for every request and its result
	// sent in IdentityHeaders.Token: a signed statement of the caller that
	// the backend can verify. An error answers the request with 500; it is
	// never forwarded without the token. Not called when
	// IdentityHeaders.Token is "-". A client's header of that name is
	// removed whether or not this is set.
	IdentityToken func(c *identity.Caller) (string, error)
	// Timeout bounds the wait for the upstream's response headers
	// (DefaultTimeout); a response body, such as an SSE stream, may then
	// run as long as it likes.
	Timeout time.Duration
	// MaxBodyBytes limits a request body (DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// Transport reaches the upstream. nil means the proxy's own HTTP/1.1
	// client for an http upstream (see doc.go) and NewTransport() for an
	// https one.
	Transport http.RoundTripper
	Logger    *slog.Logger
}

// NewTransport returns the default transport to an https upstream: enough
// idle connections for a busy gateway (http.DefaultTransport keeps 2 per
// host), keep-alive, a 5 s dial timeout, no proxy from the environment,
// and no transparent compression, so that encodings pass through unchanged.
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   maxIdleConns,
		IdleConnTimeout:       idleConnTimeout,
		TLSHandshakeTimeout:   5 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
}

// Connection settings, shared by NewTransport and the own client.
const (
	dialTimeout     = 5 * time.Second
	maxIdleConns    = 256
	idleConnTimeout = 90 * time.Second
)

// handler is the proxy.
type handler struct {
	upstream *url.URL
	path     string // upstream.EscapedPath()
	ids      IdentityHeaders
	strip    []string // identity header names, canonical
	token    func(*identity.Caller) (string, error)
	maxBody  int64
	log      *slog.Logger
	sessions *sessionOwners
	// Exactly one of h1 and rt is set: the own HTTP/1.1 client, or a
	// RoundTripper (https, or Options.Transport) behind a header timer.
	h1 *h1Client
	rt *timedTransport
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
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h := &handler{
		upstream: u,
		path:     u.EscapedPath(),
		ids:      opts.IdentityHeaders.WithDefaults(),
		token:    opts.IdentityToken,
		maxBody:  opts.MaxBodyBytes,
		log:      opts.Logger,
		sessions: newSessionOwners(100_000, 24*time.Hour, time.Now),
	}
	h.strip = h.ids.names()
	switch {
	case opts.Transport == nil && u.Scheme == "http":
		h.h1 = newH1Client(u, opts.Timeout)
	case opts.Transport == nil:
		h.rt = &timedTransport{next: NewTransport(), timeout: opts.Timeout}
	default:
		h.rt = &timedTransport{next: opts.Transport, timeout: opts.Timeout}
	}
	return h, nil
}

// JSON-RPC error bodies, built once.
var (
	errInternal    = errorBody(jsonrpc.CodeInternalError, "internal error")
	errTooLarge    = errorBody(jsonrpc.CodeInvalidRequest, "request body too large")
	errBadBody     = errorBody(jsonrpc.CodeParseError, "could not read the request body")
	errUnavailable = errorBody(jsonrpc.CodeInternalError, "upstream MCP server unavailable")
)

// errorBody is a JSON-RPC error response body; its id is null because the
// proxy does not parse the request.
func errorBody(code int, msg string) []byte {
	return append(jsonrpc.AppendError(nil, nil, code, msg), '\n')
}

// outbound is one request to the upstream.
type outbound struct {
	method string
	url    *url.URL    // the upstream's scheme, host and path; the query
	in     http.Header // the client's header: handler.forward picks from it
	ids    [12]string  // the identity headers: name, value, name, value…
	nids   int
	body   []byte // nil: none
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	caller := identity.FromContext(r.Context())
	if caller == nil {
		// The guard did not run: a wiring mistake, never forward.
		h.log.Error("proxy reached without a verified caller; is the resource guard in front?", "path", r.URL.Path)
		jsonrpc.WriteJSON(w, http.StatusInternalServerError, errInternal)
		return
	}
	if id := r.Header.Get(sessionHeader); id != "" && !h.sessions.allowed(id, caller.User.ID) {
		// SESS-3: not a session this user opened through this gateway.
		h.log.Info("session refused: unknown or opened by another user", "user", caller.User.ID)
		jsonrpc.WriteJSON(w, http.StatusNotFound, errNoSession)
		return
	}
	token, err := h.ids.MintToken(h.token, caller)
	if err != nil {
		// The backend may rely on the token: never forward without it.
		h.log.Error("minting the identity token failed", "user", caller.User.ID, "error", err)
		jsonrpc.WriteJSON(w, http.StatusInternalServerError, errInternal)
		return
	}
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		if r.ContentLength > h.maxBody {
			w.Header().Set("Connection", "close")
			jsonrpc.WriteJSON(w, http.StatusRequestEntityTooLarge, errTooLarge)
			return
		}
		if b, ok := r.Body.(interface{ Bytes() []byte }); ok {
			// A middleware in front has read the body already.
			body = b.Bytes()
			if int64(len(body)) > h.maxBody {
				jsonrpc.WriteJSON(w, http.StatusRequestEntityTooLarge, errTooLarge)
				return
			}
		} else {
			var err error
			if body, err = jsonrpc.ReadBody(w, r, h.maxBody); err != nil {
				if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
					jsonrpc.WriteJSON(w, http.StatusRequestEntityTooLarge, errTooLarge)
					return
				}
				h.log.Info("reading the request body failed", "error", err)
				jsonrpc.WriteJSON(w, http.StatusBadRequest, errBadBody)
				return
			}
		}
	}

	o := &outbound{method: r.Method, url: h.target(r), in: r.Header, body: body}
	h.identify(o, caller, token)
	resp, err := h.exchange(r.Context(), o)
	if err != nil {
		h.upstreamError(w, r, err)
		return
	}
	defer resp.Body.Close()
	h.recordSession(r.Method, r.Header, caller.User.ID, resp)
	h.respond(w, r, resp)
}

// target is the upstream URL of r: the upstream's path, its query and then
// the client's.
func (h *handler) target(r *http.Request) *url.URL {
	u := *h.upstream
	// Like httputil.ReverseProxy, re-encode a query that Go would parse
	// differently from other servers (semicolons, bad escapes).
	if q := cleanQueryParams(r.URL.RawQuery); q != "" {
		if u.RawQuery == "" {
			u.RawQuery = q
		} else {
			u.RawQuery += "&" + q
		}
	}
	return &u
}

// dropped are the request headers never forwarded, besides the identity
// headers and those the client's Connection header names.
var dropped = map[string]bool{
	"Authorization": true, // PASS-2
	"Cookie":        true, // the gateway's
	// The guard decided on them; a backend comparing them with the
	// rewritten Host would refuse legitimate browser clients.
	"Origin":         true,
	"Sec-Fetch-Site": true,
	// Hop-by-hop (RFC 9110 §7.6.1). MCP never upgrades the connection.
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true,
	"Proxy-Authenticate": true, "Proxy-Authorization": true, "Te": true,
	"Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
	// The proxy cannot tell which proxies in front of it are trusted.
	"Forwarded": true, "X-Forwarded-For": true, "X-Forwarded-Host": true, "X-Forwarded-Proto": true,
	// The body is buffered already; framing and Host are the proxy's.
	"Expect": true, "Content-Length": true, "Host": true,
}

// hopByHop are the response headers never passed back.
var hopByHop = map[string]bool{
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true,
	"Proxy-Authenticate": true, "Proxy-Authorization": true, "Te": true,
	"Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

// forward reports whether the client's header k goes to the upstream:
// only end-to-end headers that are not the caller's identity. conn is the
// client's Connection header.
func (h *handler) forward(k string, conn []string) bool {
	ck := http.CanonicalHeaderKey(k) // no allocation when canonical already
	return !dropped[ck] && !h.isIdentityName(ck) && !listed(conn, ck)
}

// identify adds the caller's identity headers to o.
func (h *handler) identify(o *outbound, c *identity.Caller, token string) {
	h.ids.Each(c, token, h.log, func(name, v string) {
		o.ids[o.nids], o.ids[o.nids+1] = name, v
		o.nids += 2
	})
}

// header is the whole header of o, for a RoundTripper; the client's value
// slices are shared, not copied.
func (h *handler) header(o *outbound) http.Header {
	out := make(http.Header, len(o.in)+o.nids/2)
	conn := o.in["Connection"]
	for k, vv := range o.in {
		if h.forward(k, conn) {
			out[k] = vv
		}
	}
	for i := 0; i < o.nids; i += 2 {
		out[o.ids[i]] = []string{o.ids[i+1]}
	}
	return out
}

// isIdentityName reports whether k is one of the identity headers, in any
// case and with '_' for '-' (X_Forwarded_User), which some servers fold
// into the same name.
func (h *handler) isIdentityName(k string) bool {
	for _, n := range h.strip {
		if len(n) == len(k) && equalFoldDash(k, n) {
			return true
		}
	}
	return false
}

func equalFoldDash(a, b string) bool {
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == '_' {
			x = '-'
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// listed reports whether a Connection header (its values) names k: such a
// header is hop-by-hop too.
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

// exchange sends o and returns the upstream's response, following one
// redirect to the same path with or without a trailing slash (the body is
// buffered, so it can be sent again).
func (h *handler) exchange(ctx context.Context, o *outbound) (*http.Response, error) {
	resp, err := h.send(ctx, o)
	if err != nil {
		return nil, err
	}
	loc := slashRedirect(o.url, resp)
	if loc == nil {
		return resp, nil
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	o2 := *o
	o2.url = loc
	return h.send(ctx, &o2)
}

func (h *handler) send(ctx context.Context, o *outbound) (*http.Response, error) {
	if h.h1 != nil {
		bp := headBuffers.Get().(*[]byte)
		*bp = h.appendHead((*bp)[:0], o)
		resp, err := h.h1.do(ctx, o, *bp) // done with the head
		if cap(*bp) <= 64<<10 {
			headBuffers.Put(bp)
		}
		return resp, err
	}
	hd := h.header(o)
	req := (&http.Request{
		Method:        o.method,
		URL:           o.url,
		Host:          o.url.Host,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        hd,
		Body:          http.NoBody,
		ContentLength: int64(len(o.body)),
	}).WithContext(ctx)
	if _, ok := hd["User-Agent"]; !ok {
		hd["User-Agent"] = []string{""} // no Go-http-client/1.1 of ours
	}
	if len(o.body) > 0 {
		// io.NopCloser(*bytes.Reader) is a body net/http knows to be in
		// memory: it writes headers and body at once, not in two writes.
		req.Body = io.NopCloser(bytes.NewReader(o.body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(o.body)), nil }
	}
	return h.rt.RoundTrip(req)
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

// respond passes the upstream's answer to the client.
func (h *handler) respond(w http.ResponseWriter, r *http.Request, resp *http.Response) {
	dst := w.Header()
	conn := resp.Header["Connection"]
	for k, vv := range resp.Header {
		if hopByHop[k] || listed(conn, k) {
			continue
		}
		// Added to what the gateway set, as httputil.ReverseProxy does;
		// the upstream's slice itself when there is nothing to add to.
		if old := dst[k]; len(old) > 0 {
			dst[k] = append(old, vv...)
		} else {
			dst[k] = vv
		}
	}
	fl := flusherOf(w)
	if len(resp.Trailer) > 0 {
		names := make([]string, 0, len(resp.Trailer))
		for k := range resp.Trailer {
			names = append(names, k)
		}
		dst["Trailer"] = []string{strings.Join(names, ", ")}
	}
	w.WriteHeader(resp.StatusCode)
	if len(resp.Trailer) > 0 {
		fl.Flush() // chunked, so that net/http does not send a Content-Length and drop the trailers
	}
	if rerr, werr := copyBody(w, fl, resp); rerr != nil || werr != nil {
		if werr != nil || r.Context().Err() != nil {
			// The client left, or the gateway ended the stream.
			h.log.Debug("response not passed on to its end", "read_error", rerr, "write_error", werr)
			return
		}
		// Abort the client's connection: a truncated answer must not look
		// complete (as httputil.ReverseProxy does).
		h.log.Warn("upstream answer broke off", "upstream", h.upstream.Redacted(), "error", rerr)
		panic(http.ErrAbortHandler)
	}
	for k, vv := range resp.Trailer {
		dst[http.TrailerPrefix+k] = vv
	}
}

// copyBody copies the upstream's body to the client. It flushes only when
// the next read might wait for the upstream: an SSE event leaves at once,
// and a GET stream's headers leave before its first event, but an answer
// that is already complete goes out with its headers in one write when the
// handler returns (net/http then also adds a Content-Length when it can).
func copyBody(w io.Writer, fl http.Flusher, resp *http.Response) (rerr, werr error) {
	if resp.ContentLength == 0 {
		return nil, nil // no body (or HEAD, 204, 304): nothing to wait for
	}
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	buf := *bp
	// Only the own client knows what it has received but not yet read;
	// with a RoundTripper assume that every read may block, except the
	// first of a body of known length.
	bb, _ := resp.Body.(interface{ Buffered() int })
	mayBlock := func() bool { return bb == nil || bb.Buffered() == 0 }
	pending := resp.ContentLength < 0 || bb != nil // the headers, unsent
	for {
		if pending && mayBlock() {
			fl.Flush()
		}
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return nil, werr
			}
		}
		pending = true
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return err, nil
		}
	}
}

type nopFlusher struct{}

func (nopFlusher) Flush() {}

// flusherOf finds the Flusher of w, also through wrappers with Unwrap.
func flusherOf(w http.ResponseWriter) http.Flusher {
	for {
		switch x := w.(type) {
		case http.Flusher:
			return x
		case interface{ Unwrap() http.ResponseWriter }:
			w = x.Unwrap()
		default:
			return nopFlusher{}
		}
	}
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
	jsonrpc.WriteJSON(w, status, errUnavailable)
}

// copyBuffers recycles the 32 KiB buffers that copy answers, headBuffers
// those that hold a request head (a rare big one is left to the GC).
var (
	copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
	headBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 2<<10); return &b }}
)

// errHeaderTimeout is the upstream not sending headers within Timeout.
var errHeaderTimeout = errors.New("upstream sent no response headers in time")

// timedTransport bounds the wait for response headers of a RoundTripper
// that is not the proxy's own client.
type timedTransport struct {
	next    http.RoundTripper
	timeout time.Duration
}

// RoundTrip is one exchange with the upstream, failing with
// errHeaderTimeout when the headers take longer than t.timeout. The body
// that follows is not bounded. (A timer and a context per request: cheap
// next to what an https or HTTP/2 exchange costs, and it works for any
// RoundTripper.)
func (t *timedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
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

// cleanQueryParams is httputil.ReverseProxy's: a query that Go's
// url.ParseQuery would read differently from other servers is re-encoded.
func cleanQueryParams(s string) string {
	reencode := func(s string) string {
		v, _ := url.ParseQuery(s)
		return v.Encode()
	}
	for i := 0; i < len(s); {
		switch s[i] {
		case ';':
			return reencode(s)
		case '%':
			if i+2 >= len(s) || !ishex(s[i+1]) || !ishex(s[i+2]) {
				return reencode(s)
			}
			i += 3
		default:
			i++
		}
	}
	return s
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
