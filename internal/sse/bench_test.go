package sse

import (
	"strings"
	"testing"
)

// BenchmarkScanner reads a tool's answer as the policy sees it: a small
// one, and one of 1 MiB in a single data line, in writes of 32 KiB (an
// io.Copy buffer).
func BenchmarkScanner(b *testing.B) {
	for _, c := range []struct {
		name, stream string
	}{
		{"small", "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":42,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"found 3 issues: #1 #2 #3\"}],\"isError\":false}}\n\n"},
		{"1MiB", "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":42,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"" + strings.Repeat("x", 1<<20) + "\"}]}}\n\n"},
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
