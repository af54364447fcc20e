package cimd

import (
	"context"
	"sync"
)

// flights shares one fetch per key among its concurrent callers. A fetch
// runs under the first caller's values but not its cancellation; a caller
// whose ctx ends stops waiting, and the fetch ends when no caller waits
// any more (CIMD-10, SEC-159): a request dropped at once must not leave
// the gateway fetching, or made-up URLs, each a fetch of its own, would
// keep any number running for one connection at a time.
type flights[T any] struct {
	mu    sync.Mutex
	calls map[string]*flight[T]
}

type flight[T any] struct {
	done    chan struct{}
	cancel  context.CancelFunc
	waiters int
	val     T
	err     error
}

// do returns what fetch returns for key, joining a fetch under way; when
// ctx ends first, it returns ctx's error.
func (fl *flights[T]) do(ctx context.Context, key string, fetch func(context.Context) (T, error)) (T, error) {
	fl.mu.Lock()
	if fl.calls == nil {
		fl.calls = map[string]*flight[T]{}
	}
	c, ok := fl.calls[key]
	if !ok {
		fetchCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		c = &flight[T]{done: make(chan struct{}), cancel: cancel}
		fl.calls[key] = c
		go func() {
			defer cancel()
			v, err := fetch(fetchCtx)
			fl.forget(key, c)
			c.val, c.err = v, err
			close(c.done)
		}()
	}
	c.waiters++
	fl.mu.Unlock()

	select {
	case <-c.done:
		return c.val, c.err
	case <-ctx.Done():
		fl.mu.Lock()
		if c.waiters--; c.waiters == 0 {
			// Nobody waits: the fetch ends, and a later call starts anew.
			c.cancel()
			if fl.calls[key] == c {
				delete(fl.calls, key)
			}
		}
		fl.mu.Unlock()
		var zero T
		return zero, ctx.Err()
	}
}

func (fl *flights[T]) forget(key string, c *flight[T]) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if fl.calls[key] == c {
		delete(fl.calls, key)
	}
}

// waiting is how many callers wait for key's fetch (tests).
func (fl *flights[T]) waiting(key string) int {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if c := fl.calls[key]; c != nil {
		return c.waiters
	}
	return 0
}
