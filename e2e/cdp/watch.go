package cdp

import (
	"context"
	"fmt"
	"sync"
)

// watcher receives every event of the page while it is registered; offer must not
// block.
type watcher interface{ offer(Event) }

// Watch collects the events a filter accepts, as values of type T, from its creation
// until Stop, so that none is missed between an action and the Wait for its effect.
type Watch[T any] struct {
	b      *Browser
	accept func(Event) (T, bool)
	mu     sync.Mutex
	queue  []T
	signal chan struct{}
}

// NewWatch starts collecting the events for which accept returns true, as the value it
// returns. ExpectRequest and ExpectResponse are built on it.
func NewWatch[T any](b *Browser, accept func(Event) (T, bool)) *Watch[T] {
	return newWatch(b, accept)
}

func newWatch[T any](b *Browser, accept func(Event) (T, bool)) *Watch[T] {
	w := &Watch[T]{b: b, accept: accept, signal: make(chan struct{}, 1)}
	b.mu.Lock()
	b.watches[w] = struct{}{}
	b.mu.Unlock()
	return w
}

func (w *Watch[T]) offer(ev Event) {
	v, ok := w.accept(ev)
	if !ok {
		return
	}
	w.mu.Lock()
	w.queue = append(w.queue, v)
	w.mu.Unlock()
	select {
	case w.signal <- struct{}{}:
	default:
	}
}

// Wait returns the oldest value not yet returned, waiting for one until ctx ends.
func (w *Watch[T]) Wait(ctx context.Context) (T, error) {
	for {
		w.mu.Lock()
		if len(w.queue) > 0 {
			v := w.queue[0]
			w.queue = w.queue[1:]
			w.mu.Unlock()
			return v, nil
		}
		w.mu.Unlock()
		select {
		case <-w.signal:
		case <-ctx.Done():
			var zero T
			return zero, fmt.Errorf("cdp: waiting for an event: %w; the page: %s", ctx.Err(), w.b.describe())
		case <-w.b.closed:
			var zero T
			return zero, fmt.Errorf("cdp: waiting for an event: connection closed: %v", w.b.connErr())
		}
	}
}

// All returns the values collected and not yet returned by Wait, without waiting.
func (w *Watch[T]) All() []T {
	w.mu.Lock()
	defer w.mu.Unlock()
	all := w.queue
	w.queue = nil
	return all
}

// Stop ends the watch; values already collected can still be read.
func (w *Watch[T]) Stop() {
	w.b.mu.Lock()
	delete(w.b.watches, w)
	w.b.mu.Unlock()
}
