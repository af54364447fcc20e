// Package benchtest holds what the tests of the harnesses (bench/mcpload,
// bench/flowload) share.
package benchtest

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// Run is a smoke run of a harness: it checks the options with check, gives
// run a minute, fails the test unless run returns 0 without an error, and
// returns what run printed on stdout, the report.
func Run(t *testing.T, check func() error, run func(ctx context.Context, stdout, stderr io.Writer) (int, error)) string {
	t.Helper()
	if err := check(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errs bytes.Buffer
	code, err := run(ctx, &out, &errs)
	if err != nil || code != 0 {
		t.Fatalf("code %d, err %v\n%s\n%s", code, err, out.String(), errs.String())
	}
	return out.String()
}

// ReportHas fails the test for each of want that the report lacks.
func ReportHas(t *testing.T, report string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(report, w) {
			t.Errorf("report lacks %q:\n%s", w, report)
		}
	}
}
