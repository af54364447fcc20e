package bridge

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// shServer is a stdio server written in sh: it answers the bridge's
// initialize, then runs then.
func shServer(t *testing.T, then string) *fixture {
	t.Helper()
	script := `read -r line; id=${line#*\"id\":}; id=${id%%,*}
printf '{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"sh","version":"1"}}}\n' "$id"
` + then
	f := &fixture{logs: &syncBuffer{}, dir: t.TempDir()}
	pool, err := NewStdio(StdioOptions{Command: []string{"/bin/sh", "-c", script}, Dir: f.dir, Resource: "/mcp", Logger: f.logger()})
	if err != nil {
		t.Fatal(err)
	}
	f.serve(t, pool)
	return f
}

// SEC-182: what waits for a server's stdin is bounded in bytes, not only
// in messages. A server that stops reading (busy in a synchronous tool)
// made the gateway take 256 notifications of the largest body, about
// 1 GiB for one link, each answered 202. Now a message that would go past
// 16 MiB is answered 503, to retry later, with a JSON-RPC error of no id.
func TestSEC182_StdinQueueBoundedInBytes(t *testing.T) {
	f := shServer(t, `exec sleep 3600`) // never reads its stdin again
	sid := f.session(t, "alice")
	const size = 1 << 20
	body := `{"jsonrpc":"2.0","method":"notifications/anything","params":{"pad":"` + strings.Repeat("x", size-100) + `"}}`
	accepted := 0
	for i := range 40 {
		resp, b := f.rpc(t, context.Background(), "alice", sid, body, nil)
		if resp.StatusCode == http.StatusAccepted {
			accepted++
			continue
		}
		var e struct {
			ID    json.RawMessage
			Error struct{ Code int }
		}
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
			json.Unmarshal([]byte(b), &e) != nil || string(e.ID) != "null" || e.Error.Code != codeBusy {
			t.Fatalf("notification %d to a server that reads nothing: %d Retry-After %q %s, want 202 or 503 with Retry-After and a JSON-RPC error of id null",
				i, resp.StatusCode, resp.Header.Get("Retry-After"), b)
		}
	}
	// The queue's 16 MiB, the message in the pipe's write included.
	if most := maxQueued / size; accepted > most || accepted < most-2 {
		t.Errorf("%d notifications of 1 MiB taken for a server that reads nothing, want at most %d and no fewer than %d (16 MiB, the one being written included)", accepted, most, most-2)
	}
}

// SEC-183: a session keeps its client's initialize params for its life
// (up to a day idle): a protocolVersion over 64 bytes or capabilities
// over 64 KiB are refused, so that 32 initializes of 4 MiB no longer
// hold 128 MiB of one user's bytes.
func TestSEC183_InitializeParamsBounded(t *testing.T) {
	f := newFixture(t, StdioOptions{})
	for name, tc := range map[string]struct {
		params string
		want   int
	}{
		"capabilities over 64 KiB":      {`"protocolVersion":"2025-06-18","capabilities":{"experimental":{"pad":"` + strings.Repeat("x", 64<<10) + `"}}`, 400},
		"protocolVersion over 64 bytes": {`"protocolVersion":"` + strings.Repeat("9", 65) + `","capabilities":{}`, 400},
		"capabilities of 60 KiB":        {`"protocolVersion":"2025-06-18","capabilities":{"experimental":{"pad":"` + strings.Repeat("x", 60<<10) + `"}}`, 200},
	} {
		t.Run(name, func(t *testing.T) {
			body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{` + tc.params + `,"clientInfo":{"name":"raw","version":"1"}}}`
			resp, b := f.rpc(t, context.Background(), "alice", "", body, nil)
			if resp.StatusCode != tc.want {
				t.Fatalf("initialize: %d %.200s, want %d", resp.StatusCode, b, tc.want)
			}
			if tc.want == 400 && (!strings.Contains(b, `"code":-32602`) || resp.Header.Get(sessionHeader) != "") {
				t.Errorf("refused initialize: %.200s, session %q; want invalid params (-32602) and no session", b, resp.Header.Get(sessionHeader))
			}
		})
	}
}

// SEC-184: the server's requests a client has read and not answered are
// remembered by id, at most 256 per link and each id at most 256 bytes;
// past that the server's request is refused at once. A server sending
// requests of 1 MB ids to a client that does not answer them made the
// gateway hold 1 MB each for as long as the stream stayed open.
func TestSEC184_AwaitedServerRequestsBounded(t *testing.T) {
	// Ten rounds of 30 requests, each round sent once the client has
	// read the last (the stream queues 64 messages at most), then one
	// with an id of 300 bytes.
	f := shServer(t, `read -r line; read -r line
i=0; round=0
while [ $round -lt 10 ]; do
	j=0; while [ $j -lt 30 ]; do printf '{"jsonrpc":"2.0","id":"r%d","method":"roots/list"}\n' $i; i=$((i+1)); j=$((j+1)); done
	printf '{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"round"}}\n'
	round=$((round+1))
	while read -r line; do case $line in *notifications/next*) break;; esac; done
done
printf '{"jsonrpc":"2.0","id":"%0300d","method":"roots/list"}\n' 7
printf '{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"done"}}\n'
exec cat >/dev/null`)
	sid := f.session(t, "alice")
	resp := f.openStream(t, "alice", sid)
	var requests, longIDs atomic.Int64
	rounds, done := make(chan struct{}, 10), make(chan struct{})
	go func() { // reads every event at once, answers none
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			switch line := sc.Text(); {
			case strings.Contains(line, `"roots/list"`):
				requests.Add(1)
				if strings.Contains(line, "0000000007") {
					longIDs.Add(1)
				}
			case strings.Contains(line, `"round"`):
				rounds <- struct{}{}
			case strings.Contains(line, `"done"`):
				close(done)
				return
			}
		}
	}()
	f.rpc(t, context.Background(), "alice", sid, `{"jsonrpc":"2.0","method":"notifications/go"}`, nil)
	for round := 0; ; round++ {
		select {
		case <-rounds:
			f.rpc(t, context.Background(), "alice", sid, `{"jsonrpc":"2.0","method":"notifications/next"}`, nil)
			continue
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatalf("the server's last notification never came; %d rounds, %d requests read", round, requests.Load())
		}
		break
	}
	l := f.pool.current(users["alice"])
	l.mu.Lock()
	awaited := len(l.outbound)
	l.mu.Unlock()
	if requests.Load() != maxAwaited || awaited != maxAwaited || longIDs.Load() != 0 {
		t.Errorf("of 301 requests the client does not answer, %d reached it (%d of them the one with an id of 300 bytes) and %d are awaited, want %d, none of the long id, and the rest refused",
			requests.Load(), longIDs.Load(), awaited, maxAwaited)
	}
	if !strings.Contains(f.logs.String(), "server request refused: too many awaiting") {
		t.Errorf("no refusal logged:\n%s", f.logs.String())
	}
}

// A client's answer that was not delivered is awaited again, unless the
// link ended between the answer's lookup and its sending: then there is
// nothing to await. Fails before: the handler wrote into the ended link's
// nil map, panicked holding the link's lock, and every later closeStream
// of the user blocked on it.
func TestUndeliveredAnswerAfterTheLinkEnded(t *testing.T) {
	f := newFixture(t, StdioOptions{})
	l := newLink(f.pool, users["alice"], linkKey(users["alice"]))
	st := &stream{}
	l.awaitAgain(json.RawMessage(`"r1"`), st)
	if l.outbound[`"r1"`] != st {
		t.Fatalf("a live link's awaited answers %v, want r1 on its stream", l.outbound)
	}
	l.finish()
	l.awaitAgain(json.RawMessage(`"r2"`), st) // must not panic
	if !l.mu.TryLock() {
		t.Fatal("the link's lock is held after awaitAgain on an ended link")
	}
	l.mu.Unlock()
}

// SEC-184: a request the server gave up itself (notifications/cancelled,
// the TypeScript SDK's request timeout) awaits no answer more, so that a
// long-lived stream does not reach the bound of 256 with requests nobody
// will answer, and then have every server request refused.
func TestServerCancelledRequestNoLongerAwaited(t *testing.T) {
	f := shServer(t, `read -r line; read -r line
printf '{"jsonrpc":"2.0","id":"r1","method":"roots/list"}\n'
printf '{"jsonrpc":"2.0","id":"r2","method":"roots/list"}\n'
printf '{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"r1","reason":"timed out"}}\n'
printf '{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"done"}}\n'
exec cat >/dev/null`)
	sid := f.session(t, "alice")
	resp := f.openStream(t, "alice", sid)
	done := make(chan bool, 1)
	go func() {
		cancelled := false
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			cancelled = cancelled || strings.Contains(sc.Text(), "notifications/cancelled")
			if strings.Contains(sc.Text(), `"done"`) {
				done <- cancelled
				return
			}
		}
	}()
	f.rpc(t, context.Background(), "alice", sid, `{"jsonrpc":"2.0","method":"notifications/go"}`, nil)
	select {
	case cancelled := <-done:
		if !cancelled {
			t.Error("the server's cancellation did not reach the client")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the server's last notification never came")
	}
	l := f.pool.current(users["alice"])
	l.mu.Lock()
	_, r1 := l.outbound[`"r1"`]
	_, r2 := l.outbound[`"r2"`]
	l.mu.Unlock()
	if r1 || !r2 {
		t.Errorf("awaited after the server cancelled r1: r1 %v, r2 %v; want r2 alone", r1, r2)
	}
}
