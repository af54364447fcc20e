package audit

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestOpenWritesJSONLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	l.Record(context.Background(), Event{User: "local:alice", Client: "c1", Resource: "/mcp", Tool: "echo", Outcome: Denied, Duration: 1500 * time.Microsecond, RequestID: "0123456789abcdef0123456789abcdef"})
	l.Record(context.Background(), Event{User: "local:bob", Client: "c2", Resource: "/gh/mcp", Tool: "whoami", Outcome: OK})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	var lines []map[string]any
	for _, ln := range splitLines(data) {
		var m map[string]any
		if err := json.Unmarshal(ln, &m); err != nil {
			t.Fatalf("line %q: %v, want a JSON object per line", ln, err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2: %s", len(lines), data)
	}
	first := lines[0]
	for k, want := range map[string]any{"msg": "tools/call", "user": "local:alice", "client": "c1", "resource": "/mcp", "tool": "echo", "outcome": "denied", "duration": float64(1500 * time.Microsecond), "request_id": "0123456789abcdef0123456789abcdef"} {
		if first[k] != want {
			t.Errorf("%s = %v, want %v", k, first[k], want)
		}
	}
	if lines[1]["outcome"] != "ok" || lines[1]["user"] != "local:bob" {
		t.Errorf("second event %v, want outcome ok for local:bob", lines[1])
	}
}

func TestNilLoggerRecordsNothing(t *testing.T) {
	var l *Logger
	l.Record(context.Background(), Event{Tool: "x"}) // must not panic
}

func splitLines(b []byte) [][]byte {
	var out [][]byte
	start := 0
	for i, c := range b {
		if c == '\n' {
			if i > start {
				out = append(out, b[start:i])
			}
			start = i + 1
		}
	}
	return out
}

// SEC-105: an event reaches the file within the buffer's bound, with no
// later event and no Close to push it out.
func TestOpenFlushesWithinTheBound(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l.Record(context.Background(), Event{User: "local:alice", Tool: "echo", Outcome: OK})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		data, _ := os.ReadFile(path)
		if len(splitLines(data)) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the event is not in the file after 10 s: %q", data)
		}
	}
}

// SEC-116: the audit file holds a tool's name, the client's text, with
// the characters a terminal or viewer acts on replaced: bidi overrides
// and isolates and the C1 controls (U+009B starts an escape sequence on
// some terminals), which the JSON handler writes raw. Fails before this
// change: `tail -f` of the file showed "FAKE outcome=ok" in red, reordered.
func TestSEC116_AuditFileToolNameInert(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	l.Record(context.Background(), Event{User: "local:alice", Tool: "echo\u202e\u2066\u009b2J\u009b31mFAKE outcome=ok", Outcome: OK})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	for _, r := range []rune{'\u202e', '\u2066', '\u009b'} {
		if strings.ContainsRune(string(data), r) {
			t.Errorf("the audit file holds %U raw: %q", r, data)
		}
	}
	var m map[string]any
	if err := json.Unmarshal(splitLines(data)[0], &m); err != nil || m["tool"] != "echo\ufffd\ufffd\ufffd2J\ufffd31mFAKE outcome=ok" {
		t.Errorf("tool %q (%v), want the name with those characters replaced by U+FFFD", m["tool"], err)
	}
}

// SEC-221: the audit log is opened only where no other user can have put
// a link or a file of theirs: a link, a file another user owns, and a
// directory every user may write to are refused, as for the data
// directory. Fails before: the gateway followed the link and created the
// file where it led, and appended to another user's file.
func TestSEC221_AuditLogPlantedFileRefused(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "elsewhere")
	link := filepath.Join(dir, "audit.log")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if _, c, err := Open(link); err == nil {
		c.Close()
		t.Errorf("a link as the audit log: opened, want it refused")
	}
	if _, err := os.Lstat(target); err == nil {
		t.Errorf("the link's target was created")
	}
	open := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, c, err := Open(filepath.Join(open, "audit.log")); err == nil {
		c.Close()
		t.Errorf("an audit log in a directory every user may write to: opened, want it refused")
	}
	if os.Geteuid() == 0 {
		other := filepath.Join(dir, "other.log")
		if err := os.WriteFile(other, nil, 0o666); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(other, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if _, c, err := Open(other); err == nil {
			c.Close()
			t.Errorf("an audit log another user owns: opened, want it refused")
		}
	} else {
		t.Log("not root: the file of another user, which needs a chown, is not tried (CI runs as root)")
	}
	// The process's own standard error, as a container logs: a link, but
	// no other user's.
	l, c, err := Open("/dev/stderr")
	if err != nil {
		t.Fatalf("/dev/stderr as the audit log: %v, want it taken", err)
	}
	l.Record(context.Background(), Event{User: "local:alice", Tool: "echo", Outcome: OK})
	c.Close()
}
