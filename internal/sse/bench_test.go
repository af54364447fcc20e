package sse

import (
	"strings"
	"testing"
)

// BenchmarkScanner reads a tool's answer as the policy sees it: a small
// one, one of 1 MiB in a single data line, and 1 MiB of CRs, in writes of
// 32 KiB (an io.Copy buffer).
func BenchmarkScanner(b *testing.B) {
	for _, c := range []struct {
		name, stream string
	}{
		{"small", "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":42,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"found 3 issues: #1 #2 #3\"}],\"isError\":false}}\n\n"},
		{"1MiB", "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":42,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"" + strings.Repeat("x", 1<<20) + "\"}]}}\n\n"},
		// A backend's blank lines ended with CR alone, 1 MiB of them: each
		// line's search for an LF the 32 KiB write does not hold once ran to
		// its end.
		{"1MiB-CRs", strings.Repeat("\r", 1<<20)},
	} {
		b.Run(c.name, func(b *testing.B) {
			in := []byte(c.stream)
			s := Scanner{Max: 16 << 20, Handle: func(Event) error { return nil }}
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				for p := in; len(p) > 0; {
					n := min(len(p), 32<<10)
					s.Write(p[:n])
					p = p[n:]
				}
			}
		})
	}
}
