//go:build linux

package sandbox

import (
	"os/exec"
	"testing"
)

// BenchmarkStart is the cost of starting a confined server: /bin/true,
// started and waited for (the figure in doc.go).
func BenchmarkStart(b *testing.B) {
	home := b.TempDir()
	for b.Loop() {
		cmd := exec.Command("/bin/true")
		if err := Start(cmd, Policy{Home: home}); err != nil {
			b.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStartUnconfined is the same start without the sandbox.
func BenchmarkStartUnconfined(b *testing.B) {
	for b.Loop() {
		if err := exec.Command("/bin/true").Run(); err != nil {
			b.Fatal(err)
		}
	}
}
