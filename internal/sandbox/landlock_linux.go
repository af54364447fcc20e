package sandbox

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

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

// launcherName is the launcher's argv[0]: the marker this package's init acts on.
const launcherName = "mcpgate-sandbox"

// launch is what the launcher is told: the policy, the command's
// executable, and the descriptor on which to report a failure.
type launch struct {
	Home      string   `json:"home"`
	ReadPaths []string `json:"read_paths,omitempty"`
	Path      string   `json:"path"`
	StatusFD  int      `json:"status_fd"`
	// KillUID, when set, makes the launcher a killer instead (killAll):
	// it runs as that uid, kills every other process of it, and exits.
	KillUID uint32 `json:"kill_uid,omitempty"`
}

// startTimeout bounds the wait for the launcher's exec of the command.
const startTimeout = 30 * time.Second

// Start starts cmd confined by p, and fails rather than start it
// unconfined. cmd.Path must be absolute. The process started is this
// binary again, as the launcher (see runLauncher and the package
// documentation), under p.Cred when set; it confines itself and execs
// cmd.Path with cmd.Args. Start returns once that exec has happened, or
// with the launcher's error. A command started under p.Cred is reported
// with Ended once it has exited and been waited for.
func Start(cmd *exec.Cmd, p Policy) error {
	if cmd.Err != nil {
		return cmd.Err
	}
	if !filepath.IsAbs(cmd.Path) {
		return fmt.Errorf("stdio: command %q: the path must be absolute", cmd.Path)
	}
	if landlockVersion() == 0 && p.Cred == nil {
		return ErrUnavailable
	}
	if p.Cred != nil {
		if cmd.SysProcAttr == nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{}
		}
		// No supplementary groups: the gateway's (root's) are not the user's.
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: p.Cred.UID, Gid: p.Cred.GID, Groups: []uint32{}}
		if err := servers.started(p.Cred, p.Home); err != nil {
			return err
		}
	}
	err := start(cmd, p)
	if err != nil && p.Cred != nil {
		Ended(p.Cred)
	}
	return err
}

// start starts cmd as the launcher, as Start says.
func start(cmd *exec.Cmd, p Policy) error {
	self, err := executable()
	if err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	arg, err := json.Marshal(launch{Home: p.Home, ReadPaths: p.ReadPaths, Path: cmd.Path, StatusFD: 3 + len(cmd.ExtraFiles)})
	if err != nil {
		w.Close()
		return err
	}
	cmd.Path, cmd.Args = self, append([]string{launcherName, string(arg)}, cmd.Args...)
	cmd.ExtraFiles = append(cmd.ExtraFiles, w)
	err = cmd.Start()
	w.Close()
	cmd.ExtraFiles = cmd.ExtraFiles[:len(cmd.ExtraFiles)-1]
	if err != nil {
		return err
	}
	// Nothing before EOF: the launcher's end closed at its exec.
	r.SetReadDeadline(time.Now().Add(startTimeout))
	msg, err := io.ReadAll(io.LimitReader(r, 4<<10))
	if err == nil && len(msg) == 0 {
		return nil
	}
	cmd.Process.Kill()
	cmd.Wait()
	if err != nil {
		return fmt.Errorf("stdio sandbox: waiting for the launcher: %w", err)
	}
	return fmt.Errorf("stdio sandbox: %s", msg)
}

// executable is this binary: /proc/self/exe, which the kernel resolves
// to the running file even when it was replaced or deleted since, and
// which the launcher can exec under another uid without searching the
// directories above it (the binary must be executable by that uid). Off
// /proc, the path os.Executable finds.
func executable() (string, error) {
	const self = "/proc/self/exe"
	if _, err := os.Stat(self); err == nil {
		return self, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("stdio sandbox: finding this binary to start the launcher: %w", err)
	}
	return exe, nil
}

// HardenGateway makes this process non-dumpable: no process of the same
// uid can read its memory or /proc/PID/environ, attach to it, or open
// its file descriptors through /proc — the protection a confined child
// needs when Landlock is missing and the gateway is not root. It applies
// to the whole process.
func HardenGateway() error {
	return unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
}
