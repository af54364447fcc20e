package userlimit

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/jsonrpc"
	"github.com/mcpgate/mcpgate/internal/metrics"
)

// Defaults of Options.
const (
	DefaultMaxSessions = 32
	DefaultMaxStreams  = 16
)

// retryAfter is what a refused stream is told: streams end when their
// clients leave, so room may come soon.
const retryAfter = 5 * time.Second

// endTimeout bounds the DELETE that ends a session over the cap.
const endTimeout = 30 * time.Second

const sessionHeader = "Mcp-Session-Id"

// Options configure Wrap; zero values take the defaults.
type Options struct {
	MaxSessions int // per user (DefaultMaxSessions)
	MaxStreams  int // open GET streams per user (DefaultMaxStreams)
	Resource    string
	// Metrics counts the event streams open; nil: none.
	Metrics *metrics.Metrics
	Logger  *slog.Logger
}

// Wrap returns next with the limits of opts per user; it must stand behind
// the resource guard (a request without a verified caller passes as it
// is, for next to refuse).
func Wrap(next http.Handler, opts Options) http.Handler {
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = DefaultMaxSessions
	}
	if opts.MaxStreams <= 0 {
		opts.MaxStreams = DefaultMaxStreams
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &handler{next: next, opts: opts, users: map[string]*holdings{}, now: time.Now}
}

type handler struct {
	next  http.Handler
	opts  Options
	now   func() time.Time
	mu    sync.Mutex
	users map[string]*holdings // only users who hold something
}

// holdings are what one user holds; guarded by handler.mu.
type holdings struct {
	streams  int
	sessions map[string]*held // by id
}

// held is one session a user holds: when it was last used, and the caller
// who opened it, as whom it is ended. A backend binds a session to its
// opener's client and identity (SESS-3): ended as the caller of another
// client of the same user, it would refuse, and stay open past the cap.
type held struct {
	seen   time.Time
	opener *identity.Caller
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	caller := identity.FromContext(r.Context())
	if caller == nil {
		h.next.ServeHTTP(w, r)
		return
	}
	user := caller.User.ID
	if r.Method == http.MethodGet {
		if !h.openStream(user) {
			h.opts.Logger.Info("event stream refused: the user holds the most allowed", "resource", h.opts.Resource, "user", user, "max", h.opts.MaxStreams)
			w.Header().Set("Retry-After", strconv.Itoa(int(retryAfter/time.Second)))
			jsonrpc.WriteError(w, http.StatusTooManyRequests, nil, jsonrpc.CodeInvalidRequest,
				"too many open event streams for this user: close one, or retry later")
			return
		}
		defer h.closeStream(user)
	}
	sid := r.Header.Get(sessionHeader)
	if sid != "" {
		h.touch(user, sid)
	}
	// Every answer is read for a session id: one the user does not hold
	// yet is a new session, whatever the request carried (a backend may
	// open one for an initialize that names a session it never had, or
	// take the id the request named as the new session's).
	sw := &sessionWriter{ResponseWriter: w}
	h.next.ServeHTTP(sw, r)
	switch {
	case sw.session != "" && !h.holds(user, sw.session):
		if old, opener := h.add(user, sw.session, caller); old != "" {
			h.opts.Logger.Info("session ended: the user opened more than allowed", "resource", h.opts.Resource, "user", user, "max", h.opts.MaxSessions)
			// Not on this request's time: its answer may still be open.
			// The DELETE is made here: r is not to be read once this
			// handler has returned.
			go h.end(h.deleteOf(r, old, endingAs(opener, caller)))
		}
	case sid != "" && r.Method == http.MethodDelete && sw.status < 300:
		h.forget(user, sid)
	}
}

func (h *handler) openStream(user string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	u := h.holdingsOf(user)
	if u.streams >= h.opts.MaxStreams {
		return false
	}
	u.streams++
	h.opts.Metrics.EventStreams(h.opts.Resource, 1)
	return true
}

func (h *handler) closeStream(user string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	u := h.users[user]
	u.streams--
	h.dropIfEmpty(user, u)
	h.opts.Metrics.EventStreams(h.opts.Resource, -1)
}

// touch marks session id of user used now, if it is one being tracked.
func (h *handler) touch(user, id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if u := h.users[user]; u != nil {
		if s := u.sessions[id]; s != nil {
			s.seen = h.now()
		}
	}
}

// add records the new session id of user, which opener opened, and
// returns the session that must end to keep within the cap (the least
// recently used) with its opener, or "".
func (h *handler) add(user, id string, opener *identity.Caller) (string, *identity.Caller) {
	h.mu.Lock()
	defer h.mu.Unlock()
	u := h.holdingsOf(user)
	u.sessions[id] = &held{seen: h.now(), opener: opener}
	if len(u.sessions) <= h.opts.MaxSessions {
		return "", nil
	}
	var oldest string
	for k, s := range u.sessions {
		if k != id && (oldest == "" || s.seen.Before(u.sessions[oldest].seen)) {
			oldest = k
		}
	}
	s := u.sessions[oldest]
	delete(u.sessions, oldest)
	return oldest, s.opener
}

// holds reports whether user holds the session id.
func (h *handler) holds(user, id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	u := h.users[user]
	if u == nil {
		return false
	}
	_, ok := u.sessions[id]
	return ok
}

func (h *handler) forget(user, id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if u := h.users[user]; u != nil {
		delete(u.sessions, id)
		h.dropIfEmpty(user, u)
	}
}

func (h *handler) holdingsOf(user string) *holdings {
	u := h.users[user]
	if u == nil {
		u = &holdings{sessions: map[string]*held{}}
		h.users[user] = u
	}
	return u
}

func (h *handler) dropIfEmpty(user string, u *holdings) {
	if u.streams == 0 && len(u.sessions) == 0 {
		delete(h.users, user)
	}
}

// endingAs is the caller a session over the cap is ended as: its opener,
// whose client and identity the backend bound it to, with the access
// token's expiry of now, the request that went over, since the opener's
// token has often expired by then and a backend that mints an identity
// token from the caller would refuse it. It has no token id: the
// identity-token minter keys its cache by it, and the id of now, of
// another client's token, made it reuse that client's identity token for
// the opener's DELETE, or cache the opener's under the other's id.
func endingAs(opener, now *identity.Caller) *identity.Caller {
	c := *opener
	c.ExpiresAt, c.TokenID = now.ExpiresAt, ""
	return &c
}

// deleteOf is the DELETE that ends session id as opener, the caller who
// opened it, whose verified identity the backend's own session check
// reads; r is the request that went over the cap. It is not cancelled
// with r.
func (h *handler) deleteOf(r *http.Request, id string, opener *identity.Caller) *http.Request {
	del := r.Clone(identity.WithCaller(context.WithoutCancel(r.Context()), opener))
	del.Method = http.MethodDelete
	del.Header = http.Header{sessionHeader: {id}}
	del.Body, del.GetBody, del.ContentLength, del.TransferEncoding = http.NoBody, nil, 0, nil
	return del
}

// end sends del to the backend, within endTimeout.
func (h *handler) end(del *http.Request) {
	ctx, cancel := context.WithTimeout(del.Context(), endTimeout)
	defer cancel()
	d := &discard{header: http.Header{}}
	h.next.ServeHTTP(d, del.WithContext(ctx))
	h.opts.Logger.Debug("session over the cap ended", "resource", h.opts.Resource, "status", d.status)
}

// sessionWriter notes the status of an answer and the session id a
// successful one hands out.
type sessionWriter struct {
	http.ResponseWriter
	status  int
	session string
}

func (w *sessionWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
		if code < 300 {
			w.session = w.Header().Get(sessionHeader)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *sessionWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

func (w *sessionWriter) Flush() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *sessionWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// discard is the answer to a DELETE nobody reads.
type discard struct {
	header http.Header
	status int
}

func (d *discard) Header() http.Header { return d.header }
func (d *discard) WriteHeader(code int) {
	if d.status == 0 {
		d.status = code
	}
}
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
