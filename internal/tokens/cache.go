package tokens

import (
	"sync"
	"time"
)

const cacheShards = 64 // a power of two

// cache maps the SHA-256 of a verified token to its entry. It is sharded so
// that concurrent hits on different tokens do not share a lock.
type cache struct {
	perShard int
	shards   [cacheShards]cacheShard
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[[32]byte]*entry
	_  [64 - 32]byte // RWMutex (24) + map (8): shards 64 bytes apart, so hot neighbours rarely share a cache line
}

func newCache(size int) *cache {
	c := &cache{perShard: (size + cacheShards - 1) / cacheShards}
	for i := range c.shards {
		c.shards[i].m = make(map[[32]byte]*entry)
	}
	return c
}

func (c *cache) shard(key [32]byte) *cacheShard {
	return &c.shards[key[0]&(cacheShards-1)]
}

func (c *cache) get(key [32]byte) *entry {
	s := c.shard(key)
	s.mu.RLock()
	e := s.m[key]
	s.mu.RUnlock()
	return e
}

func (c *cache) put(key [32]byte, e *entry, now time.Time) {
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[key]; !ok && len(s.m) >= c.perShard {
		t := now.Unix()
		for k, old := range s.m {
			if t >= old.exp {
				delete(s.m, k)
			}
		}
		for k := range s.m {
			if len(s.m) < c.perShard {
				break
			}
			delete(s.m, k)
		}
	}
	s.m[key] = e
}

func (c *cache) remove(key [32]byte) {
	s := c.shard(key)
	s.mu.Lock()
	delete(s.m, key)
	s.mu.Unlock()
}

func (c *cache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
