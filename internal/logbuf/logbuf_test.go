package logbuf

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// sink is the file the writer writes to; it counts the writes.
type sink struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
}

func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	return s.buf.Write(p)
}

func (s *sink) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.buf.String() }
func (s *sink) Writes() int    { s.mu.Lock(); defer s.mu.Unlock(); return s.writes }

// waitFor polls until s holds want, failing after a generous bound.
func waitFor(t *testing.T, s *sink, want string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(s.String(), want); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%q not written in 10 s; have %q", want, s.String())
		}
	}
}

// Info lines wait in the buffer: many lines, one write.
func TestBuffers(t *testing.T) {
	s := &sink{}
	w := New(s, time.Hour)
	log := slog.New(NewHandler(slog.NewTextHandler(w, nil), w))
	for i := range 100 {
		log.Info("request", "n", i)
	}
	if n := s.Writes(); n != 0 {
		t.Fatalf("%d writes before the bound, want 0", n)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if n, lines := s.Writes(), strings.Count(s.String(), "\n"); n != 1 || lines != 100 {
		t.Errorf("%d writes of %d lines, want 1 of 100", n, lines)
	}
}

// A line is written within the bound with no write after it.
func TestFlushedWithinTheBound(t *testing.T) {
	s := &sink{}
	w := New(s, 20*time.Millisecond)
	defer w.Close()
	start := time.Now()
	fmt.Fprintln(w, "first")
	waitFor(t, s, "first\n")
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Errorf("written after %v, before the bound of 20ms: not buffered", d)
	}
	// The timer is armed again by the next line.
	fmt.Fprintln(w, "second")
	waitFor(t, s, "second\n")
}

// SEC-105: a record at Warn or above is written before Handle returns.
func TestWarnWrittenAtOnce(t *testing.T) {
	s := &sink{}
	w := New(s, time.Hour)
	defer w.Close()
	log := slog.New(NewHandler(slog.NewJSONHandler(w, nil), w)).With("component", "x").WithGroup("g")
	log.Info("before")
	log.Warn("upstream down")
	if got := s.String(); !strings.Contains(got, "before") || !strings.Contains(got, "upstream down") {
		t.Errorf("after a Warn the file holds %q, want both lines", got)
	}
	log.Error("store lost")
	if got := s.String(); !strings.Contains(got, "store lost") {
		t.Errorf("after an Error the file holds %q", got)
	}
	log.Info("after")
	if got := s.String(); strings.Contains(got, "after") {
		t.Errorf("an Info line after the Error was written at once: %q", got)
	}
}

// Close writes what is buffered; a line after Close still reaches the
// file, unbuffered.
func TestClose(t *testing.T) {
	s := &sink{}
	w := New(s, time.Hour)
	fmt.Fprintln(w, "pending")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if s.String() != "pending\n" {
		t.Fatalf("after Close: %q, want the pending line", s.String())
	}
	fmt.Fprintln(w, "late")
	if s.String() != "pending\nlate\n" {
		t.Errorf("a line after Close: %q, want it written through", s.String())
	}
}

// Lines written at once by many goroutines, through a buffer smaller than
// some of them, come out whole, each on its own line.
func TestConcurrentLinesWhole(t *testing.T) {
	s := &sink{}
	w := newSize(s, time.Millisecond, 256)
	log := slog.New(NewHandler(slog.NewTextHandler(w, nil), w))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 300 {
				pad := strings.Repeat("x", (g*37+i)%400)
				if i%50 == 0 {
					log.Warn("line", "g", g, "i", i, "pad", pad)
				} else {
					log.Info("line", "g", g, "i", i, "pad", pad)
				}
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(s.String(), "\n"), "\n")
	if len(lines) != 8*300 {
		t.Fatalf("%d lines, want %d", len(lines), 8*300)
	}
	for _, ln := range lines {
		var g, i int
		var pad string
		if _, err := fmt.Sscanf(ln[strings.Index(ln, "msg=line"):], "msg=line g=%d i=%d pad=%s", &g, &i, &pad); err != nil || len(pad) != (g*37+i)%400 && !(pad == `""` && (g*37+i)%400 == 0) {
			t.Fatalf("line %q is not one whole record: %v", ln, err)
		}
	}
}

func TestHandlerEnabled(t *testing.T) {
	w := New(&sink{}, time.Hour)
	h := NewHandler(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}), w)
	if h.Enabled(context.Background(), slog.LevelInfo) || !h.Enabled(context.Background(), slog.LevelWarn) {
		t.Error("Enabled does not follow the inner handler's level")
	}
}

// BenchmarkAccessLine is one access log line through a JSON handler to a
// file-like sink, buffered or written through.
func BenchmarkAccessLine(b *testing.B) {
	line := func(h slog.Handler) {
		r := slog.NewRecord(time.Now(), slog.LevelInfo, "request", 0)
		r.AddAttrs(slog.String("method", "POST"), slog.String("path", "/mcp"), slog.Int("status", 200),
			slog.Int64("bytes", 312), slog.Duration("duration", 180*time.Microsecond), slog.String("remote", "127.0.0.1"),
			slog.String("request_id", "0123456789abcdef0123456789abcdef"))
		_ = h.Handle(context.Background(), r)
	}
	b.Run("unbuffered", func(b *testing.B) {
		h := slog.NewJSONHandler(devNull(b), nil)
		for b.Loop() {
			line(h)
		}
	})
	b.Run("buffered", func(b *testing.B) {
		w := New(devNull(b), DefaultDelay)
		defer w.Close()
		h := NewHandler(slog.NewJSONHandler(w, nil), w)
		for b.Loop() {
			line(h)
		}
	})
}
