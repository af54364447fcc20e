package authserver

import (
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

// clientTTL is how long a registered client read from the store answers
// for it. A client row never changes but for its last use (which touch
// keeps in the copy here) and its deletion: by housekeeping (SEC-14) or
// by an operator, whose removal must hold on every replica within 1 s.
// An entry is timed from before the read that filled it, so a deletion
// committed at T is seen by every request that starts after T+clientTTL,
// on every replica, with no message between them; half the bound leaves
// the other half for the deleting statement's own commit and the clocks'
// granularity. A busy client then costs one read per replica every
// clientTTL instead of one per request (SEC-85).
const clientTTL = 500 * time.Millisecond

// clientCacheSize bounds the entries (a client is about 1 KB): more clients
// than that active within clientTTL read the store as before.
const clientCacheSize = 4096

// clientCache holds registered clients for clientTTL. Unknown IDs are not
// held: a client registered on another replica is found at its first use.
type clientCache struct {
	mu      sync.Mutex
	entries map[string]cachedClient
	swept   time.Time // the last sweep of expired entries
}

type cachedClient struct {
	c  *store.Client // shared: never modified
	at time.Time     // when the read that returned c began
}

func newClientCache() *clientCache {
	return &clientCache{entries: map[string]cachedClient{}}
}

// fresh reports whether an entry read at at still answers at now. A clock
// set back (now before at) expires it rather than prolonging it.
func fresh(at, now time.Time) bool {
	return !now.Before(at) && now.Sub(at) < clientTTL
}

// get returns the client held for id, or nil.
func (cc *clientCache) get(id string, now time.Time) *store.Client {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	e, ok := cc.entries[id]
	if !ok {
		return nil
	}
	if !fresh(e.at, now) {
		delete(cc.entries, id)
		return nil
	}
	return e.c
}

// put holds c, read from the store by a read that began at at. When the
// cache is full it drops the expired entries, at most once per clientTTL;
// if none had, c is not held.
func (cc *clientCache) put(c *store.Client, at, now time.Time) {
	if !fresh(at, now) {
		return
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if _, ok := cc.entries[c.ID]; !ok && len(cc.entries) >= clientCacheSize {
		if fresh(cc.swept, now) {
			return
		}
		cc.swept = now
		for id, e := range cc.entries {
			if !fresh(e.at, now) {
				delete(cc.entries, id)
			}
		}
		if len(cc.entries) >= clientCacheSize {
			return
		}
	}
	cc.entries[c.ID] = cachedClient{c: c, at: at}
}

// touched records in the held copy of c that it was used at now, so that
// the requests until the entry expires do not record the use again. The
// entry keeps its time: a use never prolongs it.
func (cc *clientCache) touched(c *store.Client, now time.Time) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	e, ok := cc.entries[c.ID]
	if !ok {
		return
	}
	used := *e.c
	used.LastUsedAt = now
	e.c = &used
	cc.entries[c.ID] = e
}
