package logbuf

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// DefaultDelay is the longest a line waits in a Writer's buffer.
const DefaultDelay = 200 * time.Millisecond

// size holds a few hundred access lines: at a few thousand requests per
// second a buffer fills about as often as the delay ends.
const size = 64 << 10

// Writer is an io.Writer that buffers for at most a delay. Each Write is
// written whole and in order: a slog handler writes one record per Write,
// so lines never interleave.
type Writer struct {
	mu    sync.Mutex
	w     io.Writer
	buf   *bufio.Writer
	delay time.Duration
	timer *time.Timer
	// armed: the timer will flush what the buffer holds (or is flushing
	// it now, waiting for mu). Without it, every Write would reset the
	// timer and a steady stream of lines would never be flushed.
	armed  bool
	closed bool
}

// New returns a Writer to w that writes what it holds at most delay after
// it was given.
func New(w io.Writer, delay time.Duration) *Writer { return newSize(w, delay, size) }

func newSize(w io.Writer, delay time.Duration, n int) *Writer {
	b := &Writer{w: w, buf: bufio.NewWriterSize(w, n), delay: delay}
	b.timer = time.AfterFunc(time.Hour, b.timed)
	b.timer.Stop()
	return b
}

// Write buffers p, or writes it through once the Writer is closed.
func (b *Writer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return b.w.Write(p)
	}
	n, err := b.buf.Write(p)
	if err != nil {
		// A failed write (a full disk) must not stop every later line:
		// bufio.Writer keeps its error forever. What it held is lost.
		b.buf.Reset(b.w)
	}
	if b.buf.Buffered() > 0 && !b.armed {
		b.armed = true
		b.timer.Reset(b.delay)
	}
	return n, err
}

// timed is the timer's flush.
func (b *Writer) timed() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.armed = false
	b.flush()
}

// Flush writes what the buffer holds now.
func (b *Writer) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flush()
}

func (b *Writer) flush() error {
	if b.buf.Buffered() == 0 {
		return nil
	}
	err := b.buf.Flush()
	if err != nil {
		b.buf.Reset(b.w)
	}
	return err
}

// Close flushes and stops the timer; later writes go straight through,
// so that a line logged during shutdown is not lost. It does not close
// the underlying writer.
func (b *Writer) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.timer.Stop()
	b.armed, b.closed = false, true
	return b.flush()
}

// Handler is a slog.Handler that flushes its Writer after each record at
// slog.LevelWarn or above.
type Handler struct {
	h slog.Handler
	w *Writer
}

// NewHandler returns h, whose output is w, flushing w after every
// warning and error.
func NewHandler(h slog.Handler, w *Writer) *Handler { return &Handler{h: h, w: w} }

func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.h.Enabled(ctx, l) }

func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	err := h.h.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		if ferr := h.w.Flush(); err == nil {
			err = ferr
		}
	}
	return err
}

func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &Handler{h: h.h.WithAttrs(as), w: h.w}
}

func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{h: h.h.WithGroup(name), w: h.w}
}
