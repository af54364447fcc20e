package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/mcpgate/mcpgate/internal/logbuf"
	"github.com/mcpgate/mcpgate/internal/privatedir"
	"github.com/mcpgate/mcpgate/internal/safetext"
)

// Outcome says how a tools/call ended.
type Outcome string

const (
	OK        Outcome = "ok"         // a result, not flagged isError
	ToolError Outcome = "tool_error" // a result with isError: true
	Error     Outcome = "error"      // a JSON-RPC error from the backend
	Denied    Outcome = "denied"     // refused by the gateway's tool policy
	// RateLimited: refused by an operator's rate limit (SEC-101), never
	// forwarded.
	RateLimited Outcome = "rate_limited"
	Failed      Outcome = "failed" // no JSON-RPC answer: backend down, HTTP error, client gone
)

// MaxToolName bounds the tool name an Event carries (safetext.Clip): the name is
// the client's text, as long as a request body allows, and every audit
// line, trace span and console entry repeats it. Real tool names are far
// shorter (MCP suggests at most 128 characters).
const MaxToolName = 256

// Event is one tools/call.
type Event struct {
	User     string // identity.User.ID, "<upstream>:<subject>"
	Client   string // OAuth client_id
	Resource string // the resource's path, e.g. /mcp
	Tool     string
	Outcome  Outcome
	Duration time.Duration
	// RequestID is the gateway's id of the HTTP request that carried the
	// call (internal/requestid): the access log line and the trace span
	// have the same.
	RequestID string
}

// Recorder receives events. A nil *Logger records nothing.
type Recorder interface {
	Record(ctx context.Context, e Event)
}

// Logger writes events as log records with the message "tools/call".
type Logger struct {
	// h is the log's handler with the constant first attribute
	// (audit=tools/call) already added: the handler formats it once, and
	// the record's other six attributes are fewer to carry. The output is
	// the same.
	h slog.Handler
}

// New writes events to log.
func New(log *slog.Logger) *Logger {
	return &Logger{h: log.Handler().WithAttrs([]slog.Attr{slog.String("audit", "tools/call")})}
}

// Open appends events as JSON lines to the file at path, created with
// mode 0600 if missing. The lines are buffered (SEC-105): each reaches the
// file within logbuf.DefaultDelay, not in a write system call of its own.
// Close the returned closer at shutdown: it writes what is buffered.
//
// The gateway writes the file as its user, often root: no other user may
// have put a link or a file of theirs where it goes (SEC-221), else the
// gateway would create or append to a file of that user's choosing, or to
// one they read. The process's own standard output and error, as
// containers log, are taken as they are.
func Open(path string) (*Logger, io.Closer, error) {
	flags := os.O_WRONLY | os.O_APPEND | os.O_CREATE
	if !slices.Contains(standardStreams, path) {
		if err := CheckPlace(path, false); err != nil {
			return nil, nil, err
		}
		flags |= syscall.O_NOFOLLOW
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("audit log: %w", err)
	}
	w := logbuf.New(f, logbuf.DefaultDelay)
	// A tool's name is the client's text: written inert (SEC-116).
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{ReplaceAttr: safetext.InertAttr})
	return New(slog.New(logbuf.NewHandler(h, w))), fileCloser{w, f}, nil
}

// standardStreams are the paths of the process's own standard output and
// error, which no other user can put anything at.
var standardStreams = []string{"/dev/stdout", "/dev/stderr", "/proc/self/fd/1", "/proc/self/fd/2"}

// CheckPlace reports why Open would refuse the file at path, which it
// neither makes nor opens (mcpgate check asks it): a link there, a file
// another user owns (with rootReads, root may take its directory's
// owner's, as privatedir.CheckOwnFile says), or a directory every user may
// write to. The directories above are not checked, as the data
// directory's are (SEC-196): /var/log is writable by a group on some
// systems, and the file itself is opened without following a link.
func CheckPlace(path string, rootReads bool) error {
	if slices.Contains(standardStreams, path) {
		return nil
	}
	if err := errors.Join(privatedir.CheckDir(filepath.Dir(path)), privatedir.CheckOwnFile(path, rootReads)); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	return nil
}

// fileCloser flushes the buffer, then closes the file.
type fileCloser struct {
	w *logbuf.Writer
	f *os.File
}

func (c fileCloser) Close() error {
	return errors.Join(c.w.Close(), c.f.Close())
}

// Record writes e. It goes to the handler directly: the source position
// that slog.Logger would capture (runtime.Callers, about 1 µs) means
// nothing for an audit event, and every tool call pays for it.
func (l *Logger) Record(ctx context.Context, e Event) {
	if l == nil {
		return
	}
	h := l.h
	if !h.Enabled(ctx, slog.LevelInfo) {
		return
	}
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "tools/call", 0)
	r.AddAttrs(
		slog.String("user", e.User),
		slog.String("client", e.Client),
		slog.String("resource", e.Resource),
		slog.String("tool", e.Tool),
		slog.String("outcome", string(e.Outcome)),
		slog.Duration("duration", e.Duration),
		slog.String("request_id", e.RequestID),
	)
	_ = h.Handle(ctx, r)
}
