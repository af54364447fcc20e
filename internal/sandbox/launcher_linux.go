package sandbox

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"syscall"

	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"
)

// The launcher runs in the init of this package, before main and
// TestMain, in every binary that links it: see the package documentation
// for why an init rather than a call in main.
func init() {
	if len(os.Args) < 3 || os.Args[0] != launcherName {
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
	if err := json.Unmarshal([]byte(spec), &l); err != nil || l.StatusFD < 3 {
		fmt.Fprintln(os.Stderr, "mcpgate-sandbox: started with an unreadable policy; this is mcpgate's stdio launcher, not a command")
		os.Exit(127)
	}
	// The status descriptor closes at a successful exec: Start reads EOF.
	unix.CloseOnExec(l.StatusFD)
	status := os.NewFile(uintptr(l.StatusFD), "status")
	if err := confine(l); err != nil {
		fmt.Fprint(status, err.Error())
		os.Exit(127)
	}
	err := syscall.Exec(l.Path, args, os.Environ())
	fmt.Fprintf(status, "exec %s: %v", l.Path, err)
	os.Exit(127)
}

// confine sets no_new_privs, enforces the Landlock ruleset of l when the
// kernel has Landlock.
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
	return nil
}
