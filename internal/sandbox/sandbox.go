package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Modes of StdioOptions.Isolation and the stdio_isolation setting.
const (
	// Auto uses every mechanism the kernel and the gateway's privileges
	// offer, and refuses to start a server when there is none.
	Auto = "auto"
	// None is the operator's explicit opt-out: servers run as the
	// gateway's user with its view of the filesystem.
	None = "none"
)

// ErrRefused marks every refusal to start servers that the operator
// resolves in the configuration or on the host: `mcpgate serve` exits
// with status 2 on it, as for an invalid configuration.
var ErrRefused = errors.New("stdio isolation")

// ErrUnavailable is what Check's refusal wraps, in Auto mode on a system
// that cannot keep servers from the gateway and from each other, and what
// Start returns when there is nothing to confine a server with. It wraps
// ErrRefused.
var ErrUnavailable = fmt.Errorf("%w unavailable", ErrRefused)

// ScopedABI is the first Landlock ABI with scopes (Linux 6.12), which
// keep a server from signalling, or connecting to an abstract unix
// socket of, any process outside its domain: the gateway and the other
// users' servers. Below it, Landlock confines the filesystem only.
const ScopedABI = 6

// Policy is what one sandboxed process may reach besides the system's
// read-only paths (SystemPaths).
type Policy struct {
	// Home is the process's own directory: read, write and execute.
	Home string
	// ReadPaths are files and directories it may read and execute from:
	// the operator's stdio_read_paths.
	ReadPaths []string
	// Cred, when not nil, is the uid and gid the process runs as.
	Cred *Cred
}

// Cred is a separated user's uid and gid.
type Cred struct{ UID, GID uint32 }

// Available reports what this process can isolate a child with: the
// kernel's Landlock ABI version (0 without Landlock) and whether it can
// run children under other uids (it is root).
func Available() (landlockABI int, uids bool) {
	return landlockVersion(), uidsSupported && os.Geteuid() == 0
}

// Check decides whether servers may start under mode, with uids offered
// by the configuration (a uid range set) or not. It returns nil when
// isolation is possible or explicitly off, ErrUnavailable otherwise.
func Check(mode string, uids bool) error {
	abi, root := Available()
	return decide(mode, uids, abi, root)
}

func decide(mode string, uids bool, abi int, root bool) error {
	if mode == None || abi >= ScopedABI || (root && uids) {
		return nil
	}
	var kernel, user string
	if abi == 0 {
		kernel = "this kernel has no Landlock"
	} else {
		kernel = fmt.Sprintf("this kernel's Landlock (ABI %d) confines files but cannot keep a server from signalling the gateway or the other users' servers (that takes ABI %d, Linux 6.12)", abi, ScopedABI)
	}
	if root {
		user = "stdio_uid_range is off, so the servers would all run as root"
	} else {
		user = "mcpgate is not root, so the servers cannot have uids of their own"
	}
	return fmt.Errorf("%w: %s, and %s: a server could harm the gateway and the other users' servers. Run mcpgate as root with stdio_uid_range (a uid per user), use Linux 6.12 or later with Landlock enabled (lsm=landlock on the kernel command line), or set stdio_isolation: none to run the servers unconfined", ErrUnavailable, kernel, user)
}

// SystemPaths are the paths every sandboxed process may read (and
// execute from, except /etc and /dev): the system's programs and
// libraries, and the few files of /etc that programs read to resolve
// names, find certificates and tell the time. The rest of /etc may hold
// the gateway's own configuration, so it is not listed whole.
var SystemPaths = []string{
	"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
	"/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d",
	"/etc/localtime", "/etc/timezone", "/etc/resolv.conf", "/etc/hosts", "/etc/host.conf",
	"/etc/nsswitch.conf", "/etc/gai.conf", "/etc/passwd", "/etc/group", "/etc/services",
	"/etc/protocols", "/etc/ssl", "/etc/ca-certificates", "/etc/pki", "/etc/mime.types",
	"/etc/os-release", "/etc/alternatives", "/etc/terminfo", "/etc/locale.alias",
	"/dev/urandom", "/dev/random", "/dev/zero",
}

// executableDirs are the directories of a command's executable, as
// named and with symbolic links resolved: a runtime such as node is often
// a link into a directory of its own.
func executableDirs(path string) []string {
	dirs := []string{filepath.Dir(path)}
	if real, err := filepath.EvalSymlinks(path); err == nil && filepath.Dir(real) != dirs[0] {
		dirs = append(dirs, filepath.Dir(real))
	}
	return dirs
}

// CheckGrants fails when a path every server may read (the system's, the
// directory of the command exe, readPaths) holds one of private (the
// users' directories, the gateway's data, configuration and secret
// files), which Landlock would then open to every server, or lies inside
// one: the key, the database or one user's HOME as a read path. Symbolic
// links are resolved on both sides where they exist. exe may be empty
// when the command is not found yet.
func CheckGrants(exe string, readPaths, private []string) error {
	grants := append(append([]string(nil), SystemPaths...), readPaths...)
	if exe != "" {
		grants = append(grants, executableDirs(exe)...)
	}
	for _, g := range grants {
		for _, p := range private {
			if p == "" {
				continue
			}
			rg, rp := resolve(g), resolve(p)
			if within(rg, rp) {
				return fmt.Errorf("%w: every server may read %s, which holds %s; move the command or narrow stdio_read_paths", ErrRefused, g, p)
			}
			if within(rp, rg) {
				return fmt.Errorf("%w: every server may read %s, which is inside %s, private to mcpgate; move the command or remove it from stdio_read_paths", ErrRefused, g, p)
			}
		}
	}
	return nil
}

func resolve(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		return real
	}
	return abs
}

// within reports whether p is dir or below it.
func within(dir, p string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// Range is the uids given to users' servers when the gateway is root,
// one per user; each user's gid is the same number.
type Range struct{ First, Last uint32 }

// DefaultRange is stdio_uid_range's default: 65,536 ids far above those
// of system and login accounts (useradd stops at 60000) and below the
// 32-bit ranges container runtimes delegate.
var DefaultRange = Range{First: 2000000, Last: 2065535}

// ParseRange reads "FIRST-LAST".
func ParseRange(s string) (Range, error) {
	a, b, ok := strings.Cut(s, "-")
	first, err1 := strconv.ParseUint(a, 10, 32)
	last, err2 := strconv.ParseUint(b, 10, 32)
	if !ok || err1 != nil || err2 != nil || first < 1000 || last < first || last == 1<<32-1 {
		return Range{}, fmt.Errorf("%q is not FIRST-LAST with 1000 <= FIRST <= LAST < 4294967295", s)
	}
	return Range{First: uint32(first), Last: uint32(last)}, nil
}

// IsZero reports whether r gives no uids.
func (r Range) IsZero() bool { return r == Range{} }

func (r Range) contains(id uint32) bool { return id >= r.First && id <= r.Last }
