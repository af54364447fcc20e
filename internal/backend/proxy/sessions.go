package proxy

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

// SessionStore keeps the session bindings where every replica of the
// gateway reads them (store.Store has these methods).
type SessionStore interface {
	PutMCPSession(ctx context.Context, s *store.MCPSession, now time.Time) error
	GetMCPSession(ctx context.Context, resource string, hash []byte, now time.Time) (*store.MCPSession, error)
	DeleteMCPSession(ctx context.Context, resource string, hash []byte) error
}

// storeRefresh is how often a session in use moves its expiry in the
// store: a session's requests do not each write, and one in use never
// expires there while idle stays a day.
const storeRefresh = time.Hour

// sessionOwners binds each Mcp-Session-Id an upstream hands out to the user
// whose request opened it, so that another user cannot use it (SESS-3): an
// upstream behind the gateway sees no token and cannot do this itself.
//
// The bindings live in the store, by the id's SHA-256, so that a session
// opened through one replica is found by every other; the map in front
// is a cache, so that the requests of a session on the replica that has
// it make no store call (only its start, its end and, once an hour, the
// move of its expiry do). The store is read only for an id the map does
// not know. An entry only says who opened the session, which never
// changes; one that another replica ended stays here until the upstream,
// which ended the session, answers it 404, which forgets it.
//
// The map is bounded: idle sessions are forgotten, and a forgotten or
// unknown session (in the store too) is answered 404, after which MCP
// clients open a new one. It is keyed by the id's SHA-256 too, never the
// id, whose length the upstream chooses (SEC-124): ids of 256 KiB, which
// an answer's head can hold, would otherwise make its 100,000 entries
// hold gigabytes.
type sessionOwners struct {
	mu       sync.Mutex
	owners   map[sessionKey]*sessionOwner
	max      int
	idle     time.Duration
	now      func() time.Time
	lastGC   time.Time
	store    SessionStore // nil: this process only
	resource string
	log      *slog.Logger
}

type sessionOwner struct {
	user   string
	seen   time.Time
	stored time.Time // when its expiry in the store was last moved
}

func newSessionOwners(max int, idle time.Duration, now func() time.Time) *sessionOwners {
	return &sessionOwners{owners: map[sessionKey]*sessionOwner{}, max: max, idle: idle, now: now, log: slog.New(slog.DiscardHandler)}
}

// sessionKey is a session id's SHA-256, under which it is kept.
type sessionKey [sha256.Size]byte

func keyOf(id string) sessionKey { return sha256.Sum256([]byte(id)) }

func sessionHash(id string) []byte {
	h := keyOf(id)
	return h[:]
}

// allowed reports whether user may use session id. An error is the
// store's: nothing is known.
func (s *sessionOwners) allowed(ctx context.Context, id, user string) (bool, error) {
	now, key := s.now(), keyOf(id)
	s.mu.Lock()
	o, ok := s.owners[key]
	if ok {
		s.mu.Unlock()
		return o.user == user, nil
	}
	s.mu.Unlock()
	if s.store == nil {
		return false, nil
	}
	m, err := s.store.GetMCPSession(ctx, s.resource, key[:], now)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	// Opened through another replica (or forgotten here): cached with its
	// owner, whoever asks, so that neither asks the store again.
	s.mu.Lock()
	if _, ok := s.owners[key]; !ok {
		s.add(key, &sessionOwner{user: m.UserID, seen: now, stored: m.ExpiresAt.Add(-s.idle)}, now)
	}
	s.mu.Unlock()
	return m.UserID == user, nil
}

// used marks session id used by user, whose request the upstream has
// just answered: the upstream, which knows whether the session lives,
// vouches for it, so that its expiry in the store (moved once an hour)
// is never moved for a session that ended.
func (s *sessionOwners) used(ctx context.Context, id, user string) {
	now := s.now()
	s.mu.Lock()
	o, ok := s.owners[keyOf(id)]
	refresh := ok && o.user == user && s.store != nil && now.Sub(o.stored) >= storeRefresh
	if ok && o.user == user {
		o.seen = now
	}
	if refresh {
		o.stored = now
	}
	s.mu.Unlock()
	if refresh {
		s.put(ctx, id, user, now)
	}
}

// bind records that user opened session id.
func (s *sessionOwners) bind(ctx context.Context, id, user string) {
	now, key := s.now(), keyOf(id)
	s.mu.Lock()
	if o, ok := s.owners[key]; ok {
		// Known: an upstream that repeats the id on every answer makes
		// no store call. One reusing an id for another user keeps the
		// first owner.
		if o.user == user {
			o.seen = now
		}
		s.mu.Unlock()
		return
	}
	s.add(key, &sessionOwner{user: user, seen: now, stored: now}, now)
	s.mu.Unlock()
	if s.store != nil && !s.put(ctx, id, user, now) {
		// The store holds the id for another user: so must the map.
		s.mu.Lock()
		if o := s.owners[key]; o != nil && o.user == user {
			delete(s.owners, key)
		}
		s.mu.Unlock()
	}
}

// put records (or moves the expiry of) the binding in the store, and
// reports false when the store binds id to another user. When the store
// fails, the session still works through this replica.
func (s *sessionOwners) put(ctx context.Context, id, user string, now time.Time) bool {
	err := s.store.PutMCPSession(ctx, &store.MCPSession{Resource: s.resource, Hash: sessionHash(id), UserID: user, ExpiresAt: now.Add(s.idle)}, now)
	switch {
	case errors.Is(err, store.ErrConflict):
		s.log.Warn("upstream handed out a session id that another user opened; it stays theirs", "resource", s.resource, "user", user)
		return false
	case err != nil:
		s.log.Warn("recording a session in the store failed; it works through this replica only", "resource", s.resource, "user", user, "error", err)
	}
	return true
}

// add puts o in the map under key, making room first; s.mu is held.
func (s *sessionOwners) add(key sessionKey, o *sessionOwner, now time.Time) {
	if len(s.owners) >= s.max || now.Sub(s.lastGC) > time.Minute {
		for k, o := range s.owners {
			if now.Sub(o.seen) > s.idle {
				delete(s.owners, k)
			}
		}
		s.lastGC = now
	}
	if _, ok := s.owners[key]; !ok && len(s.owners) >= s.max {
		// Still full: forget the session idle the longest.
		var oldest *sessionOwner
		var oldestKey sessionKey
		for k, o := range s.owners {
			if oldest == nil || o.seen.Before(oldest.seen) {
				oldest, oldestKey = o, k
			}
		}
		delete(s.owners, oldestKey)
	}
	s.owners[key] = o
}

// forget removes the binding of a session the upstream ended, here and in
// the store.
func (s *sessionOwners) forget(ctx context.Context, id string) {
	key := keyOf(id)
	s.mu.Lock()
	delete(s.owners, key)
	s.mu.Unlock()
	if s.store == nil {
		return
	}
	if err := s.store.DeleteMCPSession(ctx, s.resource, key[:]); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Warn("removing an ended session from the store failed; it expires there", "resource", s.resource, "error", err)
	}
}

// errNoSession is the answer to an unknown or foreign session id.
var errNoSession = errorBody(-32001, "session not found")

const sessionHeader = "Mcp-Session-Id"

// recordSession binds a session id the upstream hands out to the caller of
// the request that got it, marks a session used, and forgets one that the
// upstream answered 404 (it ended it, perhaps through another replica, or
// forgot it) or that a DELETE asked to end, whatever the upstream said
// short of failing: a DELETE says the client is done with it, and the
// per-user cap ends sessions with one (SEC-35), which an upstream that
// refuses DELETE (405, as MCP allows) must not turn into sessions a user
// keeps beyond the cap.
func (h *handler) recordSession(ctx context.Context, method string, reqHeader http.Header, caller string, resp *http.Response) {
	sid := reqHeader.Get(sessionHeader)
	if sid != "" && (resp.StatusCode == http.StatusNotFound || method == http.MethodDelete && resp.StatusCode < 500) {
		h.sessions.forget(ctx, sid)
		return
	}
	if resp.StatusCode >= 300 {
		return
	}
	if id := resp.Header.Get(sessionHeader); id != "" {
		h.sessions.bind(ctx, id, caller)
	}
	if sid != "" {
		h.sessions.used(ctx, sid, caller)
	}
}
