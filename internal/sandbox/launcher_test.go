//go:build linux

package sandbox

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// buildC compiles testdata/NAME.c, static, into dir.
func buildC(t *testing.T, dir, name string) string {
	t.Helper()
	bin := filepath.Join(dir, name)
	out, err := exec.Command("cc", "-static", "-O2", "-o", bin, filepath.Join("testdata", name+".c")).CombinedOutput()
	if err != nil {
		t.Fatalf("this test needs a C compiler with a static libc (cc -static): %v\n%s", err, out)
	}
	return bin
}

// threads are this process's thread ids.
func threads(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range ents {
		ids = append(ids, e.Name())
	}
	return ids
}

// SEC-20: a server cannot signal any thread of the gateway, not even the
// one that started it, in the first microseconds of its life: a static
// program that asks, from its first instruction and for 50 ms, whether it
// may signal each of the gateway's threads is refused every time.
func TestSEC20_ServerCannotSignalGatewayThreads(t *testing.T) {
	needLandlock(t)
	dir := t.TempDir()
	probe := buildC(t, dir, "tidprobe")
	for i := range 50 {
		cmd := exec.Command(probe, threads(t)...)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := Start(cmd, Policy{Home: t.TempDir()}); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err != nil || !strings.Contains(out.String(), "done") {
			t.Fatalf("start %d: the probe failed: %v\n%s", i, err, out.String())
		}
		if strings.Contains(out.String(), "hit") {
			t.Fatalf("start %d: the server could signal a thread of the gateway:\n%s", i, out.String())
		}
	}
}
