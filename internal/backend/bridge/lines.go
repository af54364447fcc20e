package bridge

import (
	"bufio"
	"bytes"
	"errors"
	"io"
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
