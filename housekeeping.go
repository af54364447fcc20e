package mcpgate

import (
	"context"
	"errors"
	"time"

	"github.com/mcpgate/mcpgate/internal/flows"
)

// Unused clients are deleted in batches of clientBatch, each its own
// store write, so that housekeeping never holds the store for long; at
// most maxClientBatches a run, the rest at the next run.
const (
	clientBatch      = 100
	maxClientBatches = 50
)

// Expired records are deleted expireBatch at a time: on SQLite each batch
// is one op of its single writer, which every request that writes waits
// behind, and 500 rows by primary key take it a few milliseconds; on
// PostgreSQL each statement holds the row locks of at most that many
// rows. Between batches the loop rests as long as the batch took, so that
// housekeeping takes at most about half of the writer's time while it
// catches up on a backlog.
const expireBatch = 500

// expiredFor is how long a record stays past its expiry before
// housekeeping deletes it: a code redeemed in the last instant of its
// life is spent before it expires and its grant stored just after, and
// its upstream session, which only the code holds until then, must not
// be deleted between the two (the grant would be ended at its first
// recheck). It also covers a housekeeping replica whose clock runs
// ahead, by up to MaxClockSkew.
const expiredFor = time.Minute

// Housekeeping removes what is no longer needed: expired authorization
// requests, codes, sessions and rate counters, dead refresh tokens, grants
// and upstream sessions (Store.DeleteExpired, in batches of expireBatch),
// the successors of refresh tokens rotated longer than the grace window
// ago (Store.DeleteSuccessors, SEC-181),
// registered clients unused for Config.UnusedClientExpiry that hold no
// live grant (SEC-14), and the flow debugger's events older than 24 hours
// or beyond the latest 100,000 (SEC-114), whichever gateway recorded them.
// `mcpgate serve` runs it every five minutes; a program that embeds the
// gateway should run it now and then too.
func (g *Gateway) Housekeeping(ctx context.Context) error {
	now := g.now()
	err := errors.Join(g.deleteExpired(ctx, now), g.deleteSuccessors(ctx, now), g.deleteFlowEvents(ctx, now))
	if g.clientExpiry > 0 {
		err = errors.Join(err, g.expireClients(ctx, now))
	}
	return err
}

// deleteExpired deletes the records nothing needs any more, a batch at a
// time, until a batch comes back short. A grant goes once no access token
// it issued can still be valid: it has no refresh token left and was
// created (or revoked) revocationKept ago, the longest any access token
// lives, whatever the lifetime set now. Its last access token
// came with its last refresh token, which has then expired, so that holds
// only when refresh tokens outlive access tokens (the settings require
// it; a Config may not): otherwise grants are kept.
func (g *Gateway) deleteExpired(ctx context.Context, now time.Time) error {
	var grantsBefore time.Time
	if g.refreshTTL >= g.accessTTL {
		// expiredFor more, for a replica whose clock runs behind this
		// one's, where the grant's last tokens still live (SEC-169).
		grantsBefore = now.Add(-revocationKept - expiredFor)
	}
	total, err := inBatches(ctx, func() (int, error) {
		return g.store.DeleteExpired(ctx, now.Add(-expiredFor), grantsBefore, expireBatch)
	})
	if total > 0 {
		g.log.Debug("expired records deleted", "count", total)
	}
	return err
}

// deleteSuccessors deletes the successors of the refresh tokens rotated
// longer than the grace window ago, and expiredFor more, so that a
// gateway on the same store whose clock runs behind this one's still
// answers a retry inside its window. One set to a longer window answers a
// retry past that margin with invalid_grant, its pair gone, and leaves the
// family alone, as for a token an older version rotated.
func (g *Gateway) deleteSuccessors(ctx context.Context, now time.Time) error {
	total, err := inBatches(ctx, func() (int, error) {
		return g.store.DeleteSuccessors(ctx, now.Add(-g.refreshGrace-expiredFor), expireBatch)
	})
	if total > 0 {
		g.log.Debug("successors of rotated refresh tokens deleted", "count", total)
	}
	return err
}

// inBatches calls deleteBatch until a batch comes back short of
// expireBatch, resting between two batches as long as the last one took,
// so that a long clean-up takes at most half of the store's time. It
// returns how many were deleted in all.
func inBatches(ctx context.Context, deleteBatch func() (int, error)) (int, error) {
	total := 0
	for {
		start := time.Now()
		n, err := deleteBatch()
		total += n
		if err != nil || n < expireBatch {
			return total, err
		}
		rest := time.NewTimer(time.Since(start))
		select {
		case <-ctx.Done():
			rest.Stop()
			return total, ctx.Err()
		case <-rest.C:
		}
	}
}

// deleteFlowEvents bounds the flow debugger's events (SEC-114), a batch at
// a time as deleteExpired does: by their time's index and by the append
// order's primary key, so that each batch is cheap whatever the table
// holds.
func (g *Gateway) deleteFlowEvents(ctx context.Context, now time.Time) error {
	before := now.Add(-flows.Retention)
	_, err := inBatches(ctx, func() (int, error) {
		return g.store.DeleteFlowEvents(ctx, before, flows.MaxEvents, expireBatch)
	})
	return err
}

// expireClients deletes the clients unused since now - clientExpiry. A
// client is unused when it has not come to /authorize or /token since; its
// last use is recorded at most hourly, which an expiry of days does not
// notice.
func (g *Gateway) expireClients(ctx context.Context, now time.Time) error {
	total := 0
	var err error
	for range maxClientBatches {
		var n int
		n, err = g.store.DeleteUnusedClients(ctx, now.Add(-g.clientExpiry), now, clientBatch)
		total += n
		if err != nil || n < clientBatch {
			break
		}
	}
	if total > 0 {
		g.log.Info("registered clients unused for long deleted", "count", total, "unused_for", g.clientExpiry.String())
	}
	return err
}
