package mcpgate

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpgate/mcpgate/internal/resource"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/store"
)

// SEC-80: a grant revoked through any gateway sharing the store is refused
// by every other within a second, and the token check still reads only
// memory (TOK-2): a background follower feeds each gateway's denylist.
const (
	// revocationReload is how often each gateway reads the grants revoked
	// lately. A revocation committed after one reload's query began is
	// read by the next: it reaches the denylist within revocationReload
	// plus one query's time, under SEC-80's second with no notification
	// at all. The query is one indexed range scan.
	revocationReload = 500 * time.Millisecond
	// revocationOverlap reaches each reload back before the start of the
	// last one that succeeded, to cover a revoking gateway whose clock
	// (revoked_at is its now) runs behind this one's, and the time between
	// a revocation's now and its commit. A grant read again only has its
	// denylist entry extended.
	revocationOverlap = time.Minute
	// revocationKept is how long a revocation is remembered, in the
	// denylist, at a start and by housekeeping, which keeps revoked grants
	// as long: as long as any access token may live, whatever
	// access_token_ttl says now. A token minted under a longer setting (on
	// another replica, or before a restart that shortened it) would
	// otherwise be accepted again once its revocation was forgotten.
	revocationKept = tokens.MaxLifetime
	// A listener that fails is started again after listenRetry, doubled at
	// each failure in a row up to listenRetryMax; the reload stands in.
	listenRetry    = 100 * time.Millisecond
	listenRetryMax = 10 * time.Second
	// revocationsStale is how long the reloads may fail, or hang, before
	// /readyz takes the gateway out of the traffic (SEC-214): it would
	// take revoked tokens meanwhile. Ten reloads: one slow read is no
	// outage. A reload's read is bounded by as much.
	revocationsStale = 5 * time.Second
)

// revocationFollower feeds a denylist with the grants revoked by other
// processes (or other gateways in this one) on the same store: pushed by a
// store.RevocationFeed when the store has one, and read again with
// RevokedGrantsSince every revocationReload on every store, which also
// catches what a feed missed while it was reconnecting.
type revocationFollower struct {
	st   store.Store
	deny *resource.Denylist
	now  func() time.Time
	log  *slog.Logger
	stop context.CancelFunc
	done chan struct{}
	// readAt is when a reload last read the store, on the monotonic
	// clock: nanoseconds since started. Not the configured clock, which
	// tests move by hours.
	started time.Time
	readAt  atomic.Int64
}

// followRevocations starts a follower; loadedAt is when the gateway read
// the revoked grants at start, where the first reload takes over.
func followRevocations(st store.Store, deny *resource.Denylist, now func() time.Time, log *slog.Logger, loadedAt time.Time) *revocationFollower {
	ctx, cancel := context.WithCancel(context.Background())
	f := &revocationFollower{st: st, deny: deny, now: now, log: log, stop: cancel, done: make(chan struct{}), started: time.Now()}
	go func() {
		defer close(f.done)
		var wg sync.WaitGroup
		if feed, ok := st.(store.RevocationFeed); ok {
			wg.Go(func() { f.listen(ctx, feed) })
		}
		f.reload(ctx, loadedAt)
		wg.Wait()
	}()
	return f
}

// close stops the follower and waits for it, or for ctx.
func (f *revocationFollower) close(ctx context.Context) error {
	f.stop()
	select {
	case <-f.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *revocationFollower) reload(ctx context.Context, lastOK time.Time) {
	tick := time.NewTicker(revocationReload)
	defer tick.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		at := f.now()
		read, cancel := context.WithTimeout(ctx, revocationsStale)
		ids, err := f.st.RevokedGrantsSince(read, lastOK.Add(-revocationOverlap))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !failing {
				f.log.Warn("revocations: reading the grants revoked lately failed; retrying", "err", err, "every", revocationReload.String())
			}
			failing = true
			continue
		}
		if failing {
			f.log.Info("revocations: reading the grants revoked lately works again")
			failing = false
		}
		if len(ids) > 0 {
			f.deny.RevokeAll(ids)
		}
		lastOK = at
		f.readAt.Store(int64(time.Since(f.started)))
	}
}

// fresh reports whether a reload read the store within revocationsStale
// (or the follower started that recently: the gateway read them at its
// start).
func (f *revocationFollower) fresh() bool {
	return time.Since(f.started)-time.Duration(f.readAt.Load()) < revocationsStale
}

func (f *revocationFollower) listen(ctx context.Context, feed store.RevocationFeed) {
	wait := listenRetry
	var listened atomic.Bool
	for {
		err := feed.FollowRevocations(ctx, func() { listened.Store(true) }, f.deny.Revoke)
		if ctx.Err() != nil {
			return
		}
		if listened.Swap(false) {
			wait = listenRetry
		}
		f.log.Warn("revocations: listening for other gateways' revocations failed; the reload stands in until it listens again",
			"err", err, "retry_in", wait.String(), "reload_every", revocationReload.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, listenRetryMax)
	}
}
