package privatedir

import (
	"os"
	"path/filepath"
	"strings"
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

// SEC-196: the data directory's path is the gateway's own and root's.
// A directory on the way that another user owns, or that others may
// write to without the sticky bit, or a link another user owns, is
// refused: its owner could swap what lies below between a check of the
// files and their use (a link flipped between an empty directory and
// theirs, 46 times in 155,000 tries in 2 s, before this check). A
// world-writable sticky directory (/tmp), a link root owns to a
// directory of the process's user (systemd's StateDirectory), and a
// directory a group of the process's may write to (a Kubernetes
// fsGroup volume) pass.
func TestSEC196_CheckPath(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test gives directories to another user, which only root may: the tests run as root")
	}
	const other = 54321
	base := t.TempDir()
	mk := func(path string, mode os.FileMode, uid, gid int) string {
		t.Helper()
		if err := os.MkdirAll(path, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(path, uid, gid); err != nil {
			t.Fatal(err)
		}
		return path
	}
	link := func(target, path string, uid int) string {
		t.Helper()
		if err := os.Symlink(target, path); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(path, uid, -1); err != nil {
			t.Fatal(err)
		}
		return path
	}
	ours := mk(filepath.Join(base, "ours", "data"), 0o700, 0, 0)
	theirsParent := mk(filepath.Join(base, "theirs"), 0o755, other, other)
	underTheirs := mk(filepath.Join(theirsParent, "data"), 0o700, 0, 0)
	openParent := mk(filepath.Join(base, "open"), 0o777, 0, 0)
	underOpen := mk(filepath.Join(openParent, "data"), 0o700, 0, 0)
	sticky := mk(filepath.Join(base, "tmp"), 0o777|os.ModeSticky, 0, 0)
	underSticky := mk(filepath.Join(sticky, "data"), 0o700, 0, 0)
	foreignGroup := mk(filepath.Join(base, "staff"), 0o775, 0, other)
	underForeignGroup := mk(filepath.Join(foreignGroup, "data"), 0o700, 0, 0)
	ownGroup := mk(filepath.Join(base, "fsgroup"), 0o775|os.ModeSetgid, 0, os.Getegid())
	underOwnGroup := mk(filepath.Join(ownGroup, "data"), 0o700, 0, 0)
	systemd := link("private/data", filepath.Join(mk(filepath.Join(base, "lib", "private", "data"), 0o700, 0, 0), "..", "..", "state"), 0)
	theirLink := link(ours, filepath.Join(sticky, "their-link"), other)
	linkToTheirs := link(underTheirs, filepath.Join(base, "ours", "to-theirs"), 0)

	for _, tc := range []struct {
		name, dir, want string
	}{
		{"own", ours, ""},
		{"not made yet", filepath.Join(ours, "later", "data"), ""},
		{"under another user's directory", underTheirs, "belongs to uid 54321"},
		{"another user's directory itself", theirsParent, "belongs to uid 54321"},
		{"under a directory all may write to", underOpen, "may be written by every user (mode 0777)"},
		{"under /tmp, sticky", underSticky, ""},
		{"under a directory another group may write to", underForeignGroup, "may be written by group 54321, which mcpgate is not in, (mode 0775)"},
		{"under a directory its own group may write to", underOwnGroup, ""},
		{"systemd's link to the state directory", systemd, ""},
		{"a link another user owns", theirLink, "belongs to uid 54321"},
		{"a link of ours to another user's directory", linkToTheirs, "belongs to uid 54321"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckPath(tc.dir)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("CheckPath(%s): %v, want %q", tc.dir, err, tc.want)
			}
		})
	}
}

// The exception of SEC-171 for root's commands follows systemd's link:
// the directory's owner is the one of the directory the link leads to.
func TestCheckOwnFileFollowsTheDirectorysLink(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test gives files to another user, which only root may: the tests run as root")
	}
	base := t.TempDir()
	private := filepath.Join(base, "private", "mcpgate")
	if err := os.MkdirAll(private, 0o700); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(private, "mcpgate.db")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{private, file} {
		if err := os.Chown(p, 61234, 61234); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("private/mcpgate", filepath.Join(base, "mcpgate")); err != nil {
		t.Fatal(err)
	}
	through := filepath.Join(base, "mcpgate", "mcpgate.db")
	if err := CheckOwnFile(through, true); err != nil {
		t.Errorf("root's command through systemd's link: %v, want the file of the directory's owner read", err)
	}
	if err := CheckOwnFile(through, false); err == nil {
		t.Error("serve as root on another user's file through the link: taken, want refused")
	}
}
