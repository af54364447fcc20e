package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// SEC-42, against SEC-40 and SEC-41 together, on the built binary: from
// 127.0.0.2, 1,500 connections at once, most sending a 10 kB body a byte
// a second, the others idle or sending their headers a byte a second,
// each dialled again when closed (a second later when it was refused at
// once); the gateway runs under a 1,024 open-file limit, as a small
// server would. Meanwhile, from 127.0.0.1, /healthz answers, the go-sdk
// client registers, walks the login and consent pages, gets its tokens
// and calls two tools, and an event stream (GET /mcp) outlives several
// read timeouts; the slow bodies the gateway took are cut at the read
// timeout.
func TestSEC42_SlowClientsLeaveRoomForOthers(t *testing.T) {
	const (
		attackers   = 1500
		readTimeout = 3 * time.Second
		// A slow body is cut at readTimeout; the margin is for a loaded
		// machine, and far below the time the attack lasts.
		cutBound = readTimeout + 10*time.Second
	)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	port := freePort(t)
	// The timeouts are set by variables, which a gateway without these
	// settings ignores: run against one, the test shows how it fails
	// (/healthz and the flow time out).
	t.Setenv("MCPGATE_REQUEST_READ_TIMEOUT", readTimeout.String())
	t.Setenv("MCPGATE_REQUEST_HEADER_TIMEOUT", "2s")
	p := startLimitedBinary(t, port, 1024, "--data-dir", t.TempDir(), "--local-user", user+":"+password)

	actx, stopAttack := context.WithCancel(ctx)
	a := &attacker{addr: fmt.Sprintf("127.0.0.1:%d", port), slowBodies: map[net.Conn]time.Time{}}
	var wg sync.WaitGroup
	for i := range attackers {
		wg.Go(func() { a.slot(actx, i) })
	}
	defer func() { stopAttack(); wg.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for a.dialled.Load() < attackers && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := a.dialled.Load(); n < attackers {
		t.Fatalf("the attacker dialled %d connections in 30 s, want %d", n, attackers)
	}
	started := time.Now()

	// A real client, in what is a normal time even on a loaded machine.
	cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
	defer ccancel()
	checkHealthz(t, cctx, p.base)
	h, _ := oauthClient(t)
	m := whoami(t, cctx, mcpStreamable{p.base + "/mcp", h}.transport())
	if u, _ := m["user"].(map[string]any); u["sub"] != "local:alice" {
		t.Fatalf("whoami under attack: %v, want user.sub local:alice", m)
	}
	ts, _ := h.TokenSource(cctx)
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	ccancel()

	// An event stream is not a slow request: it outlives the read timeout
	// several times over (SEC-40).
	stream := openEventStream(t, ctx, p.base+"/mcp", tok.AccessToken)
	ended := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, stream.Body); ended <- err }()
	select {
	case err := <-ended:
		t.Fatalf("the event stream ended after less than %v (%v), want it open", 3*readTimeout, err)
	case <-time.After(3 * readTimeout):
	}
	stream.Body.Close()

	// Let the attack last long enough for an uncut slow body to show.
	for time.Since(started) < cutBound+3*time.Second {
		time.Sleep(100 * time.Millisecond)
	}
	if age, n := a.oldestSlowBody(); age > cutBound {
		t.Errorf("a slow body has been sending for %v (%d open), want every one cut at the read timeout (%v)", age.Round(time.Second), n, readTimeout)
	}
	checkHealthz(t, ctx, p.base)
	stopAttack()
	wg.Wait()
	// The caps took their defaults from the file limit, and refused the
	// attacker's connections over its share.
	if logs := p.Stderr(); !strings.Contains(logs, `"max_connections":768,"max_connections_per_address":256`) || !strings.Contains(logs, "connections refused") {
		t.Errorf("want the caps 768 (¾ of 1,024) and 256 in the log, and connections refused; log:\n%.3000s", logs)
	}
	p.stop(t)
}

// startLimitedBinary is startBinary under an open-file limit of nofile
// (soft and hard: Go raises the soft limit to the hard one at start).
func startLimitedBinary(t *testing.T, port, nofile int, args ...string) *process {
	t.Helper()
	p := &process{base: fmt.Sprintf("http://127.0.0.1:%d", port), done: make(chan error, 1)}
	argv := append([]string{"-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, nofile), binPath, "serve", "--listen", fmt.Sprintf("127.0.0.1:%d", port)}, args...)
	p.cmd = exec.Command("/bin/sh", argv...)
	p.cmd.Env = append(os.Environ(), "MCPGATE_LOG_FORMAT=json")
	p.cmd.Stdout = lockedWriter{&p.mu, &p.stdout}
	p.cmd.Stderr = lockedWriter{&p.mu, &p.stderr}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		select {
		case err := <-p.done:
			t.Fatalf("mcpgate exited early: %v\nstderr: %s", err, p.Stderr())
		case <-time.After(50 * time.Millisecond):
		}
		if resp, err := http.Get(p.base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
	}
	t.Fatalf("mcpgate did not become healthy\nstderr: %s", p.Stderr())
	return nil
}

// checkHealthz expects 200 from /healthz before ctx ends.
func checkHealthz(t *testing.T, ctx context.Context, base string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("/healthz under attack: %v, want 200", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/healthz under attack: %d, want 200", resp.StatusCode)
	}
}

// openEventStream opens a session on endpoint with token, as an MCP
// client does (initialize, then notifications/initialized), and returns
// its event stream (GET), answered 200.
func openEventStream(t *testing.T, ctx context.Context, endpoint, token string) *http.Response {
	t.Helper()
	post := func(body, session string) *http.Response {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if session != "" {
			req.Header.Set("Mcp-Session-Id", session)
			req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, bufio.NewReader(resp.Body))
		resp.Body.Close()
		return resp
	}
	init := post(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"1"}}}`, "")
	session := init.Header.Get("Mcp-Session-Id")
	if init.StatusCode != 200 || session == "" {
		t.Fatalf("initialize: %d, session %q; want 200 with a session", init.StatusCode, session)
	}
	if resp := post(`{"jsonrpc":"2.0","method":"notifications/initialized"}`, session); resp.StatusCode != 202 {
		t.Fatalf("notifications/initialized: %d, want 202", resp.StatusCode)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", session)
	req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		resp.Body.Close()
		t.Fatalf("GET %s: %d, want 200 (an event stream)", endpoint, resp.StatusCode)
	}
	return resp
}

// attacker holds connections from 127.0.0.2 (all of 127/8 is loopback on
// Linux): one slot in eight is idle, one sends its headers a byte a
// second, the rest send a 10 kB body a byte a second.
type attacker struct {
	addr    string
	dialled atomic.Int64

	mu         sync.Mutex
	slowBodies map[net.Conn]time.Time // open, since their headers were sent
}

func (a *attacker) slot(ctx context.Context, i int) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 10 * time.Second}
	for ctx.Err() == nil {
		if c, err := d.DialContext(ctx, "tcp", a.addr); err == nil {
			a.dialled.Add(1)
			start := time.Now()
			a.hold(ctx, c, i)
			if time.Since(start) > time.Second {
				continue // held, then cut: dialled again at once
			}
		}
		// Refused: dialled again a second later.
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// hold plays slot i's part on c until the gateway or ctx closes it.
func (a *attacker) hold(ctx context.Context, c net.Conn, i int) {
	defer c.Close()
	closed := make(chan struct{})
	go func() { io.Copy(io.Discard, c); close(closed) }()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	paths := []string{"/register", "/token", "/mcp"}
	switch i % 8 {
	case 0: // idle
	case 1:
		fmt.Fprintf(c, "POST /token HTTP/1.1\r\nHost: %s\r\nX-Pad: ", a.addr)
	default:
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 10000\r\n\r\n", paths[i%3], a.addr)
		a.mu.Lock()
		a.slowBodies[c] = time.Now()
		a.mu.Unlock()
		defer func() { a.mu.Lock(); delete(a.slowBodies, c); a.mu.Unlock() }()
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-closed:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
			if i%8 != 0 {
				c.Write([]byte("a"))
			}
		}
	}
}

// oldestSlowBody returns how long the oldest open slow body has been
// sending, and how many are open.
func (a *attacker) oldestSlowBody() (time.Duration, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var oldest time.Duration
	for _, since := range a.slowBodies {
		oldest = max(oldest, time.Since(since))
	}
	return oldest, len(a.slowBodies)
}
