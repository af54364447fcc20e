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
		t.Fatalf("response %+v, %v", r, err)
	}
	var title string
	if err := b.Eval(ctx, `document.title`, &title); err != nil || title != "t" {
		t.Fatalf("title %q, %v", title, err)
	}
	var ee *EvalError
	if err := b.Eval(ctx, `null.x`, nil); !errors.As(err, &ee) || !strings.Contains(ee.Text, "TypeError") {
		t.Fatalf("a throwing expression: %v", err)
	}
	if err := b.WaitFor(ctx, `false`, 100*time.Millisecond); err == nil || !strings.Contains(err.Error(), srv.URL) {
		t.Fatalf("WaitFor(false): %v", err)
	}

	shot := filepath.Join(t.TempDir(), "page.png")
	if err := b.Screenshot(ctx, shot); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(shot); err != nil || !strings.HasPrefix(string(data), "\x89PNG\r\n\x1a\n") {
		t.Fatalf("screenshot: %v", err)
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
		t.Fatalf("request %+v (redirected by %+v)", got, got.RedirectedBy)
	}

	frames, err := b.Frames(ctx)
	if err != nil || len(frames) != 1 {
		t.Fatalf("frames %+v, %v", frames, err)
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
		t.Fatalf("processes of group %d are left", b.proc.pgid)
	}
	if _, err := os.Stat(b.dir); !os.IsNotExist(err) {
		t.Fatalf("%s is left: %v", b.dir, err)
	}
	if err := b.Eval(ctx, `1`, nil); err == nil {
		t.Fatal("Eval works after Close")
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
