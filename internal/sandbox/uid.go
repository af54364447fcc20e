//go:build linux

package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The uid of each user is recorded in the filesystem, not in a table:
// it is the owner of the user's directories. A user's directory is
// BASE/<resource>/<hash of the user> (see the bridge), the same name under
// every resource of one data directory, so the uids in use are the owners
// of the directories one level below BASE's parent — the users of every
// resource. A new user's uid is First + (hash mod size), moved on to the
// next free one when another user's directory has it. A restart finds the
// same owners, so the mapping is stable, and nothing else has to be kept
// in step with the directories.
// One allocation at a time: uidMu in this process, and a lock file beside
// the resources' directories across the gateway processes on one data
// directory (replicas on one host), which would otherwise both read a uid
// as free and give it to two users.
var uidMu sync.Mutex

// HomeFor returns the uid (and gid) of the user whose directory is home,
// allocating one from r on first use, and makes home that user's: created
// if missing, owned by the uid (its contents too, when it was not yet),
// mode 0700.
func HomeFor(r Range, home string) (*Cred, error) {
	uidMu.Lock()
	defer uidMu.Unlock()
	base := filepath.Dir(filepath.Dir(home))
	alloc := filepath.Join(base, ".uids.lock")
	lock, err := lockUID(alloc, unix.LOCK_EX)
	if err != nil {
		return nil, fmt.Errorf("stdio: the uids' lock: %w", err)
	}
	defer func() {
		os.Remove(alloc) // under the lock: the next taker finds it gone and makes its own
		lock.Close()
	}()
	name := filepath.Base(home)
	used, mine, err := uidsInUse(r, base, name)
	if err != nil {
		return nil, err
	}
	id, ok := mine, mine != 0
	if !ok {
		if id, ok = pick(r, name, used); !ok {
			return nil, fmt.Errorf("stdio: every uid of %d-%d is taken", r.First, r.Last)
		}
	}
	if err := own(home, id); err != nil {
		return nil, err
	}
	return &Cred{UID: id, GID: id}, nil
}

// ReleaseHome gives up the uid that owns home, a directory HomeFor made:
// every process running as that uid is killed, then home is removed, and
// the uid is free for another user. It is for a uid whose only user is
// ending for good (a check's probe): a process that left its server's
// process group would otherwise live on under a uid that a later user
// gets, with that user's files. On an error home stays, and with it the
// uid's owner. A home that is gone, or not owned by a uid of r, is only
// removed; so is one owned by this process's own uid, which a gateway
// that is not root gives its servers whatever r says: pid -1 would end
// the gateway itself and whatever else runs as it.
func ReleaseHome(r Range, home string) error {
	fi, err := os.Lstat(home)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && fi.IsDir() && st.Uid != 0 && int(st.Uid) != os.Geteuid() && r.contains(st.Uid) {
		if err := killUnlocked(st.Uid, uidLock(home, st.Uid)); err != nil {
			return err
		}
	}
	return os.RemoveAll(home)
}

// uidLock is the name of uid's lock file, for a home of uid: beside the
// resources' directories (see servers).
func uidLock(home string, uid uint32) string {
	return filepath.Join(filepath.Dir(filepath.Dir(home)), fmt.Sprintf(".uid-%d.lock", uid))
}

// killUnlocked kills every process of uid unless another gateway process
// holds its lock file name: it runs a server of that uid, which is then
// another user's too (two processes on one data directory that allocate
// at once can give one uid to two users). This process's own servers of
// uid, which hold it too, are killed.
func killUnlocked(uid uint32, name string) error {
	if u := servers.of(uid, false); u != nil {
		u.mu.Lock()
		defer u.mu.Unlock()
		if u.count > 0 {
			// Whether another process holds the lock too cannot be told
			// from this one's hold: the uid is this process's user's.
			return killAll(uid)
		}
	}
	return killIfUnheld(uid, name)
}

// killIfUnheld kills every process of uid unless another gateway process
// holds the uid's lock file name (it runs a server of that uid), and then
// removes the file, under the lock: a process that starts a server
// meanwhile waits for the kill to end, then finds the file gone and locks
// a new one.
func killIfUnheld(uid uint32, name string) error {
	lock, err := lockUID(name, unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stdio: the uid's lock: %w", err)
	}
	defer lock.Close()
	err = killAll(uid)
	os.Remove(name)
	return err
}

// servers holds, for each uid, this process's servers that Start started
// under it and that have not Ended, and an open lock file of the uid's,
// which it holds shared while there are any. Every gateway process on a
// data directory takes the same file (replicas on one host share it), so
// the end of a user's last server here kills what is left under the uid
// only when no process holds the lock: none has a live server of the
// user's. The lock file lies beside the resources' directories, where no
// server writes.
var servers = liveServers{n: map[uint32]*uidServers{}}

// liveServers' mutex guards only the map: the waits of a uid (for its lock
// while another process kills under it, for the killer) hold that uid's
// own mutex, so that they delay that user's starts and no other user's.
// An entry stays once made, one per uid this process ran a server as.
type liveServers struct {
	mu sync.Mutex
	n  map[uint32]*uidServers
}

type uidServers struct {
	mu    sync.Mutex
	count int
	lock  *os.File
}

// of returns the entry of uid, made if missing when create is set (nil
// otherwise).
func (s *liveServers) of(uid uint32, create bool) *uidServers {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.n[uid]
	if u == nil && create {
		u = &uidServers{}
		s.n[uid] = u
	}
	return u
}

// started counts one more server of c's uid, whose home is home: the
// first takes the uid's lock shared, waiting while another process kills
// what the uid's last server there left.
func (s *liveServers) started(c *Cred, home string) error {
	u := s.of(c.UID, true)
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.count > 0 {
		u.count++
		return nil
	}
	f, err := lockUID(uidLock(home, c.UID), unix.LOCK_SH)
	if err != nil {
		return fmt.Errorf("stdio: the uid's lock: %w", err)
	}
	u.count, u.lock = 1, f
	return nil
}

// lockUID opens the lock file name and locks it with how. The file is
// removed by the process that ended the uid's last server (Ended), so a
// lock taken on a file that was removed meanwhile is taken again on the
// new one: every process must lock the same file.
func lockUID(name string, how int) (*os.File, error) {
	for {
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, err
		}
		if err := unix.Flock(int(f.Fd()), how); err != nil {
			f.Close()
			return nil, err
		}
		held, err1 := f.Stat()
		now, err2 := os.Stat(name)
		if err1 == nil && err2 == nil && os.SameFile(held, now) {
			return f, nil
		}
		f.Close()
	}
}

// Ended tells the sandbox that a server Start started under c has exited
// and been waited for. When it was the user's last one in every gateway
// process on the data directory (a user's servers under every resource
// share the uid), every process still running as that uid is killed:
// children that left the server's process group (setsid), which would
// otherwise run on unsupervised, beyond stdio_max_processes, holding the
// server's pipes.
func Ended(c *Cred) error {
	u := servers.of(c.UID, false)
	if u == nil {
		return nil
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.count == 0 {
		return nil
	}
	if u.count--; u.count > 0 {
		return nil
	}
	// This process's hold goes first; a start here waits on u.mu.
	name := u.lock.Name()
	u.lock.Close()
	u.lock = nil
	return killIfUnheld(c.UID, name)
}

// killerWaitDelay bounds the wait for the killer's output once it has
// exited or been killed.
const killerWaitDelay = 5 * time.Second

// killAll kills every process of uid, from a process of that uid: this
// binary as the launcher, in its killer's role (killAllAs). Never this
// process's uid, nor root's: only a uid given to users' servers.
func killAll(uid uint32) error {
	if uid == 0 || int(uid) == os.Geteuid() {
		return fmt.Errorf("stdio: refusing to end every process of uid %d, which is root's or the gateway's own", uid)
	}
	self, err := executable()
	if err != nil {
		return err
	}
	spec, err := json.Marshal(launch{KillUID: uid})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, self, string(spec))
	cmd.Args[0] = launcherName
	// It runs as the uid whose processes it ends, which may read its
	// environ: nothing of the gateway's (SEC-20).
	cmd.Env = []string{}
	// Its output is a pipe that a process of the uid may hold (one that
	// stopped it before its kill and opened /proc/PID/fd/1, where /proc
	// is open to it): once the killer is gone, that process is waited
	// for no longer, which would hold the uid's lock for ever.
	cmd.WaitDelay = killerWaitDelay
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("stdio: ending the processes of uid %d: %v: %s", uid, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// uidsInUse reads the owners of the users' directories under every
// resource directory of base: the uids of other users, and the one of the
// user named name, if recorded (0 if not).
func uidsInUse(r Range, base, name string) (used map[uint32]bool, mine uint32, err error) {
	used = map[uint32]bool{}
	resources, err := os.ReadDir(base)
	if err != nil {
		return nil, 0, fmt.Errorf("stdio: reading the users' directories: %w", err)
	}
	for _, res := range resources {
		if !res.IsDir() {
			continue
		}
		homes, err := os.ReadDir(filepath.Join(base, res.Name()))
		if err != nil {
			continue
		}
		for _, h := range homes {
			fi, err := h.Info()
			if err != nil || !fi.IsDir() {
				continue
			}
			st, ok := fi.Sys().(*syscall.Stat_t)
			if !ok || !r.contains(st.Uid) {
				continue
			}
			if h.Name() == name {
				mine = st.Uid
			} else {
				used[st.Uid] = true
			}
		}
	}
	return used, mine, nil
}

// pick is the user's first free uid, from a start the hash of the name
// (itself a hash of the user ID) gives.
func pick(r Range, name string, used map[uint32]bool) (uint32, bool) {
	size := uint64(r.Last-r.First) + 1
	sum := sha256.Sum256([]byte(name))
	start := binary.BigEndian.Uint64(sum[:8]) % size
	for i := range size {
		id := r.First + uint32((start+i)%size)
		if !used[id] {
			return id, true
		}
	}
	return 0, false
}

// own makes home the uid's: everything in it, when home is new or was
// not the uid's, then home itself, mode 0700.
func own(home string, id uint32) error {
	if err := os.MkdirAll(home, 0o700); err != nil {
		return fmt.Errorf("stdio: creating the user's directory: %w", err)
	}
	fi, err := os.Lstat(home)
	if err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || st.Uid != id || st.Gid != id {
		err := filepath.WalkDir(home, func(p string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, int(id), int(id))
		})
		if err != nil {
			return fmt.Errorf("stdio: giving the user's directory to uid %d: %w", id, err)
		}
	}
	return os.Chmod(home, 0o700)
}

// Searchable makes dir and every directory above it up to top, the
// data directory, searchable (o+x, not readable) by the users' uids,
// which must walk through them to their directories: the data directory
// is created 0700. It changes only directories this process owns, and
// reports each. Above top it changes nothing, whoever owns the directory
// (a data directory under /root must not open /root): a directory there
// that others cannot search is an error that names it.
func Searchable(top, dir string, changed func(string)) error {
	top = filepath.Clean(top)
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("stdio: %w", err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			if !within(top, d) {
				return fmt.Errorf("%w: %s is not searchable by other users (o+x), which the servers' uids need to reach their directories in the data directory %s below it, and mcpgate changes modes only in its data directory: move the data directory (data_dir) to a path every user can traverse, such as /var/lib/mcpgate, or make %s searchable (chmod o+x) yourself", ErrRefused, d, top, d)
			}
			st, ok := fi.Sys().(*syscall.Stat_t)
			if !ok || int(st.Uid) != os.Geteuid() {
				return fmt.Errorf("%w: %s is not searchable by other users (o+x), which the servers' uids need to reach their directories, and is not mcpgate's to change", ErrRefused, d)
			}
			if err := os.Chmod(d, fi.Mode().Perm()|0o001); err != nil {
				return fmt.Errorf("stdio: %w", err)
			}
			changed(d)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}
