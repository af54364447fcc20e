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
	ttl    time.Duration
	now    func() time.Time
	lastGC time.Time
}

// NewDenylist keeps entries for ttl (the access-token lifetime).
func NewDenylist(ttl time.Duration, now func() time.Time) *Denylist {
	if now == nil {
		now = time.Now
	}
	return &Denylist{grants: map[string]time.Time{}, ttl: ttl, now: now}
}

// Revoke denies every access token of grant from now on.
func (d *Denylist) Revoke(grant string) {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.grants[grant] = now.Add(d.ttl)
	d.sweepLocked(now)
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
	d.lastGC = now
}

// RevokeAll denies the access tokens of every grant in ids, as Revoke does
// for one: at start-up, for the grants revoked within one access-token
// lifetime, and for those other gateways revoked (SEC-80).
func (d *Denylist) RevokeAll(ids []string) {
	now := d.now()
	until := now.Add(d.ttl)
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, id := range ids {
		d.grants[id] = until
	}
	d.sweepLocked(now)
}

// Denied reports whether grant was revoked.
func (d *Denylist) Denied(grant string) bool {
	d.mu.RLock()
	_, ok := d.grants[grant]
	d.mu.RUnlock()
	return ok
}
