package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/jsonrpc"
	"github.com/mcpgate/mcpgate/internal/metrics"
	"github.com/mcpgate/mcpgate/internal/requestid"
	"github.com/mcpgate/mcpgate/internal/safetext"
	"github.com/mcpgate/mcpgate/internal/tracing"
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
	// Groups carries User.Groups as identity.JoinGroups joins them: with
	// ",", a comma in a name percent-encoded. Default X-Forwarded-Groups.
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
// when it is verified. A value that could not travel in a header as it is
// (not identity.Printable, or with blanks at either end, which HTTP
// trims) is left out, with a warning to log. h has its
// defaults (WithDefaults).
func (h IdentityHeaders) Each(c *identity.Caller, token string, log *slog.Logger, set func(name, value string)) {
	add := func(name, v string) {
		if name == "-" || v == "" {
			return
		}
		if !identity.Printable(v) || strings.Trim(v, " \t") != v {
			// HTTP trims a value's outer blanks: "admin " would reach the
			// backend as another user's "admin" (SEC-191).
			log.Warn("identity value not forwarded: it holds control characters or outer blanks", "header", name)
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

// stripped lists the request headers removed from every request, in any
// case and underscore spelling: the identity headers under their names in
// h and under the default ones (a backend that was written for the
// defaults may still read one the operator renamed or turned off), and
// the MCP headers the gateway checks, whose only spelling that passes is
// the canonical one it reads: Mcp-Session-Id (SEC-32), and Mcp-Method,
// Mcp-Name and Mcp-Protocol-Version (TRANS-2, SEC-202), which a backend
// that folds _ into - would otherwise read as other than the checked;
// and X-Request-Id, which rewrite sets to the gateway's (SEC-103): a
// backend that folds X_Request_Id into it would join the client's.
func (h IdentityHeaders) stripped() []string {
	out := append(slices.Clone(checkedMCPHeaders), requestid.Header)
	for _, n := range []string{h.User, h.PreferredUsername, h.Email, h.Groups, h.ClientID, h.Token} {
		if n != "-" {
			out = append(out, n)
		}
	}
	d := IdentityHeaders{}.WithDefaults()
	for _, n := range []string{d.User, d.PreferredUsername, d.Email, d.Groups, d.ClientID, d.Token} {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// checkedMCPHeaders are the MCP headers the gateway reads, in their
// canonical spelling.
var checkedMCPHeaders = []string{sessionHeader, jsonrpc.HeaderMethod, jsonrpc.HeaderName, jsonrpc.HeaderProtocolVersion}

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
	// Transport reaches the upstream; nil means NewTransport(). An
	// *http.Transport is used as a copy whose ResponseHeaderTimeout is
	// Timeout, unless it has one, and the GETs (event streams) go through
	// a second copy with small buffers (SEC-81), whose connections are its
	// own; any other RoundTripper is used as it is for both, and must
	// bound the wait for headers itself.
	Transport http.RoundTripper
	// Sessions, when set, keeps the sessions' bindings to their users
	// (SESS-3) where every replica of the gateway finds them, under
	// Resource; nil keeps them in this process only.
	Sessions SessionStore
	Resource string
	// Metrics counts the requests that could not reach the upstream;
	// nil: none.
	Metrics *metrics.Metrics
	Logger  *slog.Logger
}

// handler is the proxy.
type handler struct {
	upstream *url.URL
	ids      IdentityHeaders
	strip    []string // stripped(), canonical
	token    func(*identity.Caller) (string, error)
	maxBody  int64
	log      *slog.Logger
	metrics  *metrics.Metrics
	resource string
	sessions *sessionOwners
	rp       *httputil.ReverseProxy
	// streams proxies the GETs: event streams that may stay open and idle
	// for hours, with small buffers (streamTransport, streamBuffers).
	streams *httputil.ReverseProxy
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
		ids:      opts.IdentityHeaders.WithDefaults(),
		token:    opts.IdentityToken,
		maxBody:  opts.MaxBodyBytes,
		log:      opts.Logger,
		metrics:  opts.Metrics,
		resource: opts.Resource,
		sessions: newSessionOwners(100_000, 24*time.Hour, time.Now),
	}
	h.sessions.store, h.sessions.resource, h.sessions.log = opts.Sessions, opts.Resource, opts.Logger
	opts.Metrics.Backend(opts.Resource, false, failUnavailable, failTimeout)
	h.strip = h.ids.stripped()
	h.rp = &httputil.ReverseProxy{
		Rewrite:        h.rewrite,
		Transport:      transportFor(opts.Transport, opts.Timeout),
		FlushInterval:  -1, // every event as it arrives
		BufferPool:     copyBuffers,
		ModifyResponse: h.modifyResponse,
		ErrorHandler:   h.upstreamError,
		ErrorLog:       slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
	}
	streams := *h.rp
	streams.Transport = transportFor(streamTransport(opts.Transport), opts.Timeout)
	streams.BufferPool = streamBuffers{}
	h.streams = &streams
	return h, nil
}

// CloseIdleConnections closes the idle connections of both transports, the
// answers' and the event streams' (SEC-81), whose pools are separate: the
// gateway calls it when it closes, so that no connection to the upstream
// outlives it by IdleConnTimeout. Connections in use are left alone; a
// Transport given in Options has its idle connections closed too, as
// http.Client's CloseIdleConnections does.
func (h *handler) CloseIdleConnections() {
	for _, rp := range []*httputil.ReverseProxy{h.rp, h.streams} {
		if c, ok := rp.Transport.(interface{ CloseIdleConnections() }); ok {
			c.CloseIdleConnections()
		}
	}
}

// JSON-RPC error bodies, built once.
var (
	errInternal    = errorBody(jsonrpc.CodeInternalError, "internal error")
	errTooLarge    = errorBody(jsonrpc.CodeInvalidRequest, "request body too large")
	errBadBody     = errorBody(jsonrpc.CodeParseError, "could not read the request body")
	errUnavailable = errorBody(jsonrpc.CodeInternalError, "upstream MCP server unavailable")
	errBadAnswer   = errorBody(jsonrpc.CodeInternalError, "the upstream MCP server's answer cannot be passed on")
	errTwoSessions = errorBody(jsonrpc.CodeInvalidRequest, "more than one Mcp-Session-Id")
	errNoCheck     = errorBody(jsonrpc.CodeInternalError, "the session cannot be checked now, retry later")
)

// errorBody is a JSON-RPC error response body; its id is null because the
// proxy does not parse the request.
func errorBody(code int, msg string) []byte {
	return append(jsonrpc.AppendError(nil, nil, code, msg), '\n')
}

// tokenKey carries the identity token minted for a request to rewrite.
type tokenKey struct{}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	caller := identity.FromContext(r.Context())
	if caller == nil {
		// The guard did not run: a wiring mistake, never forward.
		h.log.Error("proxy reached without a verified caller; is the resource guard in front?", "path", r.URL.Path)
		jsonrpc.WriteJSON(w, http.StatusInternalServerError, errInternal)
		return
	}
	if ids := r.Header[sessionHeader]; len(ids) > 1 {
		// The check reads one: an upstream must not be handed another.
		jsonrpc.WriteJSON(w, http.StatusBadRequest, errTwoSessions)
		return
	}
	if id := r.Header.Get(sessionHeader); id != "" {
		ok, err := h.sessions.allowed(r.Context(), id, caller.User.ID)
		if err != nil {
			h.log.Error("checking a session in the store failed", "user", caller.User.ID, "error", err)
			w.Header().Set("Retry-After", "1")
			jsonrpc.WriteJSON(w, http.StatusServiceUnavailable, errNoCheck)
			return
		}
		if !ok {
			// SESS-3: not a session this user opened through this gateway.
			h.log.Info("session refused: unknown or opened by another user", "user", caller.User.ID)
			jsonrpc.WriteJSON(w, http.StatusNotFound, errNoSession)
			return
		}
	}
	token, err := h.ids.MintToken(h.token, caller)
	if err != nil {
		// The backend may rely on the token: never forward without it.
		h.log.Error("minting the identity token failed", "user", caller.User.ID, "error", err)
		jsonrpc.WriteJSON(w, http.StatusInternalServerError, errInternal)
		return
	}
	body, ok := h.readBody(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	if token != "" {
		ctx = context.WithValue(ctx, tokenKey{}, token)
	}
	// The upstream gets the body from memory, never r.Body: the transport
	// may still read a body after the handler has returned, and one in
	// memory can be sent again (a redirect, a retry on a new connection).
	in := r.WithContext(ctx)
	in.TransferEncoding = nil
	in.ContentLength = int64(len(body))
	in.Body, in.GetBody = http.NoBody, nil
	if len(body) > 0 {
		in.Body = io.NopCloser(bytes.NewReader(body))
		in.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	defer endStream(r)
	lw := &lazyFlusher{w: w}
	defer lw.stop()
	if r.Method == http.MethodGet {
		h.streams.ServeHTTP(lw, in)
		return
	}
	h.rp.ServeHTTP(lw, in)
}

// endStream lets an answer that ended because r's context did (the client
// left, or the gateway ended an event stream at shutdown: EndStreams) end
// normally, as a stream the upstream closed does: ReverseProxy aborts the
// client's connection on any error while copying. Any other error still
// aborts it, so that an answer that broke off cannot look complete.
func endStream(r *http.Request) {
	if v := recover(); v != nil {
		if v == http.ErrAbortHandler && r.Context().Err() != nil {
			return
		}
		panic(v)
	}
}

// readBody returns the request body (nil for none), or answers 413 or 400.
func (h *handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, true
	}
	if r.ContentLength > h.maxBody {
		w.Header().Set("Connection", "close")
		jsonrpc.WriteJSON(w, http.StatusRequestEntityTooLarge, errTooLarge)
		return nil, false
	}
	if b, ok := r.Body.(interface{ Bytes() []byte }); ok {
		// A middleware in front (internal/policy) has read the body already.
		body := b.Bytes()
		if int64(len(body)) > h.maxBody {
			jsonrpc.WriteJSON(w, http.StatusRequestEntityTooLarge, errTooLarge)
			return nil, false
		}
		return body, true
	}
	body, err := jsonrpc.ReadBody(w, r, h.maxBody)
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			jsonrpc.WriteJSON(w, http.StatusRequestEntityTooLarge, errTooLarge)
			return nil, false
		}
		h.log.Info("reading the request body failed", "error", err)
		jsonrpc.WriteJSON(w, http.StatusBadRequest, errBadBody)
		return nil, false
	}
	return body, true
}

// dropped are the request headers the proxy removes besides those
// ReverseProxy removes (hop-by-hop ones, also those the client's
// Connection header names), the client's address headers (addressHeader)
// and the identity headers.
var dropped = []string{
	"Authorization", // PASS-2
	"Cookie",        // the gateway's
	// The guard decided on them; a backend comparing them with the
	// rewritten Host would refuse legitimate browser clients.
	"Origin", "Sec-Fetch-Site",
	// The body is in memory already.
	"Expect",
	// ReverseProxy passes a protocol upgrade on; MCP never upgrades.
	"Connection", "Upgrade",
	// The client's text, which an upstream's OpenTelemetry propagator
	// would take as context the gateway vouched for (SEC-104).
	"Baggage",
}

// rewrite makes the upstream request: exactly the upstream's path, its
// query and then the client's, its own Host, and the headers of the
// client but for those dropped and the identity headers, which are set
// from the verified caller.
func (h *handler) rewrite(pr *httputil.ProxyRequest) {
	h.target(pr.Out.URL)
	pr.Out.Host = "" // the upstream's own, which the go-sdk's DNS-rebinding protection requires on loopback
	if pr.Out.Body != nil {
		// The body from memory (ServeHTTP) as it is: ReverseProxy's
		// wrapper, which keeps the transport from closing a client's
		// body, hides that it is in memory, and the transport then
		// writes the request's head and body in two system calls.
		pr.Out.Body = pr.In.Body
	}
	// The client's trailers stay here: an HTTP/2 upstream would get them,
	// under names the identity headers use too, after the body the gateway
	// has read whole.
	pr.Out.Trailer = nil
	hd := pr.Out.Header
	for _, k := range dropped {
		delete(hd, k)
	}
	for k := range hd {
		if !slices.Contains(checkedMCPHeaders, k) && (h.isStripped(k) || addressHeader(k)) {
			delete(hd, k)
		}
	}
	ctx := pr.In.Context()
	token, _ := ctx.Value(tokenKey{}).(string)
	h.ids.Each(identity.FromContext(ctx), token, h.log, func(name, v string) {
		hd[name] = []string{v}
	})
	// An upstream takes X-Request-Id for its request's id: the gateway's
	// (SEC-103), which its access line and audit events carry, never one
	// the client chose.
	delete(hd, requestid.Header)
	if id := requestid.From(ctx); id != "" {
		hd[requestid.Header] = []string{id}
	}
	// The upstream's request is a child of the gateway's span, when traced.
	tracing.Inject(ctx, hd)
}

// target makes u, the client's URL, the upstream's: its scheme, host and
// path, and the query of the upstream's URL when it has one, in place of
// the client's. A client's parameters after the operator's would override
// them on the many servers that take a repeated parameter's last value
// (tenant=a&tenant=b), or add settings the operator never set (SEC-156);
// without an operator's query, the client's goes on as it came.
func (h *handler) target(u *url.URL) {
	up := h.upstream
	u.Scheme, u.Host, u.Path, u.RawPath = up.Scheme, up.Host, up.Path, up.RawPath
	if up.RawQuery != "" {
		u.RawQuery = up.RawQuery
	}
}

// isStripped reports whether k is one of the stripped headers, in any case
// and with '_' for '-' (X_Forwarded_User), which some servers fold into
// the same name.
func (h *handler) isStripped(k string) bool {
	for _, n := range h.strip {
		if len(n) == len(k) && equalFoldDash(k, n) {
			return true
		}
	}
	return false
}

// addressHeader reports whether k is what a client says about its address
// or the hops before it (SEC-33): X-Real-IP, Forwarded or any
// X-Forwarded-*, in any case and underscore spelling. The gateway is the
// first hop an upstream can trust, and it vouches for none of them; the
// identity headers it sets under X-Forwarded-* names are set after.
// ReverseProxy removes only the canonical Forwarded, X-Forwarded-For,
// -Host and -Proto.
func addressHeader(k string) bool {
	const prefix = "x-forwarded-"
	return (len(k) == len("x-real-ip") && equalFoldDash(k, "x-real-ip")) ||
		(len(k) == len("forwarded") && equalFoldDash(k, "forwarded")) ||
		(len(k) > len(prefix) && equalFoldDash(k[:len(prefix)], prefix))
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

// dropCookies removes the cookies an upstream set in h (SEC-121), and what
// else it says about the gateway's origin beyond its answer (SEC-123).
func dropCookies(h http.Header) {
	for k := range h {
		if originHeader(k) {
			delete(h, k)
		}
	}
}

// originHeaders are the answer headers, canonical, by which a server speaks
// for its origin beyond one answer; the gateway's origin is not an
// upstream's to speak for (SEC-123): cookies (SEC-121); another server's
// OAuth challenge, which would make a client drop its token or take it,
// and its user, to another authorization server; an order to clear the
// origin's cookies and storage; HSTS for every subdomain of the gateway's
// host; another host for the origin (Alt-Svc); reports of the origin's
// traffic, URLs with codes among them, sent elsewhere. Access-Control-*
// (originHeader) would replace the gateway's CORS (SEC-34).
var originHeaders = map[string]bool{
	"Set-Cookie": true, "Set-Cookie2": true,
	"Www-Authenticate": true, "Proxy-Authenticate": true, "Authentication-Info": true,
	"Clear-Site-Data": true, "Strict-Transport-Security": true, "Alt-Svc": true,
	"Nel": true, "Report-To": true, "Reporting-Endpoints": true,
}

// originHeader reports whether k, canonical, is one of originHeaders or a
// CORS header.
func originHeader(k string) bool {
	return originHeaders[k] || strings.HasPrefix(k, "Access-Control-")
}

// cookielessEnd is an answer's body whose trailers, which reading its end
// fills in, lose the upstream's cookies when the ReverseProxy closes it,
// before it passes them on (SEC-121).
type cookielessEnd struct {
	io.ReadCloser
	resp *http.Response
}

func (b cookielessEnd) Close() error {
	err := b.ReadCloser.Close()
	dropCookies(b.resp.Trailer)
	return err
}

// badAnswer is an answer of the upstream's that the proxy does not pass on:
// the upstream is there, and the client is told so.
type badAnswer struct{ error }

// maxSessionID bounds the Mcp-Session-Id an upstream hands out (SEC-212):
// the gateway keeps each id a user holds (internal/userlimit, to end the
// oldest with a DELETE that names it), and a JWT as an id takes 1 KiB.
const maxSessionID = 4 << 10

// modifyResponse refuses an answer the proxy cannot pass on, and binds a
// session id the upstream hands out to the caller (SESS-3).
func (h *handler) modifyResponse(resp *http.Response) error {
	switch s := resp.StatusCode; {
	case s == http.StatusSwitchingProtocols:
		return badAnswer{errors.New("upstream switched protocols, which the proxy never asks for")}
	case s == http.StatusUnauthorized || s == http.StatusProxyAuthRequired:
		// The upstream never sees the client's token (PASS-2), so this is
		// no verdict on it; passed on, it would make the client drop its
		// token or authorize again (SEC-123).
		return badAnswer{fmt.Errorf("upstream answered with status %d, which no token of the client's caused", s)}
	case s < 200 || s > 999: // net/http's server refuses to write it
		return badAnswer{fmt.Errorf("upstream answered with status %d", s)}
	case len(resp.Header.Values(sessionHeader)) > 1:
		// Only one could be bound to the user (SESS-3): the client would
		// be handed an id the gateway then refuses.
		return badAnswer{errors.New("upstream answered with more than one Mcp-Session-Id")}
	case len(resp.Header.Get(sessionHeader)) > maxSessionID:
		return badAnswer{fmt.Errorf("upstream answered with an Mcp-Session-Id over %d bytes", maxSessionID)}
	}
	if len(resp.Trailer) > 0 {
		// Trailers need a chunked answer, which a Content-Length (an
		// HTTP/2 upstream sends one with trailers) would prevent.
		resp.Header.Del("Content-Length")
	}
	// The answer's X-Request-Id is the gateway's (SEC-103), which the
	// upstream's would replace; the upstream keeps its own in its logs.
	delete(resp.Header, requestid.Header)
	// The answer comes from the gateway's origin, where its own cookies
	// live, and the client's cookies never reach the upstream (SEC-121);
	// nor does the upstream speak for that origin otherwise (SEC-123).
	dropCookies(resp.Header)
	// Trailers too: a chunked answer may carry fields its Trailer header
	// never announced, which come in as its end is read.
	dropCookies(resp.Trailer)
	resp.Body = cookielessEnd{resp.Body, resp}
	req := resp.Request
	h.recordSession(req.Context(), req.Method, req.Header, identity.FromContext(req.Context()).User.ID, resp)
	return nil
}

// The kinds of backend failure upstreamError counts (metrics.BackendError);
// a proxy's series of each start at zero.
const (
	failUnavailable = "unavailable" // the upstream could not be reached
	failTimeout     = "timeout"     // it sent no headers in time
)

// upstreamError answers a request that could not reach the upstream: 504
// when it sent no headers within Timeout, else 502, with no internal
// detail; the cause goes to the log.
func (h *handler) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		// The client left; nobody reads an answer.
		h.log.Debug("client went away before the upstream answered", "error", err)
		return
	}
	status, kind := http.StatusBadGateway, failUnavailable
	if headerTimeout(err) {
		status, kind = http.StatusGatewayTimeout, failTimeout
	}
	h.metrics.BackendError(h.resource, kind)
	if errors.As(err, new(badAnswer)) {
		h.log.Warn("upstream MCP server's answer not passed on", "upstream", safetext.URL(h.upstream), "method", r.Method, "status", status, "error", err)
		jsonrpc.WriteJSON(w, status, errBadAnswer)
		return
	}
	h.log.Warn("upstream MCP server unavailable", "upstream", safetext.URL(h.upstream), "method", r.Method, "status", status, "error", err)
	jsonrpc.WriteJSON(w, status, errUnavailable)
}
