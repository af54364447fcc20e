package resource

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
)

// verified is what the guard remembers of a token it checked: everything
// a later request with the same token needs, so that the hot path neither
// verifies a signature nor allocates.
type verified struct {
	issuer   string // the issuer it was verified for
	kid      string // the key that verified it, trusted again at every use
	grant    string // for the revocation denylist
	scopesOK bool   // carries every scope the resource requires
	info     *auth.TokenInfo
}

// tokenKey is the cache key of a token: its SHA-256, so the cache holds no
// usable token (TOK-4).
func tokenKey(token string) [32]byte {
	return sha256.Sum256([]byte(token))
}

// verifiedCache is a bounded map of verified tokens. When full, expired
// entries go; if none has expired, the map starts over: the next request
// of each token pays one verification.
type verifiedCache struct {
	mu      sync.RWMutex
	entries map[[32]byte]*verified
	max     int
}

func newVerifiedCache(max int) *verifiedCache {
	return &verifiedCache{entries: make(map[[32]byte]*verified), max: max}
}

func (c *verifiedCache) get(key [32]byte) *verified {
	c.mu.RLock()
	v := c.entries[key]
	c.mu.RUnlock()
	return v
}

func (c *verifiedCache) put(key [32]byte, v *verified, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		for k, e := range c.entries {
			if !now.Before(e.info.Expiration) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= c.max {
			clear(c.entries)
		}
	}
	c.entries[key] = v
}
