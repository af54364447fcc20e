package privatedir

import (
	"os"
	"path/filepath"
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
