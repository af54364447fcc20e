package privatedir

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
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

// CheckPath refuses dir when a user other than the process's or root
// could change what it is, or what it holds (SEC-196): a directory on its
// path, or a link there, that such a user owns, or a directory on it that
// every user, or a group not the process's, may write to without the
// sticky bit. Such a user could rename any file or directory below, and
// put one of their own in its place, between a check of a file and its
// use: the owner of the files is no proof. Links are followed, each
// checked too. What is not made yet ends the check: Make makes it the
// process's.
func CheckPath(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	return checkPath(abs, 0)
}

func checkPath(abs string, links int) error {
	if links > 40 {
		return fmt.Errorf("%s: too many symbolic links on the way", abs)
	}
	p := "/"
	if err := changeableByOthers(p); err != nil {
		return err
	}
	for _, part := range strings.Split(strings.TrimPrefix(abs, "/"), "/") {
		next := filepath.Join(p, part)
		fi, err := os.Lstat(next)
		if err != nil {
			return nil
		}
		if err := changeableByOthers(next); err != nil {
			return err
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			target, err := os.Readlink(next)
			if err != nil {
				return nil
			}
			if !filepath.IsAbs(target) {
				target = filepath.Join(p, target)
			}
			return checkPath(filepath.Join(target, strings.TrimPrefix(abs, next)), links+1)
		}
		p = next
	}
	return nil
}

// changeableByOthers refuses path, a directory or link on the way to the
// gateway's files, that a user other than the process's or root may
// change: one they own, or a directory writable by all, or by a group
// not the process's, without the sticky bit.
func changeableByOthers(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if int(st.Uid) != os.Geteuid() && st.Uid != 0 {
		return fmt.Errorf("%s belongs to uid %d, who could put files of their own where mcpgate's go, not to uid %d, which mcpgate runs as, or root: "+
			"chown it, or choose a data directory elsewhere", path, st.Uid, os.Geteuid())
	}
	mode := fi.Mode()
	if !mode.IsDir() || mode&os.ModeSticky != 0 {
		return nil
	}
	groups, _ := os.Getgroups()
	foreignGroup := int(st.Gid) != os.Getegid() && !slices.Contains(groups, int(st.Gid))
	who := ""
	switch {
	case mode.Perm()&0o002 != 0:
		who = "every user"
	case mode.Perm()&0o020 != 0 && foreignGroup:
		who = fmt.Sprintf("group %d, which mcpgate is not in,", st.Gid)
	default:
		return nil
	}
	return fmt.Errorf("the directory %s may be written by %s (mode %#o), who could put files of their own where mcpgate's go: "+
		"chmod go-w it, or choose a data directory elsewhere", path, who, mode.Perm())
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

// ownsDir reports whether uid owns the directory dir, or the one a link
// there leads to: systemd's StateDirectory with DynamicUser is a link
// root owns to a directory the service's user does.
func ownsDir(dir string, uid uint32) bool {
	fi, err := os.Stat(dir)
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Uid == uid
}
