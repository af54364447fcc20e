package cimd

import (
	"context"
	"errors"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcpgate/mcpgate/internal/assertion"
	"github.com/mcpgate/mcpgate/store"
)

// DefaultMaxKeyBytes bounds a fetched key set: a few RSA keys take 2–3 KB.
const DefaultMaxKeyBytes = 32 << 10

// keyRefetchEvery: a set is fetched again on a caller's demand (an
// assertion that no cached key verifies) at most this often per URL, so
// that made-up assertions cannot make the gateway fetch for them.
const keyRefetchEvery = 30 * time.Second

// maxKeySetTTL bounds how long a fetched set, or a document that holds its
// keys (jwks), is used, whatever its cache headers allow (documents may be
// kept an hour): a key the client took out of its set, a leaked one, stops
// verifying within this time.
const maxKeySetTTL = 5 * time.Minute

var keySetNames = names{"client's jwks_uri", "client's key set", reasonKeysUnreachable}

type keyEntry struct {
	set              *jose.JSONWebKeySet
	fetched, expires time.Time
	reused           bool // served from the cache since it was stored
}

// Keys returns the public keys with which c, a private_key_jwt client from
// Client, signs its assertions (SEC-128): the document's jwks, or the set
// at its jwks_uri. That set is fetched under the rules of documents (CIMD-10:
// the address checks, no redirects, a JSON media type; at most
// Options.MaxKeyBytes) and cached as they are (CIMD-6), for 5 minutes at
// most. fresh asks for a new
// fetch, which is made unless the last one was under 30 s ago, even of a
// set not to be stored: the client may have rotated its keys since the
// cached copy. Any failure is an *Error.
func (f *Fetcher) Keys(ctx context.Context, c *store.Client, fresh bool) (*jose.JSONWebKeySet, error) {
	if c.JWKS != nil {
		set, err := assertion.ParseKeySet(c.JWKS)
		if err != nil {
			return nil, invalid("jwks: " + err.Error())
		}
		return set, nil
	}
	if c.JWKSURI == "" {
		return nil, invalid("the client has no keys")
	}
	if f.denied(c.ID) || f.denied(c.JWKSURI) {
		return nil, &Error{Reason: reasonKeysDenied}
	}
	u := c.JWKSURI
	// AllowHosts exempts a host's own documents from the address checks;
	// anyone may name any jwks_uri in a document, so a set on such a host
	// is fetched as allowed only for a client whose document is there
	// too, and is then cached apart.
	allowed, key := f.allowed(u) && f.allowed(c.ID), u
	if f.allowed(u) && !allowed {
		key = "checked " + u
	}
	now := f.opts.Now()
	f.mu.Lock()
	e, ok := f.keys[key]
	served := ok && (now.Before(e.expires) || fresh) && (!fresh || now.Sub(e.fetched) < keyRefetchEvery)
	if served && !e.reused {
		e.reused = true
		f.keys[key] = e
	}
	f.mu.Unlock()
	if served {
		return e.set, nil
	}
	set, err := f.keySets.do(ctx, key, func(ctx context.Context) (*jose.JSONWebKeySet, error) {
		return f.fetchKeys(ctx, u, key, allowed)
	})
	if err != nil {
		if !errors.As(err, new(*Error)) { // the caller's ctx ended first
			err = keySetNames.unreachable(err)
		}
		return nil, err
	}
	return set, nil
}

// fetchKeys fetches, checks and caches under key the set at u. Its error
// is an *Error. It runs in flights: ctx ends when no caller waits.
func (f *Fetcher) fetchKeys(ctx context.Context, u, key string, allowed bool) (*jose.JSONWebKeySet, error) {
	if err := validateKeysURL(u); err != nil {
		return nil, err
	}
	body, header, err := f.get(ctx, u, allowed, f.opts.MaxKeyBytes, keySetNames)
	if err == nil {
		var set *jose.JSONWebKeySet
		if set, err = assertion.ParseKeySet(body); err == nil {
			now := f.opts.Now()
			// A set not to be stored is kept all the same, expired, for a
			// caller that asks for a fresh copy within 30 s of this fetch:
			// fetching it again so soon would only serve made-up
			// assertions.
			ttl, _ := f.lifetime(header, now)
			ttl = min(ttl, maxKeySetTTL)
			f.mu.Lock()
			if _, ok := f.keys[key]; !ok {
				evictOne(f.keys, f.opts.MaxEntries, now, func(e keyEntry) (bool, time.Time) { return e.reused, e.expires })
			}
			f.keys[key] = keyEntry{set: set, fetched: now, expires: now.Add(ttl)}
			f.mu.Unlock()
			f.log.Info("cimd: client key set fetched", "jwks_uri", u, "keys", len(set.Keys))
			return set, nil
		}
		err = invalid("the client's key set at jwks_uri: " + err.Error())
	}
	if ctx.Err() != nil {
		f.log.Debug("cimd: key set fetch abandoned: no caller waits for it", "jwks_uri", u)
		return nil, err
	}
	f.log.Info("cimd: client key set rejected", "jwks_uri", u, "err", err.Error())
	return nil, err
}
