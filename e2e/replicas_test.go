package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/pgtest"
)

// guardStatus is the status of an MCP request with token at base: 401 when
// the token check refuses it, anything else when it passes.
func guardStatus(t *testing.T, base, token string) int {
	req, _ := http.NewRequest("POST", base+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("MCP request to %s: %v", base, err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// SEC-80, end to end: three `mcpgate serve` processes on one PostgreSQL
// database behind one public URL (C's), with the same secret key. A token
// from a flow through C works on A and B; revoked on C, it is refused by A
// and B within 1 s of the revoking request. The delays are logged.
func TestBinarySEC80_RevokedOnCRefusedByAAndB(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts := binaryOpts{env: []string{"MCPGATE_STORE=" + pgtest.Start(t)}}
	ports := [3]int{freePort(t), freePort(t), freePort(t)}
	public := fmt.Sprintf("http://127.0.0.1:%d", ports[2])
	dirs := [3]string{t.TempDir(), t.TempDir(), t.TempDir()}
	args := func(dir string) []string {
		return []string{"--data-dir", dir, "--local-user", user + ":" + password, "--public-url", public}
	}
	c := startBinaryWith(t, ports[2], opts, args(dirs[2])...)
	key, err := os.ReadFile(filepath.Join(dirs[2], "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	var replicas [2]*process
	for i := range replicas {
		if err := os.WriteFile(filepath.Join(dirs[i], "secret.key"), key, 0o600); err != nil {
			t.Fatal(err)
		}
		replicas[i] = startBinaryWith(t, ports[i], opts, args(dirs[i])...)
	}

	h, _ := oauthClient(t)
	whoami(t, ctx, mcpStreamable{c.base + "/mcp", h}.transport())
	ts, _ := h.TokenSource(ctx)
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range replicas {
		whoami(t, ctx, staticTransport(p.base+"/mcp", tok.AccessToken))
	}

	revokedAt := time.Now()
	resp, err := http.PostForm(c.base+"/revoke", url.Values{"token": {tok.AccessToken}, "client_id": {clientIDOf(t, tok.AccessToken)}})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("revoke on C: %v %v, want 200", err, resp)
	}
	resp.Body.Close()
	if got := guardStatus(t, c.base, tok.AccessToken); got != http.StatusUnauthorized {
		t.Fatalf("C itself takes the token it revoked: %d, want 401", got)
	}
	var wg sync.WaitGroup
	var delays [2]time.Duration
	for i, p := range replicas {
		wg.Go(func() {
			for {
				sent := time.Now()
				delays[i] = sent.Sub(revokedAt)
				if delays[i] > time.Second {
					t.Errorf("SEC-80: replica %c still takes the token %v after it was revoked on C, want refused within 1s", 'A'+i, delays[i].Round(time.Millisecond))
					return
				}
				if guardStatus(t, p.base, tok.AccessToken) == http.StatusUnauthorized {
					return
				}
				time.Sleep(5 * time.Millisecond) // the poll's pace
			}
		})
	}
	wg.Wait()
	t.Logf("revoked on C, refused by A after %v and by B after %v", delays[0], delays[1])
	for _, p := range append(replicas[:], c) {
		p.stop(t)
	}
}
