package bridge

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/backend/proxy"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/safetext"
	"github.com/mcpgate/mcpgate/internal/sse"
	"github.com/mcpgate/mcpgate/internal/tracing"
	"go.opentelemetry.io/otel/trace"
)

// sseSpec is what NewSSE checked.
type sseSpec struct {
	url         *url.URL
	client      *http.Client // follows no redirect
	ids         proxy.IdentityHeaders
	token       func(*identity.Caller) (string, error)
	postTimeout time.Duration
}

// sseConn is a link to a legacy HTTP+SSE server: one GET stream, whose
// first event names the endpoint to POST messages to, and whose message
// events carry what the server sends.
type sseConn struct {
	l    *link
	spec *sseSpec

	ctx    context.Context // the connection's life: cancelled when it ends
	cancel context.CancelFunc

	endpoint    *url.URL      // set by the reader before gotEndpoint is closed
	gotEndpoint chan struct{} // closed when the endpoint is known
	out         chan []byte   // the bridge's own messages, POSTed by writer
	stopped     atomic.Bool   // stop was called
	timedOut    atomic.Bool   // no endpoint event within StartTimeout
}

func newSSEConn(l *link, spec *sseSpec) *sseConn {
	ctx, cancel := context.WithCancel(context.Background())
	return &sseConn{l: l, spec: spec, ctx: ctx, cancel: cancel,
		gotEndpoint: make(chan struct{}), out: make(chan []byte, sendQueue)}
}

// identify sets the caller's identity headers on h.
func (s *sseConn) identify(h http.Header, c *identity.Caller) error {
	token, err := s.spec.ids.MintToken(s.spec.token, c)
	if err != nil {
		return fmt.Errorf("identity token: %w", err)
	}
	s.spec.ids.Each(c, token, s.l.log, h.Set)
	return nil
}

// open GETs the SSE URL as caller c and waits, at most StartTimeout, for
// the endpoint event.
func (s *sseConn) open(c *identity.Caller) error {
	l := s.l
	fail := func() error {
		s.cancel()
		l.finish()
		return errStart
	}
	req, err := http.NewRequestWithContext(s.ctx, http.MethodGet, s.spec.url.String(), nil)
	if err != nil {
		l.log.Error("SSE connection: bad request", "error", err)
		return fail()
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-store")
	if err := s.identify(req.Header, c); err != nil {
		l.log.Error("SSE connection not opened", "error", err)
		return fail()
	}
	timeout := l.pool.opts.startTimeout
	timer := time.AfterFunc(timeout, func() { s.timedOut.Store(true); s.cancel() })
	defer timer.Stop()
	resp, err := s.spec.client.Do(req)
	if err != nil {
		if s.timedOut.Load() {
			l.log.Error("SSE connection: no answer in time", "timeout", timeout)
		} else if s.ctx.Err() == nil {
			l.log.Error("SSE connection could not be opened", "error", safetext.URLError(err))
		}
		return fail()
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); resp.StatusCode != http.StatusOK || mt != "text/event-stream" {
		l.log.Error("SSE connection refused by the upstream", "status", resp.StatusCode, "content_type", resp.Header.Get("Content-Type"))
		resp.Body.Close()
		return fail()
	}
	go s.read(resp.Body)
	select {
	case <-s.gotEndpoint:
	case <-l.done:
		if s.timedOut.Load() {
			l.log.Error("SSE connection: no endpoint event in time", "timeout", timeout)
		}
		return errStart
	}
	// The endpoint's query is typically the upstream session's id: a
	// secret of sorts, kept out of the log.
	l.log.Info("SSE connection opened", "endpoint_path", s.endpoint.Path)
	go s.writer()
	return nil
}

// resolve resolves the endpoint event's URI against the SSE URL: it must
// name the same origin (scheme, host, port), so that no user's messages
// are ever sent elsewhere.
func (s *sseConn) resolve(data []byte) (*url.URL, error) {
	ref := strings.TrimSpace(string(data))
	if ref == "" {
		return nil, fmt.Errorf("empty endpoint")
	}
	u, err := s.spec.url.Parse(ref)
	if err != nil {
		return nil, fmt.Errorf("endpoint is not a URI: %w", err)
	}
	if u.User != nil || oauth.Origin(u.String()) != oauth.Origin(s.spec.url.String()) {
		return nil, fmt.Errorf("endpoint %s://%s%s is not on the origin of the SSE URL", u.Scheme, u.Host, u.Path)
	}
	u.Fragment, u.RawFragment = "", ""
	return u, nil
}

// read handles each event of the stream as it arrives; the stream ending
// ends the link.
func (s *sseConn) read(body io.ReadCloser) {
	l := s.l
	var refused bool
	err := sse.Read(body, maxMessage, func(ev sse.Event) bool {
		if s.endpoint == nil {
			if string(ev.Name) != "endpoint" {
				l.log.Warn("SSE connection: an event before the endpoint event; skipped", "event", string(ev.Name))
				return true
			}
			u, err := s.resolve(ev.Data)
			if err != nil {
				l.log.Error("SSE connection refused: the upstream's endpoint is not on its origin", "error", err)
				refused = true
				return false
			}
			s.endpoint = u
			close(s.gotEndpoint)
			return true
		}
		switch string(ev.Name) {
		case "", "message":
			if ev.TooLarge {
				l.log.Warn("the SSE upstream sent a message over the size limit; skipped", "limit", maxMessage)
				return true
			}
			l.receive(ev.Data)
		default:
			l.log.Debug("SSE connection: event ignored", "event", string(ev.Name))
		}
		return true
	})
	body.Close()
	switch {
	case s.endpoint == nil:
		if !refused && !s.timedOut.Load() && !s.stopped.Load() {
			l.log.Error("SSE connection: the stream ended before the endpoint event", "error", err)
		}
	case s.stopped.Load():
		l.log.Info("SSE connection closed")
	default:
		l.log.Warn("SSE connection ended by the upstream", "error", err)
	}
	s.cancel()
	l.pool.forget(l)
	l.finish()
}

// send POSTs one message to the endpoint as caller c and waits for the
// server to accept it.
func (s *sseConn) send(ctx context.Context, b []byte, c *identity.Caller) error {
	select {
	case <-s.gotEndpoint:
	default:
		return errDead // not open yet: a client's message has no place before initialize
	}
	if s.l.isDead() {
		return errDead
	}
	return s.post(trace.SpanContextFromContext(ctx), b, c)
}

// post sends b as c, in the trace of span (none when it is not valid).
func (s *sseConn) post(span trace.SpanContext, b []byte, c *identity.Caller) error {
	l := s.l
	if c == nil {
		c = l.caller
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.spec.postTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint.String(), bytes.NewReader(b))
	if err != nil {
		return errSend
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	tracing.Inject(trace.ContextWithSpanContext(ctx, span), req.Header)
	if err := s.identify(req.Header, c); err != nil {
		l.log.Error("message not sent to the SSE upstream", "error", err)
		return errSend
	}
	resp, err := s.spec.client.Do(req)
	if err != nil {
		if s.ctx.Err() == nil {
			// The error names the endpoint, whose query is the upstream
			// session's id.
			l.log.Warn("POST to the SSE upstream failed", "error", safetext.URLError(err), "timeout", s.spec.postTimeout)
		}
		return errSend
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil
	}
	detail, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	l.log.Warn("the SSE upstream refused a message", "status", resp.StatusCode, "body", string(bytes.TrimSpace(detail)))
	if resp.StatusCode == http.StatusNotFound {
		// The upstream no longer knows the connection's session: end it,
		// so that the next request opens a new one.
		s.cancel()
	}
	return errSend
}

// enqueue queues a message for writer; it never blocks.
func (s *sseConn) enqueue(b []byte) error {
	if s.l.isDead() {
		return errDead
	}
	select {
	case s.out <- b:
		return nil
	default:
		return errQueue
	}
}

// writer POSTs the bridge's own messages, in order.
func (s *sseConn) writer() {
	for {
		select {
		case b := <-s.out:
			if err := s.post(trace.SpanContext{}, b, nil); err != nil {
				s.l.log.Debug("message of the bridge not delivered to the SSE upstream", "error", err)
			}
		case <-s.ctx.Done():
			return
		}
	}
}

// stop closes the connection and returns when it has ended.
func (s *sseConn) stop(time.Duration) {
	s.stopped.Store(true)
	s.cancel()
	<-s.l.done
}

func (s *sseConn) kill() { s.cancel() }
