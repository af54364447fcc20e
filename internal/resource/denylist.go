package resource

import (
	"sync"
	"time"
)

// Denylist holds grants revoked while their access tokens may still be
// unexpired. Entries are dropped once every token of the grant has
// expired, so the list stays small.
type Denylist struct {
	mu     sync.RWMutex
	grants map[string]time.Time // grant id -> drop after
	// open are the requests that last (event streams) by grant: a
	// revocation ends them (SEC-158).
	open map[string]map[*watcher]struct{}
	// valid is, by grant, the latest expiry of its access tokens accepted
	// (Seen): the grant's streams last until then, and no longer.
	valid  map[string]time.Time
	ttl    time.Duration
	now    func() time.Time
	lastGC time.Time
}

type watcher struct {
	end   func()
	timer *time.Timer // set under mu, before it can fire
}

// NewDenylist keeps entries for ttl (the access-token lifetime).
func NewDenylist(ttl time.Duration, now func() time.Time) *Denylist {
	if now == nil {
		now = time.Now
	}
	return &Denylist{grants: map[string]time.Time{}, open: map[string]map[*watcher]struct{}{}, valid: map[string]time.Time{}, ttl: ttl, now: now}
}

// Seen records that an access token of grant, valid until exp, was
// accepted: the grant's streams last until then at least (SEC-158), so
// that a client that refreshed keeps its stream.
func (d *Denylist) Seen(grant string, exp time.Time) {
	d.mu.RLock()
	known := d.valid[grant]
	d.mu.RUnlock()
	if !exp.After(known) {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if exp.After(d.valid[grant]) {
		d.valid[grant] = exp
	}
	d.sweepLocked(d.now())
}

// Watch calls end when grant is revoked, at once if it is already, or
// when the last of its access tokens seen (Seen) expires, until stop is
// called: a request that lasts (an event stream) ends with its grant's
// access rather than outlive it (SEC-158). A stolen token's stream ends
// with the token; a client that refreshes keeps its stream.
func (d *Denylist) Watch(grant string, end func()) (stop func()) {
	w := &watcher{end: end}
	d.mu.Lock()
	if _, denied := d.grants[grant]; denied {
		d.mu.Unlock()
		end()
		return func() {}
	}
	m := d.open[grant]
	if m == nil {
		m = map[*watcher]struct{}{}
		d.open[grant] = m
	}
	m[w] = struct{}{}
	w.timer = time.AfterFunc(d.valid[grant].Sub(d.now()), func() { d.expire(grant, w) })
	d.mu.Unlock()
	return func() {
		w.timer.Stop()
		d.mu.Lock()
		defer d.mu.Unlock()
		d.forgetLocked(grant, w)
	}
}

// expire ends w once its grant has no access token left valid, or waits
// for the latest one's expiry.
func (d *Denylist) expire(grant string, w *watcher) {
	d.mu.Lock()
	if _, open := d.open[grant][w]; !open {
		d.mu.Unlock() // stopped, or ended by a revocation
		return
	}
	if left := d.valid[grant].Sub(d.now()); left > 0 {
		w.timer.Reset(left)
		d.mu.Unlock()
		return
	}
	d.forgetLocked(grant, w)
	d.mu.Unlock()
	w.end()
}

// forgetLocked removes w from grant's watchers; d.mu is held.
func (d *Denylist) forgetLocked(grant string, w *watcher) {
	if cur := d.open[grant]; cur != nil {
		delete(cur, w)
		if len(cur) == 0 {
			delete(d.open, grant)
		}
	}
}

// takeWatchersLocked removes and returns the watchers of grant; d.mu is
// held. They are called after it is released.
func (d *Denylist) takeWatchersLocked(grant string, into []*watcher) []*watcher {
	for w := range d.open[grant] {
		into = append(into, w)
	}
	delete(d.open, grant)
	return into
}

func endAll(ws []*watcher) {
	for _, w := range ws {
		w.end()
	}
}

// Revoke denies every access token of grant from now on.
func (d *Denylist) Revoke(grant string) {
	now := d.now()
	d.mu.Lock()
	d.grants[grant] = now.Add(d.ttl)
	d.sweepLocked(now)
	ended := d.takeWatchersLocked(grant, nil)
	d.mu.Unlock()
	endAll(ended)
}

// sweepLocked drops, at most once a minute, the grants whose tokens have
// all expired.
func (d *Denylist) sweepLocked(now time.Time) {
	if now.Sub(d.lastGC) <= time.Minute {
		return
	}
	for g, until := range d.grants {
		if now.After(until) {
			delete(d.grants, g)
		}
	}
	for g, exp := range d.valid {
		if now.After(exp) && d.open[g] == nil {
			delete(d.valid, g)
		}
	}
	d.lastGC = now
}

// RevokeAll denies the access tokens of every grant in ids, as Revoke does
// for one: at start-up, for the grants revoked within one access-token
// lifetime, and for those other gateways revoked (SEC-80).
func (d *Denylist) RevokeAll(ids []string) {
	now := d.now()
	until := now.Add(d.ttl)
	var ended []*watcher
	d.mu.Lock()
	for _, id := range ids {
		d.grants[id] = until
		ended = d.takeWatchersLocked(id, ended)
	}
	d.sweepLocked(now)
	d.mu.Unlock()
	endAll(ended)
}

// Denied reports whether grant was revoked.
func (d *Denylist) Denied(grant string) bool {
	d.mu.RLock()
	_, ok := d.grants[grant]
	d.mu.RUnlock()
	return ok
}
