package bridge

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"

	"golang.org/x/time/rate"
)

// scanLines calls fn with each newline-terminated line of r (without the
// newline and a trailing carriage return) until r ends. A line longer than
// max (counting a carriage return before the newline) is cut: fn gets its first max bytes with truncated set, and the rest
// of the line is discarded, so one bad line never ends the stream.
func scanLines(r io.Reader, max int, fn func(line []byte, truncated bool)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var buf []byte
	truncated := false
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			if !truncated {
				if room := max - len(buf); len(chunk) > room+1 || (len(chunk) == room+1 && chunk[len(chunk)-1] != '\n') {
					buf = append(buf, chunk[:room]...)
					truncated = true
				} else {
					buf = append(buf, chunk...)
				}
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if len(buf) > 0 || truncated || (err == nil) {
			line := bytes.TrimSuffix(buf, []byte("\n"))
			line = bytes.TrimSuffix(line, []byte("\r"))
			if len(line) > 0 || truncated {
				fn(line, truncated)
			}
		}
		buf = buf[:0]
		if cap(buf) > 1<<20 {
			buf = nil // do not keep a huge buffer for the next, small line
		}
		truncated = false
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// logBudget bounds what one server makes the gateway log of its own text
// (SEC-124): logBurst lines at once, then logRate a second. Each line is
// bounded already; without this, a server writing lines as fast as it can
// would write the gateway's log as fast as the disk takes it, and a Warn
// waits for its write (SEC-105). The lines left out are counted, and the
// count logged when logging resumes and when the server ends.
type logBudget struct {
	lim  *rate.Limiter
	left atomic.Int64 // since the last report
}

// newLogBudget returns the budget of a server whose lines go to the
// gateway's log, or, when tail is set, to a probe's tail, which keeps a
// bounded number of them by itself and must see the last: no budget.
func newLogBudget(tail bool) *logBudget {
	if tail {
		return &logBudget{lim: rate.NewLimiter(rate.Inf, 0)}
	}
	return &logBudget{lim: rate.NewLimiter(logRate, logBurst)}
}

// allow reports whether one more line may go to log; before it, the count
// of the lines left out, if any.
func (b *logBudget) allow(log *slog.Logger) bool {
	if !b.lim.Allow() {
		b.left.Add(1)
		return false
	}
	b.report(log)
	return true
}

// report logs the count of the lines left out since the last report, if
// any.
func (b *logBudget) report(log *slog.Logger) {
	if n := b.left.Swap(0); n > 0 {
		log.Warn(msgLeftOut, "lines", n)
	}
}
