package mcpgate

import (
	"context"
	"errors"
	"time"
)

// Unused clients are deleted in batches of clientBatch, each its own
// store write, so that housekeeping never holds the store for long; at
// most maxClientBatches a run, the rest at the next run.
const (
	clientBatch      = 100
	maxClientBatches = 50
)

// Housekeeping removes what is no longer needed: expired authorization
// requests, codes, sessions and dead refresh tokens (Store.DeleteExpired),
// and registered clients unused for Config.UnusedClientExpiry that hold no
// live grant (SEC-14). `mcpgate serve` runs it every five minutes; a
// program that embeds the gateway should run it now and then too.
func (g *Gateway) Housekeeping(ctx context.Context) error {
	now := g.now()
	err := g.store.DeleteExpired(ctx, now)
	if g.clientExpiry > 0 {
		err = errors.Join(err, g.expireClients(ctx, now))
	}
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
