package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"

	"github.com/landlock-lsm/go-landlock/landlock"
	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"
)

const uidsSupported = true

func landlockVersion() int {
	v, err := ll.LandlockGetABIVersion()
	if err != nil {
		return 0
	}
	return v
}

// handled is what the sandbox restricts: every filesystem right the
// kernel knows, and both IPC scopes (signals and abstract unix sockets,
// ABI 6), downgraded to what the running kernel offers. The network is
// left alone: a server may need it, and what it can reach there is no
// more than what any client of the gateway reaches.
var handled = landlock.Config{HandledAccessFS: landlock.V11.HandledAccessFS, Scoped: landlock.V11.Scoped}.BestEffort()

// rules turns p and the executable's path into Landlock rules.
func rules(p Policy, exe string) []landlock.Rule {
	out := []landlock.Rule{
		landlock.RWDirs(p.Home).WithRefer().WithResolveUnix(),
		landlock.RWFiles("/dev/null").IgnoreIfMissing(),
	}
	for _, path := range append(append(append([]string(nil), SystemPaths...), executableDirs(exe)...), p.ReadPaths...) {
		fi, err := os.Stat(path)
		switch {
		case err != nil:
			continue // not on this system
		case fi.IsDir():
			out = append(out, landlock.RODirs(path).IgnoreIfMissing())
		default:
			out = append(out, landlock.ROFiles(path).IgnoreIfMissing())
		}
	}
	return out
}

// Start starts cmd confined by p, and fails rather than start it
// unconfined. With Landlock, the ruleset is enforced on a locked OS
// thread of this process that is never unlocked (see the package
// documentation for why that confines the child and nothing else).
// Without it, only p.Cred applies.
func Start(cmd *exec.Cmd, p Policy) error {
	if p.Cred != nil {
		if cmd.SysProcAttr == nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{}
		}
		// No supplementary groups: the gateway's (root's) are not the user's.
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: p.Cred.UID, Gid: p.Cred.GID, Groups: []uint32{}}
	}
	if landlockVersion() == 0 {
		if p.Cred == nil {
			return ErrUnavailable
		}
		return cmd.Start()
	}
	fd, flags, err := handled.NewRulesetFD(rules(p, cmd.Path)...)
	if err != nil {
		return fmt.Errorf("landlock ruleset: %w", err)
	}
	if fd < 0 {
		return errors.New("landlock ruleset: nothing to enforce")
	}
	defer unix.Close(fd)
	errc := make(chan error, 1)
	go offMainThread(func() {
		// Never unlocked: when this goroutine returns, the runtime ends
		// the thread instead of running other goroutines on it.
		runtime.LockOSThread()
		errc <- startRestricted(cmd, fd, flags)
	})
	return <-errc
}

// offMainThread runs f in a goroutine that is not on the process's main
// thread. The runtime cannot end the main thread, so a goroutine locked
// there that exits leaves it restricted, and the kernel judges signals
// and ptrace aimed at the process's pid by that thread: the child would
// share a domain with its target. Holding the main thread while f starts
// keeps f off it.
func offMainThread(f func()) {
	runtime.LockOSThread()
	if unix.Gettid() != unix.Getpid() {
		f() // still locked here: the goroutine cannot move to the main thread
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
	runtime.UnlockOSThread()
}

// startRestricted restricts the calling (locked) thread and starts cmd
// from it; the child inherits the thread's credentials, Landlock domain
// and no_new_privs included.
func startRestricted(cmd *exec.Cmd, fd int, flags uint32) error {
	// Per thread, as landlock_restrict_self without TSYNC is: prctl acts
	// on the calling thread only.
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	if err := ll.LandlockRestrictSelf(fd, flags); err != nil {
		return fmt.Errorf("landlock_restrict_self: %w", err)
	}
	return cmd.Start()
}

// HardenGateway makes this process non-dumpable: no process of the same
// uid can read its memory or /proc/PID/environ, attach to it, or open
// its file descriptors through /proc — the protection a confined child
// needs when Landlock is missing and the gateway is not root. It applies
// to the whole process.
func HardenGateway() error {
	return unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
}
