//go:build linux

package sandbox

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func owner(t *testing.T, p string) (uid, gid uint32, mode os.FileMode) {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return st.Uid, st.Gid, fi.Mode().Perm()
}

// SEC-22: a user's uid comes from the range, owns the user's HOME (0700,
// with what was in it), is found again from that owner (a restart, or
// another resource of the same data directory), and is never another
// user's: a taken uid moves the next user on, a full range is an error.
func TestSEC22_HomeFor(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("giving directories to other uids needs root: run this test as root (CI does)")
	}
	base := filepath.Join(t.TempDir(), "stdio")
	r := Range{First: 3000000, Last: 3000001} // two uids
	alice := filepath.Join(base, "mcp", "aaaa")
	if err := os.MkdirAll(alice, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(alice, "old"), []byte("from before"), 0o600) // a HOME from before uids
	a, err := HomeFor(r, alice)
	if err != nil {
		t.Fatal(err)
	}
	if !r.contains(a.UID) || a.GID != a.UID {
		t.Fatalf("alice got %+v, want a uid of %+v as uid and gid", a, r)
	}
	if uid, gid, mode := owner(t, alice); uid != a.UID || gid != a.GID || mode != 0o700 {
		t.Errorf("alice's HOME: %d:%d %v, want %d:%d 0700", uid, gid, mode, a.UID, a.GID)
	}
	if uid, _, _ := owner(t, filepath.Join(alice, "old")); uid != a.UID {
		t.Errorf("a file already in alice's HOME is owned by %d, want %d", uid, a.UID)
	}
	if again, err := HomeFor(r, alice); err != nil || *again != *a {
		t.Errorf("alice again: %+v %v, want %+v", again, err, a)
	}
	// Her HOME under another resource gets the same uid.
	if other, err := HomeFor(r, filepath.Join(base, "github_mcp", "aaaa")); err != nil || *other != *a {
		t.Errorf("alice under another resource: %+v %v, want %+v", other, err, a)
	}
	b, err := HomeFor(r, filepath.Join(base, "mcp", "bbbb"))
	if err != nil || b.UID == a.UID {
		t.Fatalf("bob: %+v %v, want the other uid than alice's %d", b, err, a.UID)
	}
	if _, err := HomeFor(r, filepath.Join(base, "mcp", "cccc")); err == nil || !strings.Contains(err.Error(), "taken") {
		t.Errorf("a third user with two uids: %v, want every uid taken", err)
	}
}

// openDir is a new directory every user may traverse (0755), outside the
// test's own temporary directory, which is 0700.
func openDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "mcpgate-searchable-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// SEC-22: the directories from the data directory down to the users'
// become searchable (o+x) and nothing more, so the servers' uids reach
// their HOMEs.
func TestSEC22_Searchable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("run this test as root (CI does)")
	}
	top := openDir(t)
	data := filepath.Join(top, "data")
	dir := filepath.Join(data, "stdio", "mcp")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	var changed []string
	if err := Searchable(data, dir, func(d string) { changed = append(changed, d) }); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir, filepath.Dir(dir), data} {
		if _, _, mode := owner(t, d); mode != 0o701 {
			t.Errorf("%s: mode %v, want 0701 (searchable, not readable)", d, mode)
		}
	}
	if len(changed) != 3 {
		t.Errorf("changed %v, want the three directories reported", changed)
	}
}

// SEC-22: a directory above the data directory is never changed: one that
// other users cannot search is named in the refusal, with what to do, and
// keeps its mode (as /root would, holding a relative data directory).
func TestSEC22_SearchableLeavesAncestors(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("run this test as root (CI does)")
	}
	home := filepath.Join(openDir(t), "root")
	data := filepath.Join(home, "data")
	dir := filepath.Join(data, "stdio", "mcp")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	err := Searchable(data, dir, func(string) {})
	if err == nil || !strings.Contains(err.Error(), home+" ") || !strings.Contains(err.Error(), "data directory") {
		t.Errorf("Searchable under a 0700 %s: %v, want a refusal naming it and saying what to do", home, err)
	}
	if _, _, mode := owner(t, home); mode != 0o700 {
		t.Errorf("%s: mode %v, want it left 0700", home, mode)
	}
}

func TestParseRange(t *testing.T) {
	if r, err := ParseRange("2000000-2065535"); err != nil || r != DefaultRange {
		t.Errorf("ParseRange of the default: %+v %v", r, err)
	}
	for _, bad := range []string{"", "5", "0-10", "999-2000", "20-10", "a-b", "1000-4294967295", "1000-"} {
		if _, err := ParseRange(bad); err == nil {
			t.Errorf("ParseRange(%q) succeeded, want an error", bad)
		}
	}
}
