package jsonrpc

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
)

// ReadBody returns a body as announced, and refuses one longer or shorter
// than its Content-Length or over the limit, small or large.
func TestReadBody(t *testing.T) {
	const max = 1 << 20
	big := strings.Repeat("x", 64<<10+10)
	for _, tc := range []struct {
		name      string
		body      string
		announced int64 // -1: unknown (chunked)
		want      string
		err       string
	}{
		{"as announced", `{"a":1}`, 7, `{"a":1}`, ""},
		{"longer", `{"a":1}`, 3, "", "longer than its Content-Length"},
		{"shorter", `{"a":1}`, 9, "", "unexpected EOF"},
		{"unknown length", `{"a":1}`, -1, `{"a":1}`, ""},
		{"large, as announced", big, int64(len(big)), big, ""},
		{"large, longer", big, int64(len(big)) - 1, "", "longer than its Content-Length"},
		{"large, shorter", big, int64(len(big)) + 1, "", "unexpected EOF"},
		{"over the limit, unknown length", strings.Repeat("x", max+1), -1, "", "request body too large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(tc.body))
			r.ContentLength = tc.announced
			got, err := ReadBody(httptest.NewRecorder(), r, max)
			switch {
			case tc.err == "" && (err != nil || string(got) != tc.want):
				t.Errorf("ReadBody: %d bytes, %v; want %d bytes", len(got), err, len(tc.want))
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("ReadBody: %d bytes, %v; want an error with %q", len(got), err, tc.err)
			}
		})
	}
}

// A body announced as 4 MiB that brings 100 bytes costs what came, not
// what was announced: a client holding many such requests open reserves
// nothing. Fails before this change (4 MiB allocated at once).
func TestReadBodyAllocatesWhatCame(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/mcp", io.LimitReader(strings.NewReader(strings.Repeat("x", 100)), 100))
	r.ContentLength = 4 << 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := ReadBody(httptest.NewRecorder(), r, 4<<20+1)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("ReadBody of a body shorter than announced: %v, want io.ErrUnexpectedEOF", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 256<<10 {
		t.Errorf("ReadBody allocated %d bytes for a body of 100 announced as 4 MiB, want a few KB", n)
	}
}

// ReadBody returns exactly the bytes sent when they are as many as
// announced (or the length is unknown) and within the limit, and an error
// otherwise.
func FuzzReadBody(f *testing.F) {
	f.Add([]byte(`{"a":1}`), int64(7))
	f.Add([]byte(`{"a":1}`), int64(-1))
	f.Add([]byte(`{"a":1}`), int64(70000))
	f.Fuzz(func(t *testing.T, body []byte, announced int64) {
		const max = 100 << 10
		if announced < -1 {
			announced = -1
		}
		if announced > max {
			announced = max // the callers refuse more before reading
		}
		r := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(string(body)))
		r.ContentLength = announced
		got, err := ReadBody(httptest.NewRecorder(), r, max)
		fits := len(body) <= max && (announced < 0 || int64(len(body)) == announced)
		switch {
		case fits && (err != nil || string(got) != string(body)):
			t.Fatalf("a body of %d bytes announced as %d: %d bytes, %v; want it whole", len(body), announced, len(got), err)
		case !fits && err == nil:
			t.Fatalf("a body of %d bytes announced as %d: accepted %d bytes, want an error", len(body), announced, len(got))
		}
	})
}
