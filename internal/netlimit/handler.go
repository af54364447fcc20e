package netlimit

import (
	"io"
	"net/http"
	"sync/atomic"
)

// Handler wraps a server's handler: once a request has been read whole
// (its body at EOF, or it has none), its connection is marked as being
// served until the handler returns, so that a Listener at its cap does not
// close it for another (see the package documentation).
func Handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := r.Context().Value(connKey{}).(*conn)
		if c == nil { // not on a Listener
			h.ServeHTTP(w, r)
			return
		}
		rr := &request{c: c}
		defer rr.end()
		if r.Body == nil || r.Body == http.NoBody {
			rr.read()
		} else {
			r.Body = &body{ReadCloser: r.Body, rr: rr}
		}
		h.ServeHTTP(w, r)
	})
}

// request follows one request: reading, then served, then ended.
type request struct {
	c     *conn
	state atomic.Int32
}

const (
	reading = iota
	served
	ended
)

// read is called when the request has been read whole, maybe from a
// goroutine other than the handler's (a proxy copying the body).
func (rr *request) read() {
	if !rr.state.CompareAndSwap(reading, served) {
		return
	}
	// Under the listener's lock, so that a connection is never chosen for
	// eviction (makeRoom, under the same lock) after its request was read:
	// either the choice came first and the request is cut with its
	// connection, or the connection counts as served.
	rr.c.l.mu.Lock()
	rr.c.serving.Add(1)
	rr.c.l.mu.Unlock()
}

func (rr *request) end() {
	// Should read's Add come after this one, the sum is still right.
	if rr.state.Swap(ended) == served {
		rr.c.serving.Add(-1)
	}
}

// body is a request body that reports its EOF.
type body struct {
	io.ReadCloser
	rr *request
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.rr.read()
	}
	return n, err
}
