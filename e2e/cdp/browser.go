package cdp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/websocket"
)

// ErrNotFound is returned by Find when no Chromium is installed.
var ErrNotFound = errors.New("cdp: Chromium not found: install Debian's chromium (scripts/install-tools.sh does) or set CHROMIUM to its path")

// Find returns the Chromium to launch: $CHROMIUM if set (it must exist), else
// /usr/bin/chromium, else chromium on the PATH.
func Find() (string, error) {
	if p := os.Getenv("CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("cdp: CHROMIUM=%s: %w", p, err)
		}
		return p, nil
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium", nil
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p, nil
	}
	return "", ErrNotFound
}

// wsOrigin is the Origin the client sends on the DevTools WebSocket, and the only one
// the browser is told to accept (--remote-allow-origins): x/net/websocket always sends
// an Origin, and no web page can have this one.
const wsOrigin = "http://cdp.invalid"

// Flags are the command-line flags Launch gives Chromium besides --user-data-dir,
// --remote-debugging-port=0, --remote-allow-origins and the start page about:blank.
var Flags = []string{
	"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
	"--disable-background-networking", "--disable-component-update", "--disable-sync",
	"--disable-default-apps",
}

// Browser is a running headless Chromium and a DevTools connection to one of its
// pages. Its methods are safe for concurrent use; Close ends it.
type Browser struct {
	dir    string
	proc   *process
	output tailBuffer // the browser's stdout and stderr, for error messages
	conn   *websocket.Conn

	writeMu sync.Mutex
	mu      sync.Mutex
	nextID  int64
	pending map[int64]chan message
	watches map[watcher]struct{}
	readErr error
	closed  chan struct{} // closed when the connection is lost or closed

	closeOnce sync.Once
	closeErr  error
}

// message is a DevTools protocol message: a command response (ID) or an event (Method).
type message struct {
	ID        int64           `json:"id,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *Error          `json:"error,omitempty"`
}

// Error is an error response to a DevTools command.
type Error struct {
	Method  string `json:"-"`
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    string `json:"data,omitempty"`
}

func (e *Error) Error() string {
	s := fmt.Sprintf("cdp: %s: %s (%d)", e.Method, e.Message, e.Code)
	if e.Data != "" {
		s += ": " + e.Data
	}
	return s
}

// Event is a DevTools protocol event.
type Event struct {
	Method    string
	SessionID string // empty for events of the page itself
	Params    json.RawMessage
}

// Launch starts Chromium (path, as from Find) headless with a fresh profile in a new
// temporary directory, waits for its DevTools endpoint, connects to its page and
// enables the Page, Network and Runtime domains. ctx bounds the start only (30 s when
// it has no deadline); the browser runs until Close, which the caller must call.
func Launch(ctx context.Context, path string) (*Browser, error) {
	return LaunchWith(ctx, path)
}

// LaunchWith is Launch with extra command-line flags, such as
// --host-resolver-rules, which gives a test page a name (and so an origin)
// of its own on a loopback server.
func LaunchWith(ctx context.Context, path string, extra ...string) (_ *Browser, err error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	dir, err := os.MkdirTemp("", "mcpgate-chromium-")
	if err != nil {
		return nil, err
	}
	b := &Browser{dir: dir, pending: map[int64]chan message{}, watches: map[watcher]struct{}{}, closed: make(chan struct{})}
	defer func() {
		if err != nil {
			if cerr := b.Close(); cerr != nil {
				err = fmt.Errorf("%w (and closing: %v)", err, cerr)
			}
		}
	}()
	profile := filepath.Join(dir, "profile")
	args := append(append(append([]string(nil), Flags...), extra...),
		"--user-data-dir="+profile, "--remote-debugging-port=0", "--remote-allow-origins="+wsOrigin, "about:blank")
	cmd := exec.Command(path, args...)
	// Keep the browser off the real home directory (~/.pki, ~/.cache, ~/.config).
	home := filepath.Join(dir, "home")
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_CACHE_HOME="+filepath.Join(home, ".cache"))
	cmd.Stdout, cmd.Stderr = &b.output, &b.output
	if b.proc, err = start(cmd); err != nil {
		return nil, fmt.Errorf("cdp: starting %s: %w", path, err)
	}

	port, err := b.devToolsPort(ctx, profile)
	if err != nil {
		return nil, err
	}
	wsURL, err := pageTarget(ctx, port)
	if err != nil {
		return nil, fmt.Errorf("cdp: finding the page target: %w\n%s", err, b.output.String())
	}
	cfg, err := websocket.NewConfig(wsURL, wsOrigin)
	if err != nil {
		return nil, err
	}
	if b.conn, err = cfg.DialContext(ctx); err != nil {
		return nil, fmt.Errorf("cdp: connecting to %s: %w", wsURL, err)
	}
	go b.read()
	for _, m := range []string{"Page.enable", "Network.enable", "Runtime.enable"} {
		if err := b.Call(ctx, m, nil, nil); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// devToolsPort waits for Chromium to write <profile>/DevToolsActivePort, whose first
// line is the port it chose.
func (b *Browser) devToolsPort(ctx context.Context, profile string) (int, error) {
	file := filepath.Join(profile, "DevToolsActivePort")
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		if data, err := os.ReadFile(file); err == nil {
			if line, _, ok := strings.Cut(string(data), "\n"); ok {
				if port, err := strconv.Atoi(strings.TrimSpace(line)); err == nil && port > 0 {
					return port, nil
				}
			}
		}
		select {
		case <-b.proc.exited:
			return 0, fmt.Errorf("cdp: Chromium exited before opening its DevTools port (%v):\n%s", b.proc.err, b.output.String())
		case <-ctx.Done():
			return 0, fmt.Errorf("cdp: no %s: %w\n%s", file, ctx.Err(), b.output.String())
		case <-tick.C:
		}
	}
}

// pageTarget returns the WebSocket URL of the browser's page, creating one if there is
// none (yet). It retries until ctx ends: the page may appear just after the port.
func pageTarget(ctx context.Context, port int) (string, error) {
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	var lastErr error
	for {
		var targets []struct {
			Type, URL            string
			WebSocketDebuggerURL string `json:"webSocketDebuggerUrl"`
		}
		lastErr = getJSON(ctx, "GET", base+"/json/list", &targets)
		if lastErr == nil {
			for _, t := range targets {
				if t.Type == "page" && t.WebSocketDebuggerURL != "" {
					return t.WebSocketDebuggerURL, nil
				}
			}
			var t struct {
				WebSocketDebuggerURL string `json:"webSocketDebuggerUrl"`
			}
			if lastErr = getJSON(ctx, "PUT", base+"/json/new?about:blank", &t); lastErr == nil && t.WebSocketDebuggerURL != "" {
				return t.WebSocketDebuggerURL, nil
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%w (last: %v)", ctx.Err(), lastErr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func getJSON(ctx context.Context, method, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, bytes.TrimSpace(body))
	}
	return json.Unmarshal(body, v)
}

// read receives messages until the connection ends, handing responses to their
// callers and events to the watches.
func (b *Browser) read() {
	var err error
	for {
		var m message
		if err = websocket.JSON.Receive(b.conn, &m); err != nil {
			break
		}
		if m.ID != 0 {
			b.mu.Lock()
			ch := b.pending[m.ID]
			delete(b.pending, m.ID)
			b.mu.Unlock()
			if ch != nil {
				ch <- m
			}
			continue
		}
		if m.Method != "" {
			ev := Event{Method: m.Method, SessionID: m.SessionID, Params: m.Params}
			b.mu.Lock()
			for w := range b.watches {
				w.offer(ev)
			}
			b.mu.Unlock()
		}
	}
	b.mu.Lock()
	b.readErr = err
	b.mu.Unlock()
	close(b.closed)
}

// Call sends the DevTools command method with params (nil for none) to the page and
// decodes its result into result (nil to discard it).
func (b *Browser) Call(ctx context.Context, method string, params, result any) error {
	return b.CallSession(ctx, "", method, params, result)
}

// CallSession is Call for an attached target's session (Target.attachToTarget with
// flatten); the session "" is the page.
func (b *Browser) CallSession(ctx context.Context, session, method string, params, result any) error {
	if params == nil {
		params = struct{}{}
	}
	raw, err := json.Marshal(params)
	if err != nil {
		return err
	}
	ch := make(chan message, 1)
	b.mu.Lock()
	b.nextID++
	id := b.nextID
	b.pending[id] = ch
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.pending, id)
		b.mu.Unlock()
	}()

	if err := b.send(ctx, message{ID: id, Method: method, Params: raw, SessionID: session}); err != nil {
		return fmt.Errorf("cdp: %s: %w", method, err)
	}
	select {
	case m := <-ch:
		if m.Error != nil {
			m.Error.Method = method
			return m.Error
		}
		if result != nil {
			if err := json.Unmarshal(m.Result, result); err != nil {
				return fmt.Errorf("cdp: %s: decoding %s: %w", method, m.Result, err)
			}
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("cdp: %s: %w", method, ctx.Err())
	case <-b.closed:
		return fmt.Errorf("cdp: %s: connection closed: %v", method, b.connErr())
	}
}

func (b *Browser) send(ctx context.Context, m message) error {
	b.writeMu.Lock()
	defer b.writeMu.Unlock()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(10 * time.Second)
	}
	if err := b.conn.SetWriteDeadline(deadline); err != nil {
		return err
	}
	return websocket.JSON.Send(b.conn, m)
}

func (b *Browser) connErr() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.readErr
}

// Output returns the end of what the browser printed (its stdout and stderr).
func (b *Browser) Output() string { return b.output.String() }

// Close ends the connection, kills the browser's process group, waits for every one of
// its processes to be gone and removes the temporary directory. It reports what it
// could not clean up; calling it again returns the same.
func (b *Browser) Close() error {
	b.closeOnce.Do(func() {
		var errs []error
		if b.conn != nil {
			b.conn.Close()
		}
		if b.proc != nil {
			if err := b.proc.kill(10 * time.Second); err != nil {
				errs = append(errs, err)
			}
		}
		var err error
		for i := 0; i < 20; i++ { // a dying browser may still be writing its profile
			if err = os.RemoveAll(b.dir); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			errs = append(errs, err)
		}
		b.closeErr = errors.Join(errs...)
	})
	return b.closeErr
}

// tailBuffer keeps the last 32 KiB written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const tailMax = 32 << 10

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - tailMax; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
