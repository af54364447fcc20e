package logbuf

import (
	"os"
	"testing"
)

// devNull is a real file, so that the benchmark counts the system call
// that an unbuffered line costs.
func devNull(b *testing.B) *os.File {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	return f
}
