//go:build linux

// The test is Linux only: it checks the browser's process group through /proc.

package cdp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The client against a real Chromium: navigation, evaluation, a form post followed by
// a 302 to an address where nothing listens (seen as a request), a screenshot, and a
// Close that leaves no process and no file behind.
func TestBrowser(t *testing.T) {
	path, err := Find()
	if err != nil {
		t.Fatalf("CHROMIUM IS NOT INSTALLED: install Debian's chromium (scripts/install-tools.sh does), or set CHROMIUM: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// A port where nothing listens, for the redirect.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nowhere := "http://" + ln.Addr().String() + "/nowhere"
	ln.Close()

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			http.Redirect(w, r, nowhere+"?got="+r.FormValue("x"), http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("X-Test", "a")
		fmt.Fprint(w, `<!doctype html><title>t</title><form method="post"><input name="x"><button>go</button></form>`)
	}))
	defer srv.Close()

	b, err := Launch(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			b.Close()
		}
	}()

	resp := b.ExpectResponse(srv.URL)
	defer resp.Stop()
	if err := b.Navigate(ctx, srv.URL+"/"); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitFor(ctx, `document.querySelector("input[name=x]")`, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	r, err := resp.Wait(ctx)
	if err != nil || r.Status != 200 || r.Headers.Get("X-Test") != "a" || r.Type != "Document" {
		t.Fatalf("response %+v, %v; want a 200 Document with X-Test: a", r, err)
	}
	var title string
	if err := b.Eval(ctx, `document.title`, &title); err != nil || title != "t" {
		t.Fatalf("title %q, %v; want t", title, err)
	}
	var ee *EvalError
	if err := b.Eval(ctx, `null.x`, nil); !errors.As(err, &ee) || !strings.Contains(ee.Text, "TypeError") {
		t.Fatalf("a throwing expression: %v, want an *EvalError naming the TypeError", err)
	}
	if err := b.WaitFor(ctx, `false`, 100*time.Millisecond); err == nil || !strings.Contains(err.Error(), srv.URL) {
		t.Fatalf("WaitFor(false): %v, want a timeout naming the page", err)
	}

	shot := filepath.Join(t.TempDir(), "page.png")
	if err := b.Screenshot(ctx, shot); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(shot); err != nil || !strings.HasPrefix(string(data), "\x89PNG\r\n\x1a\n") {
		t.Fatalf("screenshot: %v, want a PNG file", err)
	}

	req := b.ExpectRequest(nowhere)
	defer req.Stop()
	if err := b.Eval(ctx, `document.querySelector("input[name=x]").value = "42"; document.querySelector("button").click()`, nil); err != nil {
		t.Fatal(err)
	}
	got, err := req.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.URL != nowhere+"?got=42" || got.RedirectedBy == nil || got.RedirectedBy.Status != 302 || got.Method != "GET" {
		t.Fatalf("request %+v (redirected by %+v); want GET %s?got=42 after a 302", got, got.RedirectedBy, nowhere)
	}

	frames, err := b.Frames(ctx)
	if err != nil || len(frames) != 1 {
		t.Fatalf("frames %+v, %v; want the main frame only", frames, err)
	}

	// Close kills every process of the browser and removes its profile.
	if !groupRunning(b.proc.pgid) {
		t.Fatal("no process of the browser's group is running before Close")
	}
	closed = true
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if groupRunning(b.proc.pgid) {
		t.Fatalf("processes of group %d are left, want none after Close", b.proc.pgid)
	}
	if _, err := os.Stat(b.dir); !os.IsNotExist(err) {
		t.Fatalf("%s is left: %v, want the profile removed", b.dir, err)
	}
	if err := b.Eval(ctx, `1`, nil); err == nil {
		t.Fatal("Eval works after Close, want an error")
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v, want nil", err)
	}
}
