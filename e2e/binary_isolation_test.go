package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/crypto/bcrypt"
)

// attackerBin builds e2e/testdata/attacker, a stdio server whose tool
// "try" reads, writes, lists and signals what it is told, into dir.
func attackerBin(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "attacker")
	build := exec.Command("go", "build", "-o", bin, "./testdata/attacker")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the attacker: %v\n%s", err, out)
	}
	return bin
}

// sharedDir is a directory every user may traverse (0755), so that a
// gateway or a server under another uid reaches what the test puts there.
func sharedDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "mcpgate-isolation-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// attackerSession is one user's client of the attacker server.
type attackerSession struct {
	t    *testing.T
	name string
	cs   *mcp.ClientSession
	pid  int
	uid  int
	home string
}

type tryResult struct {
	OK    bool   `json:"ok"`
	Error string `json:"error"`
	Data  string `json:"data"`
}

func (a *attackerSession) try(ctx context.Context, op, target, data string) tryResult {
	a.t.Helper()
	res, err := a.cs.CallTool(ctx, &mcp.CallToolParams{Name: "try", Arguments: map[string]any{"op": op, "target": target, "data": data}})
	if err != nil || res.IsError {
		a.t.Fatalf("%s: try %s %s: %v %+v", a.name, op, target, err, res)
	}
	b, _ := json.Marshal(res.StructuredContent)
	var out tryResult
	if err := json.Unmarshal(b, &out); err != nil {
		a.t.Fatalf("%s: try %s: %s: %v", a.name, op, b, err)
	}
	return out
}

func connectAttacker(t *testing.T, ctx context.Context, p *process, name, pw string) *attackerSession {
	t.Helper()
	h, _ := oauthClientAs(t, name, pw)
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil).
		Connect(ctx, &mcp.StreamableClientTransport{Endpoint: p.base + "/mcp", OAuthHandler: h}, nil)
	if err != nil {
		t.Fatalf("connect as %s: %v\n%s", name, err, p.Stderr())
	}
	t.Cleanup(func() { cs.Close() })
	a := &attackerSession{t: t, name: name, cs: cs}
	var who struct {
		PID  int    `json:"pid"`
		UID  int    `json:"uid"`
		Home string `json:"home"`
		WD   string `json:"wd"`
	}
	if err := json.Unmarshal([]byte(a.try(ctx, "whoami", "", "").Data), &who); err != nil || who.PID == 0 || who.Home == "" || who.WD != who.Home {
		t.Fatalf("%s: whoami %+v %v, want a pid and HOME as the working directory", name, who, err)
	}
	a.pid, a.uid, a.home = who.PID, who.UID, who.Home
	return a
}

// isolationWorld is a gateway with two users, alice and bob, each with
// the attacker as their stdio server.
type isolationWorld struct {
	p          *process
	data       string
	alice, bob *attackerSession
	restart    func() *process // stops p and starts the gateway again on the same data
}

const bobPassword = "e2e password 2"

// bcryptHash is pw's bcrypt hash, of the cost the gateway asks for.
func bcryptHash(t *testing.T, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// startIsolationWorld runs the binary (as cred, when set) with the
// attacker behind /mcp and the users' password hashes in its
// environment, and connects alice and bob.
func startIsolationWorld(t *testing.T, ctx context.Context, cred *syscall.Credential, args ...string) *isolationWorld {
	t.Helper()
	dir := sharedDir(t)
	// The command's directory is readable to every server: its own.
	binDir := filepath.Join(dir, "bin")
	if err := os.Mkdir(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := attackerBin(t, binDir)
	w := &isolationWorld{data: filepath.Join(dir, "data")}
	if err := os.Mkdir(w.data, 0o700); err != nil {
		t.Fatal(err)
	}
	if cred != nil {
		// The binary's directory, made 0700 by TestMain, and the data
		// directory must be the gateway's user's to reach.
		if err := os.Chmod(filepath.Dir(binPath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(w.data, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	// Two accounts in the variable: their passwords as bcrypt hashes,
	// which hold no comma (SEC-173).
	env := []string{"MCPGATE_LOCAL_USERS=" + user + ":" + bcryptHash(t, password) + "," + "bob:" + bcryptHash(t, bobPassword)}
	port := freePort(t)
	args = append([]string{"--data-dir", w.data, "--audit-log", filepath.Join(w.data, "audit.jsonl"), "--stdio", shellQuote(bin)}, args...)
	w.p = startBinaryWith(t, port, binaryOpts{env: env, cred: cred}, args...)
	w.restart = func() *process {
		w.p.stop(t)
		return startBinaryWith(t, port, binaryOpts{env: env, cred: cred}, args...)
	}
	w.alice = connectAttacker(t, ctx, w.p, user, password)
	w.bob = connectAttacker(t, ctx, w.p, "bob", bobPassword)
	if w.alice.pid == w.bob.pid || w.alice.home == w.bob.home {
		t.Fatalf("alice and bob share a process or a HOME: %+v %+v", w.alice, w.bob)
	}
	// What alice will go after: a note in bob's HOME, which his own
	// server writes and reads back.
	if r := w.bob.try(ctx, "write", filepath.Join(w.bob.home, "note"), "bob's note"); !r.OK {
		t.Fatalf("bob cannot write his own HOME: %+v", r)
	}
	if r := w.bob.try(ctx, "read", filepath.Join(w.bob.home, "note"), ""); !r.OK || r.Data != "bob's note" {
		t.Fatalf("bob cannot read his own HOME back: %+v", r)
	}
	return w
}

// attacks are what alice's server tries against the gateway and bob's.
func (w *isolationWorld) attacks() [][2]string {
	gw, bob := strconv.Itoa(w.p.cmd.Process.Pid), strconv.Itoa(w.bob.pid)
	return [][2]string{
		{"read", "/proc/" + gw + "/environ"},
		{"read", filepath.Join(w.data, "secret.key")},
		{"read", filepath.Join(w.data, "mcpgate.db")},
		{"read", filepath.Join(w.data, "audit.jsonl")},
		{"list", w.data},
		{"signal", gw},
		{"read", filepath.Join(w.bob.home, "note")},
		{"list", w.bob.home},
		{"write", filepath.Join(w.bob.home, "planted")},
		{"signal", bob},
		{"append", "/proc/" + bob + "/fd/0"},
		{"read", "/proc/" + bob + "/environ"},
		{"list", "/proc"}, // to see the other processes at all
	}
}

// checkUIDs holds the servers' uids to the mode: as root, one of the
// range each, owning its HOME (0700); otherwise the gateway's.
func (w *isolationWorld) checkUIDs(t *testing.T, cred *syscall.Credential) {
	t.Helper()
	for _, a := range []*attackerSession{w.alice, w.bob} {
		if cred != nil {
			if a.uid != int(cred.Uid) {
				t.Errorf("%s's server runs as uid %d, want the gateway's %d", a.name, a.uid, cred.Uid)
			}
			continue
		}
		if a.uid < 2000000 || a.uid > 2065535 {
			t.Errorf("%s's server runs as uid %d, want one of the default stdio_uid_range 2000000-2065535", a.name, a.uid)
		}
		fi, err := os.Stat(a.home)
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != a.uid || int(st.Gid) != a.uid || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s's HOME: owner %d:%d mode %v, want %d:%d 0700", a.name, st.Uid, st.Gid, fi.Mode().Perm(), a.uid, a.uid)
		}
	}
	if cred == nil && w.alice.uid == w.bob.uid {
		t.Errorf("alice and bob share uid %d", w.alice.uid)
	}
}

// SEC-20, SEC-22: through the real binary, two users' stdio servers; the
// attacker as alice's server tries to read the gateway's environment (the
// users' passwords are in it), key, database and audit log, to read,
// list and write into bob's HOME, to signal the gateway and bob's server,
// to write to bob's server's stdin through /proc and to read its
// environment. The kernel refuses each, with the gateway as root and as
// an unprivileged user (Landlock alone); alice's own HOME and the system
// stay hers to use, and bob's server is unharmed. As root each server has
// a uid of its own, the same after a restart.
func TestSEC20BinaryStdioIsolation(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test runs the gateway as root and as nobody: run it as root (CI does)")
	}
	for _, tc := range []struct {
		name string
		cred *syscall.Credential
	}{
		{"root", nil},
		{"unprivileged", &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			w := startIsolationWorld(t, ctx, tc.cred)
			for _, r := range logRecords(t, w.p.settledStderr(t), "stdio server started") {
				if r["isolation"] != "auto" {
					t.Fatalf("stdio server started with isolation %v, want auto\n%s", r["isolation"], w.p.Stderr())
				}
			}
			w.checkUIDs(t, tc.cred)
			a := w.alice
			if r := a.try(ctx, "write", filepath.Join(a.home, "mine"), "x"); !r.OK {
				t.Fatalf("alice cannot write her own HOME: %+v", r)
			}
			if r := a.try(ctx, "read", "/etc/passwd", ""); !r.OK {
				t.Fatalf("alice's server cannot read /etc/passwd: %+v", r)
			}
			for _, at := range w.attacks() {
				if r := a.try(ctx, at[0], at[1], "from alice"); r.OK {
					t.Errorf("alice's server could %s %s (%d bytes read)", at[0], at[1], len(r.Data))
				}
			}
			if _, err := os.Stat(filepath.Join(w.bob.home, "planted")); err == nil {
				t.Error("a file was planted in bob's HOME")
			}
			if r := w.bob.try(ctx, "read", filepath.Join(w.bob.home, "note"), ""); !r.OK || r.Data != "bob's note" {
				t.Errorf("bob's server after the attacks: %+v, want his note", r)
			}
			// SEC-22: the uid is the user's across a restart (the owner of
			// the HOME is the record), and the HOME is still theirs.
			p := w.restart()
			again := connectAttacker(t, ctx, p, user, password)
			if again.uid != a.uid || again.home != a.home {
				t.Errorf("after a restart alice runs as uid %d in %s, want %d in %s", again.uid, again.home, a.uid, a.home)
			}
			if r := again.try(ctx, "read", filepath.Join(a.home, "mine"), ""); !r.OK || r.Data != "x" {
				t.Errorf("after a restart alice cannot read her file: %+v", r)
			}
			p.stop(t)
		})
	}
}

// The attacks above are real: with stdio_isolation none they succeed,
// and the gateway warns at start that servers run unconfined.
func TestSEC20BinaryStdioIsolationNone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w := startIsolationWorld(t, ctx, nil, "--stdio-isolation", "none")
	if !strings.Contains(w.p.Stderr(), "stdio servers run unconfined") {
		t.Errorf("no warning that servers run unconfined\n%s", w.p.Stderr())
	}
	for _, at := range [][2]string{{"read", filepath.Join(w.data, "secret.key")}, {"read", filepath.Join(w.bob.home, "note")},
		{"signal", strconv.Itoa(w.bob.pid)}} {
		if r := w.alice.try(ctx, at[0], at[1], ""); !r.OK {
			t.Errorf("unconfined, alice's server could not %s %s: %+v; the attack is not what the test thinks", at[0], at[1], r)
		}
	}
	w.p.stop(t)
}

// SEC-21: even unconfined, a server of the gateway's own uid cannot read
// the gateway's /proc/PID/environ (the users' passwords are in it): the
// gateway is non-dumpable. The server reads its own, so /proc is there.
func TestSEC21BinaryNonDumpable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test runs the gateway as nobody: run it as root (CI does)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w := startIsolationWorld(t, ctx, &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}, "--stdio-isolation", "none")
	if r := w.alice.try(ctx, "read", "/proc/"+strconv.Itoa(w.alice.pid)+"/environ", ""); !r.OK || !strings.Contains(r.Data, "MCPGATE_USER=local:alice") {
		t.Fatalf("alice's server cannot read its own environ: ok %v, %s", r.OK, r.Error)
	}
	if r := w.alice.try(ctx, "read", "/proc/"+strconv.Itoa(w.p.cmd.Process.Pid)+"/environ", ""); r.OK {
		t.Errorf("a server of the gateway's uid read the gateway's environ (%d bytes)", len(r.Data))
	}
	w.p.stop(t)
}

// SEC-23: a stdio backend mcpgate refuses to start is a configuration
// error: exit status 2, one "mcpgate:" prefix, and the reason.
func TestSEC23BinaryRefusalExitStatus(t *testing.T) {
	data := filepath.Join(sharedDir(t), "data")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, "serve", "--listen", "127.0.0.1:0", "--data-dir", data,
		"--stdio", "/bin/cat", "--stdio-read-path", filepath.Join(data, "secret.key"))
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("exit: %v, want status 2\n%s", err, out)
	}
	if strings.Contains(string(out), "mcpgate: mcpgate:") || !strings.Contains(string(out), "secret.key") {
		t.Errorf("output %q, want one mcpgate: prefix and the refused read path", out)
	}
}
