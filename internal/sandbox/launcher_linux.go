package sandbox

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"syscall"

	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"
)

// The launcher runs in the init of this package, before main and
// TestMain, in every binary that links it: see the package documentation
// for why an init rather than a call in main.
func init() {
	if len(os.Args) < 2 || os.Args[0] != launcherName {
		return
	}
	runLauncher(os.Args[1], os.Args[2:])
}

// runLauncher confines this process as spec says and execs the command
// whose argv is args. It never returns: a failure is written to the
// status descriptor, which Start reads, and the process exits 127.
func runLauncher(spec string, args []string) {
	// Every step acts on this thread, whose credentials, Landlock domain
	// and no_new_privs the exec'd command takes; the launcher's other
	// threads run only the Go runtime and end at the exec.
	runtime.LockOSThread()
	var l launch
	err := json.Unmarshal([]byte(spec), &l)
	if err == nil && l.KillUID != 0 {
		os.Exit(killAllAs(l.KillUID))
	}
	if err != nil || l.StatusFD < 3 || len(args) == 0 {
		fmt.Fprintln(os.Stderr, "mcpgate-sandbox: started with an unreadable policy; this is mcpgate's stdio launcher, not a command")
		os.Exit(127)
	}
	// The status descriptor closes at a successful exec: Start reads EOF.
	unix.CloseOnExec(l.StatusFD)
	status := os.NewFile(uintptr(l.StatusFD), "status")
	if err := closeInherited(); err != nil {
		fmt.Fprint(status, err.Error())
		os.Exit(127)
	}
	if err := confine(l); err != nil {
		fmt.Fprint(status, err.Error())
		os.Exit(127)
	}
	err = syscall.Exec(l.Path, args, os.Environ())
	fmt.Fprintf(status, "exec %s: %v", l.Path, err)
	os.Exit(127)
}

// closeInherited marks every descriptor from 3 up close-on-exec, the
// status descriptor among them. One the gateway inherited without the
// flag (a wrapper's `exec 3>>log`, a supervisor's pipe) would otherwise
// reach the server already open, past Landlock, which checks only at
// open (SEC-136).
func closeInherited() error {
	const closeRangeCloexec = 1 << 2 // CLOSE_RANGE_CLOEXEC of linux/close_range.h, Linux 5.11
	if err := unix.CloseRange(3, math.MaxUint32, closeRangeCloexec); err == nil {
		return nil
	}
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("marking inherited descriptors close-on-exec: %w", err)
	}
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd >= 3 {
			unix.CloseOnExec(fd)
		}
	}
	return nil
}

// killAllAs kills every process of uid but this one, and returns the exit
// status: kill(2) with pid -1 signals, in one pass that a fork cannot
// outrun, every process this one may signal, which for a process of an
// unprivileged uid without capabilities is exactly that uid's. It refuses
// unless this process is that uid, really and effectively, and never as
// root, for whom pid -1 would mean every process on the machine.
func killAllAs(uid uint32) int {
	if uid == 0 || uint32(unix.Getuid()) != uid || uint32(unix.Geteuid()) != uid {
		fmt.Fprintf(os.Stderr, "mcpgate-sandbox: refusing to end the processes of uid %d from a process of uid %d (it must run as that uid, never as root)\n", uid, unix.Getuid())
		return 127
	}
	if err := unix.Kill(-1, unix.SIGKILL); err != nil && err != unix.ESRCH {
		fmt.Fprintf(os.Stderr, "mcpgate-sandbox: ending the processes of uid %d: %v\n", uid, err)
		return 1
	}
	return 0
}

// confine sets no_new_privs, enforces the Landlock ruleset of l when the
// kernel has Landlock, and drops every capability.
func confine(l launch) error {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	if landlockVersion() > 0 {
		fd, flags, err := handled.NewRulesetFD(rules(Policy{Home: l.Home, ReadPaths: l.ReadPaths}, l.Path)...)
		if err != nil {
			return fmt.Errorf("landlock ruleset: %w", err)
		}
		if fd < 0 {
			return fmt.Errorf("landlock ruleset: nothing to enforce")
		}
		err = ll.LandlockRestrictSelf(fd, flags)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("landlock_restrict_self: %w", err)
		}
	}
	return dropCapabilities()
}

// dropCapabilities leaves this thread, and so the command it execs, no
// capability at all: none in the bounding set (so that exec as uid 0
// grants none either: a root server with stdio_uid_range off would
// otherwise keep CAP_NET_RAW, CAP_SYS_MODULE and the rest), none ambient
// (a gateway given CAP_NET_BIND_SERVICE by systemd would pass it on),
// inheritable, permitted or effective. Shrinking the bounding set needs
// CAP_SETPCAP; a process that lacks it is not root, and exec under
// no_new_privs gives it nothing from that set.
func dropCapabilities() error {
	var caps [2]unix.CapUserData
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	if err := unix.Capget(&hdr, &caps[0]); err != nil {
		return fmt.Errorf("reading the capabilities: %w", err)
	}
	// PR_CAPBSET_DROP answers EPERM before EINVAL without CAP_SETPCAP,
	// so the end of the set is found with PR_CAPBSET_READ.
	if caps[0].Effective&(1<<unix.CAP_SETPCAP) != 0 {
		for c := 0; ; c++ {
			if _, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0); err != nil {
				break // past the last capability this kernel knows
			}
			if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
				return fmt.Errorf("dropping capability %d from the bounding set: %w", c, err)
			}
		}
	} else if os.Geteuid() == 0 {
		return fmt.Errorf("running as root without CAP_SETPCAP: the bounding set cannot be emptied")
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clearing the ambient capabilities: %w", err)
	}
	var none [2]unix.CapUserData
	if err := unix.Capset(&hdr, &none[0]); err != nil {
		return fmt.Errorf("clearing the capabilities: %w", err)
	}
	return nil
}
