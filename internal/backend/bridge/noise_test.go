package bridge

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// SEC-124: a server that writes lines as fast as it can to its stderr, or
// what is no JSON-RPC message to its stdout, makes the gateway log at
// most logBurst of them at once and then logRate a second: the rest are
// counted and the count logged once logging resumes. It still answers.
func TestSEC124_ServerNoiseBounded(t *testing.T) {
	f := newFixture(t, StdioOptions{})
	cs := f.connect(t, "alice", "2025-11-25", nil)
	start := time.Now()
	const n = 5000
	if got := callText(t, cs, "noise", map[string]any{"text": strconv.Itoa(n)}); got != "ok" {
		t.Fatalf("noise answered %q, want ok", got)
	}
	// Logging resumes: a line written now is logged (after at most a
	// token's wait), and the count of those left out before it.
	waitFor(t, "a stderr line after the noise", 30*time.Second, func() bool {
		callText(t, cs, "stderr", map[string]any{"text": "after the noise"})
		return strings.Contains(f.logs.String(), "after the noise")
	})
	elapsed := time.Since(start)
	logs := f.logs.String()
	// Two kinds share one budget: stderr lines and skipped messages.
	logged := strings.Count(logs, `msg="stdio server stderr"`) + strings.Count(logs, "not a JSON-RPC message")
	bound := logBurst + int(elapsed.Seconds()+1)*logRate
	if logged > bound {
		t.Fatalf("%d lines of the server's logged in %v, want at most %d", logged, elapsed, bound)
	}
	left := 0
	for _, m := range regexp.MustCompile(`msg="`+msgLeftOut+`".* lines=(\d+)`).FindAllStringSubmatch(logs, -1) {
		k, _ := strconv.Atoi(m[1])
		left += k
	}
	// Each of the n iterations wrote two lines; the stderr tool's line and
	// a few of the server's own may be among those logged.
	if left == 0 || left+logged < 2*n {
		t.Fatalf("%d logged and %d counted as left out, want the %d lines accounted for:\n%s", logged, left, 2*n, tail(logs, 2000))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return fmt.Sprint("…", s[len(s)-n:])
	}
	return s
}
