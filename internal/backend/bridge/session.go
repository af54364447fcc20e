package bridge

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Bounds on bridge sessions: a session idle this long without an open
// stream is forgotten (its client gets 404 and initializes again), and at
// most maxSessions exist at once.
const (
	sessionIdle = 24 * time.Hour
	maxSessions = 100_000
)

// session is a bridge session: one client connection (Mcp-Session-Id) of
// one user, through one client, to one link. Its fields are guarded by
// Pool.mu.
type session struct {
	id    string
	key   string           // linkKey of its caller: whose it is (SESS-3) and which link serves it
	init  initParams       // what its initialize asked for
	calls map[string]*call // client request id → in flight
	st    *stream          // its GET stream, if open
	seen  time.Time
}

// stream is an open GET event stream.
type stream struct {
	sess *session
	ch   chan []byte
	done chan struct{}
	once sync.Once
	// queued is the bytes in ch, at most streamBudget: a server that writes
	// faster than its client reads fills a budget, not the gateway's memory.
	queued atomic.Int64
}

// streamBudget bounds the bytes of server messages waiting for one client
// stream: one message of the largest size, or many small ones (SEC-137).
const streamBudget = maxMessage

func (st *stream) end() { st.once.Do(func() { close(st.done) }) }

// offer queues b for the stream's client, unless the stream has ended or
// its queue is full, in messages or in bytes; it reports whether it did.
func (st *stream) offer(b []byte) bool {
	n := int64(len(b))
	if st.queued.Add(n) > streamBudget {
		st.queued.Add(-n)
		return false
	}
	select {
	case st.ch <- b:
		return true
	case <-st.done:
	default:
	}
	st.queued.Add(-n)
	return false
}

// take is what the stream's writer received from ch, leaving the budget.
func (st *stream) take(b []byte) []byte {
	st.queued.Add(-int64(len(b)))
	return b
}

// A session id is "<replica>.<random>": replica names the Pool, and so the
// gateway process, that holds the session's server, random is 128 bits
// (SESS-2). Another replica, which cannot serve the session, reads from
// the id that it belongs elsewhere, and says so, without a store: a load
// balancer can route on it too.
const replicaLen = 8 // base64url of 6 random bytes

func newReplicaID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func newSessionID(replica string) string {
	b := make([]byte, 16)
	rand.Read(b)
	return replica + "." + base64.RawURLEncoding.EncodeToString(b)
}

// elsewhere reports whether session id has the form of one another
// replica made.
func (p *Pool) elsewhere(id string) bool {
	replica, _, ok := strings.Cut(id, ".")
	if !ok || len(replica) != replicaLen || replica == p.replica {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(replica)
	return err == nil
}

// newSession creates a session of the link key.
func (p *Pool) newSession(key string, init initParams) *session {
	s := &session{id: newSessionID(p.replica), key: key, init: init, calls: map[string]*call{}, seen: time.Now()}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := s.seen
	if len(p.sessions) >= maxSessions || now.Sub(p.sweptAt) > time.Minute {
		p.sweptAt = now
		for id, o := range p.sessions {
			if o.st == nil && len(o.calls) == 0 && now.Sub(o.seen) > sessionIdle {
				delete(p.sessions, id)
			}
		}
	}
	if len(p.sessions) >= maxSessions {
		// Still full: forget the session idle the longest.
		var oldest *session
		for _, o := range p.sessions {
			if o.st == nil && len(o.calls) == 0 && (oldest == nil || o.seen.Before(oldest.seen)) {
				oldest = o
			}
		}
		if oldest != nil {
			delete(p.sessions, oldest.id)
		}
	}
	p.sessions[s.id] = s
	return s
}

// session returns the session id if the caller of link key key opened it
// (SESS-3: the same user, through the same client, with the same
// identity), else nil.
func (p *Pool) session(id, key string) *session {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.sessions[id]
	if s == nil || s.key != key {
		return nil
	}
	s.seen = time.Now()
	return s
}

// deleteSession ends s: its stream closes and its requests are cancelled.
func (p *Pool) deleteSession(s *session) {
	p.mu.Lock()
	delete(p.sessions, s.id)
	st := s.st
	calls := make([]*call, 0, len(s.calls))
	for _, c := range s.calls {
		calls = append(calls, c)
	}
	p.mu.Unlock()
	if st != nil {
		st.end()
	}
	for _, c := range calls {
		if c.link.take(c.id) != nil {
			c.link.sendCancel(c.id, "session ended")
			c.fail(codeCancelled, "session ended")
		}
	}
}

// addCall records c under its client id in s; false when that id is
// already in flight in s.
func (p *Pool) addCall(s *session, c *call) bool {
	if s == nil {
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	k := idKey(c.clientID)
	if _, dup := s.calls[k]; dup {
		return false
	}
	s.calls[k] = c
	return true
}

func (p *Pool) removeCall(s *session, c *call) {
	if s == nil {
		return
	}
	p.mu.Lock()
	if s.calls[idKey(c.clientID)] == c {
		delete(s.calls, idKey(c.clientID))
	}
	p.mu.Unlock()
}

func (p *Pool) lookupCall(s *session, clientID json.RawMessage) *call {
	p.mu.Lock()
	defer p.mu.Unlock()
	return s.calls[idKey(clientID)]
}

// openStream makes st the GET stream of its session, ending the one it
// replaces, and its link's most recent stream.
func (p *Pool) openStream(st *stream) bool {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return false
	}
	old := st.sess.st
	st.sess.st = st
	p.streams[st.sess.key] = append(p.streams[st.sess.key], st)
	p.mu.Unlock()
	if old != nil {
		old.end()
	}
	return true
}

// closeStream forgets st and refuses the server requests it carried that
// the client has not answered.
func (p *Pool) closeStream(st *stream) {
	st.end()
	key := st.sess.key
	p.mu.Lock()
	if st.sess.st == st {
		st.sess.st = nil
	}
	list := p.streams[key]
	for i, o := range list {
		if o == st {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(p.streams, key)
	} else {
		p.streams[key] = list
	}
	l := p.links[key]
	p.mu.Unlock()
	if l == nil {
		return
	}
	var orphans []json.RawMessage
	l.mu.Lock()
	for k, o := range l.outbound {
		if o == st {
			orphans = append(orphans, json.RawMessage(k))
			delete(l.outbound, k)
		}
	}
	l.mu.Unlock()
	for _, id := range orphans {
		l.refuse(id)
	}
}

// toClient routes a server→client request or notification to the most
// recently opened GET stream of the link's sessions: the same user,
// client and identity (SEC-153). A request that no stream can take is
// answered with an error at once, so that the server never waits for it;
// a notification is dropped.
func (p *Pool) toClient(l *link, m message, isRequest bool) {
	p.mu.Lock()
	var st *stream
	if list := p.streams[l.key]; len(list) > 0 {
		st = list[len(list)-1]
	}
	p.mu.Unlock()
	if st != nil {
		if isRequest {
			l.mu.Lock()
			full := len(l.outbound) >= maxAwaited || len(m["id"]) > maxServerID
			if l.outbound != nil && !full {
				l.outbound[idKey(m["id"])] = st
			}
			l.mu.Unlock()
			if full {
				if l.noise.allow(l.log) { // the server chooses how often
					l.log.Warn("server request refused: too many awaiting the client's answer, or an id over 256 bytes", "method", m.method(), "awaited", maxAwaited)
				}
				l.refuseWith(m["id"], "too many requests awaiting the client's answer")
				return
			}
		}
		if st.offer(m.encode()) {
			return
		}
		if isRequest {
			l.mu.Lock()
			delete(l.outbound, idKey(m["id"]))
			l.mu.Unlock()
		}
	}
	if isRequest {
		l.log.Debug("server request refused: no open client stream", "method", m.method())
		l.refuse(m["id"])
		return
	}
	l.log.Debug("server notification dropped: no open client stream", "method", m.method())
}
