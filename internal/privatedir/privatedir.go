package privatedir

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Make creates dir and the directories between top and dir 0700, and the
// missing parents of top 0711. top is dir itself or a directory above it,
// such as the data directory. The parents are searchable so that stdio
// servers under uids of their own reach their directories below (SEC-22),
// but not readable: one of them may be the data directory itself, whose
// names are no one else's to list. Directories that exist keep their
// modes; those made get theirs whatever the umask (a umask of 077 would
// make the parents 0700, which the servers' uids cannot pass).
func Make(top, dir string) error {
	var made []string // the parents missing, deepest first
	for p := filepath.Dir(top); ; p = filepath.Dir(p) {
		if _, err := os.Lstat(p); err == nil || p == filepath.Dir(p) {
			break
		}
		made = append(made, p)
	}
	if err := os.MkdirAll(filepath.Dir(top), 0o711); err != nil {
		return err
	}
	for _, p := range made {
		if err := os.Chmod(p, 0o711); err != nil {
			return err
		}
	}
	return os.MkdirAll(dir, 0o700)
}

// CheckDir refuses a directory every user may write to: anyone could put
// a link, or a file of their own, where the gateway's file goes, and have
// it made, or read, elsewhere (SEC-150). A directory not made yet passes:
// Make makes it 0700.
func CheckDir(dir string) error {
	if fi, err := os.Stat(dir); err == nil && fi.Mode().Perm()&0o002 != 0 {
		return fmt.Errorf("the directory %s may be written by every user (mode %#o): chmod o-w it, or choose another", dir, fi.Mode().Perm())
	}
	return nil
}

// CheckOwnDir refuses a directory that belongs to another user than the
// process's or root: its owner may rename any file in it, and put one of
// their own in its place, whatever that file's owner and mode (SEC-196).
// A directory not made yet passes: Make makes it the process's.
func CheckOwnDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() && st.Uid != 0 {
		return fmt.Errorf("the directory %s belongs to uid %d, who could replace the files in it, not to uid %d, which mcpgate runs as: chown it to mcpgate's user, or choose another", dir, st.Uid, os.Geteuid())
	}
	return nil
}

// CheckOwnFile refuses a file that is a symbolic link or belongs to
// another user than the process's: whoever owns it, or can change where
// the link leads, decides what the gateway reads there (SEC-171). With
// rootReads, root may read a file of the owner of its directory: an
// operator's `sudo mcpgate check` or `keys rotate` on the data directory
// of the user mcpgate serves as (systemd's DynamicUser gives no fixed user
// to run them as); a gateway serving as root is never given that
// exception (SEC-196). A missing file passes, and so does one Lstat
// cannot read: reading it reports that.
func CheckOwnFile(path string, rootReads bool) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("%s is a symbolic link: it must be a file of its own; put the file itself there", path)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() && !(rootReads && os.Geteuid() == 0 && ownsDir(filepath.Dir(path), st.Uid)) {
		return fmt.Errorf("%s belongs to uid %d, who could change it, not to uid %d, which mcpgate runs as: chown it to mcpgate's user, or run mcpgate as its owner", path, st.Uid, os.Geteuid())
	}
	return nil
}

// ownsDir reports whether uid owns the directory dir.
func ownsDir(dir string, uid uint32) bool {
	fi, err := os.Lstat(dir)
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Uid == uid
}
