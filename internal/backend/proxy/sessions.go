package proxy

import (
	"net/http"
	"sync"
	"time"
)

// sessionOwners binds each Mcp-Session-Id an upstream hands out to the user
// whose request opened it, so that another user cannot use it (SESS-3): an
// upstream behind the gateway sees no token and cannot do this itself. The
// map is bounded: idle sessions are forgotten, and a forgotten or unknown
// session is answered 404, after which MCP clients open a new one.
type sessionOwners struct {
	mu     sync.Mutex
	owners map[string]*sessionOwner
	max    int
	idle   time.Duration
	now    func() time.Time
	lastGC time.Time
}

type sessionOwner struct {
	user string
	seen time.Time
}

func newSessionOwners(max int, idle time.Duration, now func() time.Time) *sessionOwners {
	return &sessionOwners{owners: map[string]*sessionOwner{}, max: max, idle: idle, now: now}
}

// allowed reports whether user may use session id, and marks it used.
func (s *sessionOwners) allowed(id, user string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.owners[id]
	if !ok || o.user != user {
		return false
	}
	o.seen = s.now()
	return true
}

// bind records that user opened session id.
func (s *sessionOwners) bind(id, user string) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.owners) >= s.max || now.Sub(s.lastGC) > time.Minute {
		for k, o := range s.owners {
			if now.Sub(o.seen) > s.idle {
				delete(s.owners, k)
			}
		}
		s.lastGC = now
	}
	if len(s.owners) >= s.max {
		// Still full: forget the session idle the longest.
		var oldest string
		for k, o := range s.owners {
			if oldest == "" || o.seen.Before(s.owners[oldest].seen) {
				oldest = k
			}
		}
		delete(s.owners, oldest)
	}
	if o, ok := s.owners[id]; ok && o.user != user {
		return // an upstream reusing an id for another user keeps the first owner
	}
	s.owners[id] = &sessionOwner{user: user, seen: now}
}

func (s *sessionOwners) forget(id string) {
	s.mu.Lock()
	delete(s.owners, id)
	s.mu.Unlock()
}

// errNoSession is the answer to an unknown or foreign session id.
var errNoSession = errorBody(-32001, "session not found")

const sessionHeader = "Mcp-Session-Id"

// recordSession binds a session id the upstream hands out to the caller of
// the request that got it, and forgets one that a successful DELETE ended.
func (h *handler) recordSession(method string, reqHeader http.Header, caller string, resp *http.Response) {
	if resp.StatusCode >= 300 {
		return
	}
	if id := resp.Header.Get(sessionHeader); id != "" {
		h.sessions.bind(id, caller)
	}
	if method == http.MethodDelete {
		h.sessions.forget(reqHeader.Get(sessionHeader))
	}
}
