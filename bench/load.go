package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ProtocolVersion is the MCP protocol version the sessions negotiate and
// send in the Mcp-Protocol-Version header.
const ProtocolVersion = "2025-11-25"

// maxBody bounds the responses read: an echo answer is well under 1 KiB.
const maxBody = 1 << 20

// Target is one MCP endpoint under load.
type Target struct {
	Name   string       // short label, e.g. "A"
	URL    string       // the MCP endpoint, e.g. http://127.0.0.1:8080/mcp
	Token  string       // bearer access token; empty sends none
	Client *http.Client // from NewClient
}

// NewClient returns a client for conns sessions that each keep one
// connection alive to the same host. Every request times out after
// timeout.
func NewClient(conns int, timeout time.Duration) *http.Client {
	tr := &http.Transport{
		Proxy:               nil, // loopback only, never through a proxy
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        2*conns + 4,
		MaxIdleConnsPerHost: 2*conns + 4,
		IdleConnTimeout:     2 * time.Minute,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
		WriteBufferSize:     8 << 10,
		ReadBufferSize:      8 << 10,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Session is one MCP session on a Target, looping tools/call of the echo
// tool. It is used by one goroutine at a time.
type Session struct {
	target *Target
	id     string      // Mcp-Session-Id
	header http.Header // of every call, read-only once built
	prefix []byte      // request body up to the JSON-RPC id
	suffix []byte      // request body after it
	want   []byte      // what a good answer contains: the echoed text
	next   int64       // JSON-RPC id of the next call
	body   []byte      // scratch request body
	resp   bytes.Buffer
}

// ID is the session's Mcp-Session-Id.
func (s *Session) ID() string { return s.id }

func (t *Target) header() http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "application/json, text/event-stream")
	if t.Token != "" {
		h.Set("Authorization", "Bearer "+t.Token)
	}
	return h
}

// post sends one request and reads the whole answer, at most maxBody bytes.
func (t *Target) post(ctx context.Context, h http.Header, body []byte, buf *bytes.Buffer) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header = h
	resp, err := t.Client.Do(req)
	if err != nil {
		return nil, err
	}
	buf.Reset()
	_, err = buf.ReadFrom(io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	return resp, nil
}

// Open starts a session on t: initialize, then notifications/initialized.
// n numbers the session; its echo text is unique.
func Open(ctx context.Context, t *Target, n int) (*Session, error) {
	h := t.header()
	var buf bytes.Buffer
	initReq := fmt.Sprintf(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":%q,"capabilities":{},"clientInfo":{"name":"mcpload","version":"1"}}}`, ProtocolVersion)
	resp, err := t.post(ctx, h, []byte(initReq), &buf)
	if err != nil {
		return nil, fmt.Errorf("%s: initialize: %w", t.Name, err)
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(buf.Bytes(), []byte(`"protocolVersion"`)) {
		return nil, fmt.Errorf("%s: initialize: HTTP %d: %s", t.Name, resp.StatusCode, Snippet(buf.Bytes()))
	}
	id := resp.Header.Get("Mcp-Session-Id")
	if id == "" {
		return nil, fmt.Errorf("%s: initialize: no Mcp-Session-Id in the answer", t.Name)
	}
	h = h.Clone()
	h.Set("Mcp-Session-Id", id)
	h.Set("Mcp-Protocol-Version", ProtocolVersion)
	resp, err = t.post(ctx, h, []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`), &buf)
	if err != nil {
		return nil, fmt.Errorf("%s: notifications/initialized: %w", t.Name, err)
	}
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: notifications/initialized: HTTP %d: %s", t.Name, resp.StatusCode, Snippet(buf.Bytes()))
	}

	text := fmt.Sprintf("mcpload %s session %03d", t.Name, n)
	quoted, _ := json.Marshal(text)
	s := &Session{target: t, id: id, header: h, next: 1,
		prefix: []byte(`{"jsonrpc":"2.0","id":`),
		suffix: fmt.Appendf(nil, `,"method":"tools/call","params":{"name":"echo","arguments":{"text":%s}}}`, quoted),
		want:   fmt.Appendf(nil, `"text":%s`, quoted),
	}
	return s, nil
}

// Call makes one tools/call of echo and checks the answer: HTTP 200, the
// echoed text, not a tool error. It returns the request's latency.
func (s *Session) Call(ctx context.Context) (time.Duration, error) {
	s.body = append(s.body[:0], s.prefix...)
	s.body = strconv.AppendInt(s.body, s.next, 10)
	s.body = append(s.body, s.suffix...)
	s.next++
	start := time.Now()
	resp, err := s.target.post(ctx, s.header, s.body, &s.resp)
	d := time.Since(start)
	if err != nil {
		return d, err
	}
	b := s.resp.Bytes()
	if resp.StatusCode != http.StatusOK {
		return d, fmt.Errorf("HTTP %d: %s", resp.StatusCode, Snippet(b))
	}
	if !bytes.Contains(b, s.want) || bytes.Contains(b, []byte(`"isError":true`)) {
		return d, fmt.Errorf("unexpected answer: %s", Snippet(b))
	}
	return d, nil
}

// Close ends the session (DELETE), best effort.
func (s *Session) Close(ctx context.Context) {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, s.target.URL, nil)
	if err != nil {
		return
	}
	req.Header = s.header
	if resp, err := s.target.Client.Do(req); err == nil {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
		resp.Body.Close()
	}
}

// OpenAll opens n sessions on t, concurrently. The goroutines, and so the
// client connections' goroutines they start, carry the pprof label
// load=<target name>.
func OpenAll(ctx context.Context, t *Target, n int) ([]*Session, error) {
	ss := make([]*Session, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			pprof.Do(ctx, pprof.Labels("load", t.Name), func(ctx context.Context) { ss[i], errs[i] = Open(ctx, t, i) })
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return ss, nil
}

// Result is what one load run measured.
type Result struct {
	Target     string
	Conns      int
	Elapsed    time.Duration // from the start to the end of the last request
	OK         int64         // answers that passed the checks
	Errors     int64         // transport errors, non-200 answers, wrong answers
	FirstError string
	Latency    Histogram // of the good answers
	CPU        CPUUse    // of this process and of all others during the run
}

// RPS is good answers per second.
func (r *Result) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

// CPUPerRequest is this process's CPU time (load generator and servers)
// per good answer, 0 when unknown. Unlike RPS it hardly depends on what
// other processes take from the machine.
func (r *Result) CPUPerRequest() time.Duration {
	if !r.CPU.OK || r.OK == 0 {
		return 0
	}
	return time.Duration(r.CPU.Self * float64(r.Elapsed) / float64(r.OK))
}

// Total is every request sent.
func (r *Result) Total() int64 { return r.OK + r.Errors }

// Run loads the sessions of one target, each in its own goroutine with one
// request in flight, for d or until maxRequests requests in all (a share
// of it per session), whichever comes first. Worker goroutines carry the
// pprof label load=<target name>.
func Run(ctx context.Context, name string, sessions []*Session, d time.Duration, maxRequests int64) *Result {
	return RunWorkers(ctx, name, len(sessions), d, maxRequests, func(ctx context.Context, i int) (time.Duration, error) {
		return sessions[i].Call(ctx)
	})
}

// RunWorkers is Run for any operation: n goroutines each call op(ctx, i),
// with i its worker number, one call at a time, for d or until maxOps calls
// in all (a share of it per worker), whichever comes first. op returns the
// latency to record and an error for a failed operation (counted, the
// first one kept; the worker goes on). Worker goroutines carry the pprof
// label load=name. A worker stops early once ctx is done; a failure then
// is not counted.
func RunWorkers(ctx context.Context, name string, n int, d time.Duration, maxOps int64, op func(ctx context.Context, worker int) (time.Duration, error)) *Result {
	perWorker := max((maxOps+int64(n)-1)/int64(n), 1)
	type workerResult struct {
		ok, errs int64
		first    string
		hist     Histogram
	}
	results := make([]workerResult, n)
	cpu0 := SampleCPU()
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			pprof.Do(ctx, pprof.Labels("load", name), func(ctx context.Context) {
				r := &results[i]
				for count := int64(0); count < perWorker && ctx.Err() == nil && time.Now().Before(deadline); count++ {
					lat, err := op(ctx, i)
					if err != nil {
						if ctx.Err() != nil {
							break // interrupted: not the server's failure
						}
						r.errs++
						if r.first == "" {
							r.first = err.Error()
						}
						continue
					}
					r.ok++
					r.hist.Record(lat)
				}
			})
		})
	}
	wg.Wait()
	res := &Result{Target: name, Conns: n, Elapsed: time.Since(start)}
	res.CPU = CPUBetween(cpu0, SampleCPU(), res.Elapsed)
	for i := range results {
		r := &results[i]
		res.OK += r.ok
		res.Errors += r.errs
		if res.FirstError == "" {
			res.FirstError = r.first
		}
		res.Latency.Merge(&r.hist)
	}
	return res
}

// Snippet is the start of an answer's body, for an error message.
func Snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
