package privatedir

import (
	"os"
	"path/filepath"
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
