package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/safetext"
	"github.com/mcpgate/mcpgate/internal/sandbox"
)

// probeUser is the user a probe's server runs for. No identity provider
// makes this ID (theirs are "provider:subject"), so the probe touches no
// person's directory.
const probeUser = "mcpgate-check"

// A probe's error quotes a failed server's standard error: the first line
// that names a failure (a stack trace puts it after a few lines of
// where), however many lines came before it, and the last probeLastLines
// lines.
const probeLastLines = 2

// failureLine is a line of standard error that names what went wrong.
var failureLine = regexp.MustCompile(`(?i)error|cannot|denied|not found|no such|permission|refused|failed`)

// ProbeStdio starts one server of opts as the pool does for a user's
// first request (the same command, environment, isolation, uid and
// directory), sends it initialize and notifications/initialized, and stops
// it: what `mcpgate check` does to a stdio backend. It returns the
// server's initialize result (protocolVersion, serverInfo, capabilities).
// A server that cannot start, exits or does not answer fails with its
// exit status and its last lines of standard error. The probe's own
// directory under opts.Dir is removed afterwards, and so is every
// directory the probe had to make for opts.Dir; under a uid of its own,
// every process of that uid is ended first (sandbox.ReleaseHome), since
// the uid is free for a real user once the directory is gone. opts.Logger
// and opts.Metrics are not used.
func ProbeStdio(ctx context.Context, opts StdioOptions) (result json.RawMessage, err error) {
	tail := &stderrTail{}
	opts.Logger, opts.Metrics, opts.MaxProcesses = slog.New(tail), nil, 1
	if deadline, ok := ctx.Deadline(); ok && (opts.StartTimeout == 0 || time.Until(deadline) < opts.StartTimeout) {
		opts.StartTimeout = time.Until(deadline)
	}
	made, err := firstMissing(opts.Dir)
	if err != nil {
		return nil, err
	}
	p, err := NewStdio(opts)
	if err != nil {
		removeEmpty(opts.Dir, made)
		return nil, err
	}
	p.opts.tail = true
	home := userDir(p.dir, probeUser)
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), stopGrace+time.Second)
		defer cancel()
		p.Close(cctx)
		if rerr := sandbox.ReleaseHome(opts.UIDs, home); rerr != nil && err == nil {
			result, err = nil, rerr
		}
		removeEmpty(p.dir, made) // a check leaves no data directory behind
	}()
	caller := &identity.Caller{User: identity.User{ID: probeUser, Username: probeUser, Name: "mcpgate check"}, ClientID: probeUser, Resource: opts.Resource}
	l, err := p.acquire(ctx, caller, initParams{version: bridgeVersion})
	if err != nil {
		return nil, tail.explain(err)
	}
	p.release(l)
	return l.initResult, nil
}

// firstMissing is the outermost directory of dir (absolute) that does not
// exist yet, which NewStdio would make; "" when dir exists or is empty (a
// directory under the system's temporary one).
func firstMissing(dir string) (string, error) {
	if dir == "" {
		return "", nil
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	missing := ""
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil || !errors.Is(err, fs.ErrNotExist) {
			return missing, nil
		}
		missing = d
		if filepath.Dir(d) == d {
			return missing, nil
		}
	}
}

// quote is the first line the server wrote that names a failure, then its
// last probeLastLines lines, joined with " | " and "…" where lines are
// left out.
func (t *stderrTail) quote() string {
	lastFrom := t.seen - len(t.last) + 1 // the number of the first line in last
	if t.first == "" || t.firstAt >= lastFrom {
		return strings.Join(t.last, " | ")
	}
	sep := " | "
	if t.firstAt+1 < lastFrom {
		sep = " | … | "
	}
	return t.first + sep + strings.Join(t.last, " | ")
}

// add takes the server's next line of standard error: counted, kept if it
// is the first that names a failure, and among the last ones.
func (t *stderrTail) add(line string) {
	t.seen++
	if t.first == "" && failureLine.MatchString(line) {
		t.first, t.firstAt = line, t.seen
	}
	t.last = append(t.last, line)
	if len(t.last) > probeLastLines {
		t.last = slices.Delete(t.last, 0, 1)
	}
}

// removeEmpty removes dir and its parents up to made, the outermost one
// the probe made, while they are empty: a directory something else has
// put a file in meanwhile (a serve starting at the same time) stays.
func removeEmpty(dir, made string) {
	if made == "" {
		return
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return
	}
	for d := dir; strings.HasPrefix(d, made); d = filepath.Dir(d) {
		if os.Remove(d) != nil || d == made {
			return
		}
	}
}

// stderrTail is the slog.Handler of a probe's pool: it keeps the server's
// lines of standard error, how it exited, and the first error the bridge
// logged about it.
type stderrTail struct {
	mu      sync.Mutex
	seen    int      // lines of standard error
	first   string   // the first that names a failure
	firstAt int      // its number, from 1
	last    []string // the last probeLastLines
	status  string
	failed  string
}

func (t *stderrTail) Enabled(context.Context, slog.Level) bool { return true }
func (t *stderrTail) WithAttrs([]slog.Attr) slog.Handler       { return t }
func (t *stderrTail) WithGroup(string) slog.Handler            { return t }

func (t *stderrTail) Handle(_ context.Context, r slog.Record) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	attr := func(key string) (v string) {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == key {
				v = a.Value.String()
				return false
			}
			return true
		})
		return v
	}
	switch {
	case r.Message == msgStderr:
		if line := strings.TrimSpace(attr("line")); line != "" {
			t.add(line)
		}
	case r.Message == msgExited || r.Message == msgStopped:
		t.status = attr("status")
	case r.Level >= slog.LevelWarn && t.failed == "":
		t.failed = r.Message
	}
	return nil
}

// explain is err with what the server and the bridge said about it: how
// the server ended and its last words, else the bridge's complaint.
func (t *stderrTail) explain(err error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var what []string
	switch {
	case t.status != "":
		what = append(what, "the server ended: "+t.status)
	case errors.Is(err, context.DeadlineExceeded):
		what = append(what, "no answer to initialize in time")
	case errors.Is(err, errStart) && t.failed != "":
		what = append(what, t.failed)
	default:
		what = append(what, err.Error())
	}
	if quoted := t.quote(); quoted != "" {
		what = append(what, "its standard error: "+quoted)
	}
	return errors.New(safetext.Printable(safetext.Clip(strings.Join(what, "; "), 600)))
}
