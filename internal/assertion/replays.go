package assertion

import (
	"container/heap"
	"crypto/sha256"
	"errors"
	"sync"
	"time"
)

// Replays remembers the assertions accepted, each until it expires, so
// that each is accepted once. The zero value is not ready: use NewReplays.
//
// Anyone may publish a metadata document and sign as many assertions as
// they like, so a full table never refuses a client: the client holding
// the most assertions gives up its oldest. A flood thus evicts its own,
// and another client is neither refused nor loses its entries unless it
// holds more than every other. The table keeps digests, not the client_id
// (up to 2 KB) and jti (up to 256 bytes) themselves, and a full one costs
// a heap operation, not a walk over every entry.
type Replays struct {
	mu      sync.Mutex
	seen    map[digest]int64 // by digest of client and jti: until, in Unix ns
	clients map[digest]*holder
	byMost  holders // a heap: the client holding the most first
	max     int
	swept   time.Time
}

type digest [sha256.Size]byte

// holder is one client's assertions in the order they came. An entry of
// queue whose until is not seen's is stale: its jti came again once the
// first had expired, or it was swept.
type holder struct {
	client digest
	queue  []held
	live   int // entries of queue in seen
	index  int // in byMost
}

type held struct {
	key   digest
	until int64
}

// NewReplays holds at most limit assertions at once.
func NewReplays(limit int) *Replays {
	return &Replays{seen: map[digest]int64{}, clients: map[digest]*holder{}, max: max(limit, 1)}
}

// ErrReplayed is the refusal of Use.
var ErrReplayed = errors.New("the client assertion was used before: make a new one for each request (a new jti)")

// errExpired refuses an assertion that expired before the last sweep.
var errExpired = errors.New("the client assertion has expired")

// Use records the assertion v of clientID, or refuses it as used before,
// or as expired at the time of a request that came before it. Only
// verified assertions come here.
func (r *Replays) Use(clientID string, v *Verified, now time.Time) error {
	client := digest(sha256.Sum256([]byte(clientID)))
	// The client's digest has a fixed length: each client's jti values
	// are its own, whatever bytes either holds.
	key := digest(sha256.Sum256(append(client[:], v.ID...)))
	// Remembered for as long as Verify would accept it.
	until := v.Expiry.Add(Leeway).UnixNano()
	r.mu.Lock()
	defer r.mu.Unlock()
	if until <= r.swept.UnixNano() {
		// A request may come with a time read before a sweep's (it
		// waited for its client's keys): the sweep may have dropped this
		// very assertion, which had expired by then.
		return errExpired
	}
	if was, ok := r.seen[key]; ok {
		if now.UnixNano() < was {
			return ErrReplayed
		}
		delete(r.seen, key)
		r.lost(r.clients[client])
	}
	if since := now.Sub(r.swept); since > time.Minute || (len(r.seen) >= r.max && since >= time.Second) {
		r.sweep(now)
	}
	if len(r.seen) >= r.max {
		r.evict()
	}
	h := r.clients[client]
	if h == nil {
		h = &holder{client: client}
		r.clients[client] = h
		heap.Push(&r.byMost, h)
	}
	r.seen[key] = until
	h.queue = append(h.queue, held{key, until})
	h.live++
	heap.Fix(&r.byMost, h.index)
	return nil
}

// evict drops the oldest live assertion of the client that holds the
// most; r.seen is not empty.
func (r *Replays) evict() {
	h := r.byMost[0]
	for len(h.queue) > 0 {
		e := h.queue[0]
		h.queue = h.queue[1:]
		if until, ok := r.seen[e.key]; ok && until == e.until {
			delete(r.seen, e.key)
			r.lost(h)
			return
		}
	}
}

// lost counts one assertion fewer for h, which goes once it holds none.
func (r *Replays) lost(h *holder) {
	if h.live--; h.live > 0 {
		heap.Fix(&r.byMost, h.index)
		return
	}
	heap.Remove(&r.byMost, h.index)
	delete(r.clients, h.client)
}

// sweep drops the expired assertions and the stale entries of the queues.
func (r *Replays) sweep(now time.Time) {
	at := now.UnixNano()
	r.byMost = r.byMost[:0]
	for c, h := range r.clients {
		q := h.queue[:0]
		for _, e := range h.queue {
			until, ok := r.seen[e.key]
			switch {
			case !ok || until != e.until:
			case at >= until:
				delete(r.seen, e.key)
			default:
				q = append(q, e)
			}
		}
		h.queue, h.live = q, len(q)
		if h.live == 0 {
			delete(r.clients, c)
			continue
		}
		h.index = len(r.byMost)
		r.byMost = append(r.byMost, h)
	}
	clear(r.byMost[len(r.byMost):cap(r.byMost)]) // the clients gone, and their queues
	heap.Init(&r.byMost)
	r.swept = now
}

// holders order clients by the assertions they hold, most first
// (container/heap).
type holders []*holder

func (s holders) Len() int           { return len(s) }
func (s holders) Less(i, j int) bool { return s[i].live > s[j].live }
func (s holders) Swap(i, j int) {
	s[i], s[j] = s[j], s[i]
	s[i].index, s[j].index = i, j
}
func (s *holders) Push(x any) {
	h := x.(*holder)
	h.index = len(*s)
	*s = append(*s, h)
}
func (s *holders) Pop() any {
	old := *s
	h := old[len(old)-1]
	old[len(old)-1] = nil
	*s = old[:len(old)-1]
	return h
}
