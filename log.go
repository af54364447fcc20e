package mcpgate

import (
	"log/slog"
	"net"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/mcpgate/mcpgate/internal/metrics"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/requestid"
	"github.com/mcpgate/mcpgate/internal/safetext"
	"github.com/mcpgate/mcpgate/internal/tracing"
)

// maxLoggedPath bounds the path a log line shows: a request's path, up
// to its header's 64 KiB, is the client's to make long, and every
// unauthenticated request writes one line.
const maxLoggedPath = 512

// maxLoggedMethod bounds the method a log line shows, for the same reason:
// net/http takes any token as a method, up to the header's 64 KiB. The
// longest method HTTP registries name (UPDATEREDIRECTREF) takes 17.
const maxLoggedMethod = 32

// ServeHTTP serves every endpoint of the gateway and writes one log line
// per request. The query string is never logged: it carries codes and
// states. Every request gets an id of the gateway's own (SEC-103), in
// its context, its answer's X-Request-Id, its log line and its audit
// events.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := requestid.New()
	w.Header().Set(requestid.Header, id)
	ctx := requestid.With(r.Context(), id)
	var span trace.Span
	if g.tracer != nil {
		ctx, span = tracing.StartRequest(ctx, g.tracer, r, id)
	}
	r = r.WithContext(ctx)
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	if badHost(r) {
		// SEC-11: the issuer and every URL the gateway prints may follow
		// the Host; one that is not a plain host[:port] reaches no handler.
		oauth.WriteJSON(rec, r, g.log, oauth.Errorf(oauth.InvalidRequest, "the Host header must be a host name or address with an optional port"))
	} else {
		g.mux.ServeHTTP(rec, r)
	}
	g.metrics.Request(r, rec.status, time.Since(start))
	if span != nil {
		tracing.EndRequest(span, metrics.RouteOf(r), r.Pattern, rec.status)
	}
	g.logRequest(r, rec, start, id)
}

// badHost reports a Host header that is present and not a well-formed
// host[:port]. An absent one (HTTP/1.0) names nothing: the issuer is then
// the fallback.
func badHost(r *http.Request) bool {
	if r.Host == "" {
		return false
	}
	_, _, ok := oauth.ParseHostHeader(r.Host)
	return !ok
}

// logRequest writes the access log line. It is a function of its own so
// that its large frame (a slog.Record) is not on the stack while the
// backend runs: a deeper stack there makes the connection's goroutine grow
// (copy) its stack again after every GC (docs/benchmarks.md, "Stack depth
// matters"). The compiler does not inline it: `go build -gcflags=-m=2 .`
// reports a cost of 584 against the inliner's budget of 80.
func (g *Gateway) logRequest(r *http.Request, rec *statusRecorder, start time.Time, id string) {
	// The handler is called directly: slog.Logger would capture the
	// source position (runtime.Callers) of a line that is always this one.
	logh := g.log.Handler()
	if !logh.Enabled(r.Context(), slog.LevelInfo) {
		return
	}
	remote, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		remote = r.RemoteAddr
	}
	line := slog.NewRecord(time.Now(), slog.LevelInfo, "request", 0)
	line.AddAttrs(
		slog.String("method", safetext.Clip(r.Method, maxLoggedMethod)),
		slog.String("path", safetext.Clip(r.URL.Path, maxLoggedPath)),
		slog.Int("status", rec.status),
		slog.Int64("bytes", rec.bytes),
		slog.Duration("duration", time.Since(start)),
		slog.String("remote", remote),
		slog.String("request_id", id),
	)
	// The client's own id, if it sent a plain one, beside ours: never
	// instead of it (SEC-103).
	if cid := requestid.Client(r.Header.Get(requestid.Header)); cid != "" {
		line.AddAttrs(slog.String("client_request_id", cid))
	}
	_ = logh.Handle(r.Context(), line)
}

type statusRecorder struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wroteHeader {
		s.status, s.wroteHeader = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wroteHeader = true
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

// Flush keeps SSE streams flowing through the recorder.
func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
