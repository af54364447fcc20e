package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/mcpgate/mcpgate/store/memory"
)

// safeBuffer collects a child process's output while the test reads it.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *safeBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// The official conformance suite's authorization-server scenarios (both:
// metadata and the authorization-code grant, with --resource), on Node 22,
// with the login and consent walked by the headless browser.
func TestConformanceAuthorizationServer(t *testing.T) {
	node, cli := node22(t), conformanceCLI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	srv := startGateway(t, ctx, mcpgate.Config{Store: memory.New()})

	port := freePort(t)
	cb := fmt.Sprintf("http://127.0.0.1:%d/callback", port)
	reg, _ := json.Marshal(map[string]any{"client_name": "conformance", "redirect_uris": []string{cb}, "token_endpoint_auth_method": "none",
		"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"}})
	resp, err := http.Post(srv.URL+"/register", "application/json", bytes.NewReader(reg))
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("register: %v %v", err, resp)
	}
	var client struct {
		ClientID string `json:"client_id"`
	}
	json.NewDecoder(resp.Body).Decode(&client)
	resp.Body.Close()

	out := &safeBuffer{}
	// --client-id=ID, not --client-id ID: a client ID may begin with "-"
	// (base64url), which the suite's option parser would read as a flag
	// (-V… prints its version and exits).
	cmd := exec.CommandContext(ctx, node, cli, "authorization", "--url", srv.URL, "--client-id="+client.ClientID,
		"--resource", srv.URL+"/mcp", "--port", fmt.Sprint(port), "-o", t.TempDir())
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	authURL := regexp.MustCompile(regexp.QuoteMeta(srv.URL) + `/authorize\?\S+`)
	var found string
	for found == "" {
		select {
		case err := <-done:
			t.Fatalf("conformance exited before printing the authorization URL: %v\n%s", err, out)
		case <-time.After(100 * time.Millisecond):
			found = authURL.FindString(out.String())
		case <-ctx.Done():
			t.Fatalf("no authorization URL printed:\n%s", out)
		}
	}
	b := browser.New(user, password)
	final, err := b.Walk(ctx, found, cb)
	if err != nil {
		t.Fatalf("walking %s: %v\n%s", found, err, out)
	}
	// Deliver the redirect to the suite's callback listener, as a browser would.
	if r, err := http.Get(final.String()); err == nil {
		r.Body.Close()
	} else {
		t.Fatalf("callback: %v", err)
	}
	select {
	case err = <-done:
	case <-ctx.Done():
		t.Fatalf("conformance did not finish:\n%s", out)
	}
	t.Logf("conformance output:\n%s", out)
	// Both scenarios pass, every check: the metadata scenario counts one
	// check more once CIMD support is advertised (ASM-5).
	total := regexp.MustCompile(`Total: (\d+) passed, 0 failed`).FindStringSubmatch(out.String())
	if err != nil || total == nil || atoi(total[1]) < 2 ||
		!strings.Contains(out.String(), "✓ authorization-server-metadata-endpoint") ||
		!strings.Contains(out.String(), "✓ authorization-code-grant") {
		t.Fatalf("conformance authorization: %v\n%s", err, out)
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
