package privatedir

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// SEC-22: parents made above top are 0711, top and what lies below it
// 0700; an existing directory keeps its mode.
func TestMakeModes(t *testing.T) {
	base := t.TempDir()
	existing := filepath.Join(base, "existing")
	if err := os.Mkdir(existing, 0o755); err != nil {
		t.Fatal(err)
	}
	top := filepath.Join(existing, "made", "data")
	dir := filepath.Join(top, "stdio", "mcp")
	if err := Make(top, dir); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{
		existing:                        0o755,
		filepath.Join(existing, "made"): 0o711,
		top:                             0o700,
		filepath.Join(top, "stdio"):     0o700,
		dir:                             0o700,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
		} else if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %04o, want %04o", path, got, want)
		}
	}
	if err := Make(top, dir); err != nil {
		t.Errorf("making the same directories again: %v, want nil", err)
	}
}

// SEC-22: the parents made are 0711 under a umask of 077 too (a hardened
// root's), rather than 0700, which the stdio servers' uids could not
// pass: serve then refused to start, naming directories it had made.
func TestMakeModesUnderStrictUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	top := filepath.Join(t.TempDir(), "a", "b", "data")
	if err := Make(top, top); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Dir(top), filepath.Dir(filepath.Dir(top))} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o711 {
			t.Errorf("%s under umask 077: %v %v, want 0711", p, fi.Mode().Perm(), err)
		}
	}
}
