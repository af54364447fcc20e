package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/identity"
)

// bufferedBody is what a middleware in front of the proxy leaves in r.Body
// after reading it: reading it again fails, so the test sees whether the
// proxy used Bytes.
type bufferedBody struct{ b []byte }

func (b *bufferedBody) Bytes() []byte            { return b.b }
func (b *bufferedBody) Read([]byte) (int, error) { return 0, errors.New("read again") }
func (b *bufferedBody) Close() error             { return nil }

func preBuffered(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		r.Body, r.ContentLength = &bufferedBody{b}, int64(len(b))
		h.ServeHTTP(w, r)
	})
}

func TestPreBufferedBodyUsedAsIs(t *testing.T) {
	rec := &recorder{}
	be := backend(t, rec.handler(nil))
	h, err := New(Options{Upstream: mustURL(t, be.URL), MaxBodyBytes: 64})
	if err != nil {
		t.Fatal(err)
	}
	fe := httptest.NewServer(preBuffered(asGuard(h, alice)))
	defer fe.Close()

	const body = `{"jsonrpc":"2.0","id":1,"method":"ping"}`
	resp := post(t, fe.URL, body, nil)
	readAll(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	r, got := rec.last(t)
	if string(got) != body || r.ContentLength != int64(len(body)) {
		t.Fatalf("backend got %q (length %d)", got, r.ContentLength)
	}
	checkJSONRPCError(t, post(t, fe.URL, strings.Repeat("x", 65), nil), 413, -32600)
	if rec.count() != 1 {
		t.Fatal("an oversized pre-buffered body reached the backend")
	}
}

func TestIdentityTokenSetAndSpoofStripped(t *testing.T) {
	bothProtocols(t, func(t *testing.T, up *upstream) {
		var opts Options
		rec := &recorder{}
		be := up.backend(t, rec.handler(nil))
		var calls atomic.Int32
		opts.IdentityToken = func(c *identity.Caller) (string, error) {
			calls.Add(1)
			return "minted." + c.User.ID, nil
		}
		fe := up.front(t, be.URL, opts, alice)
		req, _ := http.NewRequest("POST", fe.URL+"/mcp", strings.NewReader("{}"))
		req.Header.Set("X-Mcpgate-Identity", "forged")
		req.Header["X_Mcpgate_Identity"] = []string{"forged"}
		req.Header["x_mcpgate_identity"] = []string{"forged"}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		resp.Body.Close()
		r, _ := rec.last(t)
		if got := r.Header.Values("X-Mcpgate-Identity"); len(got) != 1 || got[0] != "minted."+alice.User.ID {
			t.Fatalf("backend got X-Mcpgate-Identity %q", got)
		}
		for k := range r.Header {
			if strings.Contains(k, "_") {
				t.Errorf("backend got the underscore spelling %s: %q", k, r.Header[k])
			}
		}
		if calls.Load() != 1 {
			t.Fatalf("IdentityToken called %d times", calls.Load())
		}
	})
}

func TestIdentityTokenCustomHeaderAndOff(t *testing.T) {
	rec := &recorder{}
	be := backend(t, rec.handler(nil))
	mint := func(c *identity.Caller) (string, error) { return "t1", nil }
	fe := front(t, be.URL, Options{IdentityToken: mint, IdentityHeaders: IdentityHeaders{Token: "x-backend-token"}}, alice)
	readAll(t, post(t, fe.URL, "{}", map[string]string{"X-Backend-Token": "forged", "X-Mcpgate-Identity": "not ours to strip"}))
	r, _ := rec.last(t)
	if got := r.Header.Values("X-Backend-Token"); len(got) != 1 || got[0] != "t1" {
		t.Fatalf("X-Backend-Token %q, want the minted t1 alone", got)
	}
	// The default name is stripped too: a backend written for it must not
	// be handed a client's token under it.
	if got := r.Header.Values("X-Mcpgate-Identity"); len(got) != 0 {
		t.Fatalf("X-Mcpgate-Identity %q, want none", got)
	}

	off := front(t, be.URL, Options{IdentityToken: func(*identity.Caller) (string, error) {
		return "", errors.New("must not be called")
	}, IdentityHeaders: IdentityHeaders{Token: "-"}}, alice)
	resp := post(t, off.URL, "{}", nil)
	readAll(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("token header off: status %d", resp.StatusCode)
	}
}

func TestIdentityTokenErrorIs500AndNeverForwarded(t *testing.T) {
	rec := &recorder{}
	be := backend(t, rec.handler(nil))
	var logs syncBuffer
	for _, mint := range []func(*identity.Caller) (string, error){
		func(*identity.Caller) (string, error) { return "", errors.New("signing key unavailable") },
		func(*identity.Caller) (string, error) { return "", nil },
		func(*identity.Caller) (string, error) { return "a\r\nX-Injected: 1", nil },
	} {
		fe := front(t, be.URL, Options{IdentityToken: mint, Logger: slog.New(slog.NewTextHandler(&logs, nil))}, alice)
		checkJSONRPCError(t, post(t, fe.URL, "{}", nil), 500, -32603)
	}
	if rec.count() != 0 {
		t.Fatal("a request without its identity token reached the backend")
	}
	if !strings.Contains(logs.String(), "signing key unavailable") {
		t.Fatalf("the log lacks the cause: %s", logs.String())
	}
}

// A GET event stream's headers reach the client before its first event,
// and every event before the backend sends the next.
func TestSSEStreamHeadersAndEventsPrompt(t *testing.T) {
	bothProtocols(t, func(t *testing.T, up *upstream) {
		var opts Options
		next := make(chan struct{})
		be := up.backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			for i := 1; i <= 2; i++ {
				select {
				case <-next:
				case <-r.Context().Done():
					return
				}
				fmt.Fprintf(w, "data: %d\n\n", i)
				w.(http.Flusher).Flush()
			}
			<-r.Context().Done() // a stream the backend never ends
		}))
		fe := up.front(t, be.URL, opts, alice)
		req, _ := http.NewRequest("GET", fe.URL+"/mcp", nil)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := http.DefaultClient.Do(req) // returns with the headers
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("Content-Type %q", resp.Header.Get("Content-Type"))
		}
		br := bufio.NewReader(resp.Body)
		for i := 1; i <= 2; i++ {
			next <- struct{}{}
			line, err := br.ReadString('\n')
			if err != nil || line != fmt.Sprintf("data: %d\n", i) {
				t.Fatalf("event %d: %q %v", i, line, err)
			}
			br.ReadString('\n')
		}
	})
}

// When the client leaves, the proxy ends the upstream exchange too.
func TestClientGoneEndsUpstreamStream(t *testing.T) {
	bothProtocols(t, func(t *testing.T, up *upstream) {
		var opts Options
		ended := make(chan struct{})
		be := up.backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(200)
			io.WriteString(w, "data: 1\n\n")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			close(ended)
		}))
		fe := up.front(t, be.URL, opts, alice)
		req, _ := http.NewRequest("GET", fe.URL+"/mcp", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		bufio.NewReader(resp.Body).ReadString('\n')
		resp.Body.Close() // closes the connection: the stream is not at its end
		select {
		case <-ended:
		case <-time.After(5 * time.Second):
			t.Fatal("the backend's stream went on after the client left")
		}
	})
}

// An event stream that the gateway ends (its request's context, as
// mcpgate's EndStreams does at shutdown) ends at the client as one the
// upstream ends: cleanly, with the handler returning, so that the access
// log line is written and the client does not see a broken connection.
func TestStreamEndedByGatewayEndsCleanly(t *testing.T) {
	bothProtocols(t, func(t *testing.T, up *upstream) {
		var opts Options
		be := up.backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: 1\n\n")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}))
		opts.Upstream, opts.Transport = mustURL(t, be.URL), up.tr
		h, err := New(opts)
		if err != nil {
			t.Fatal(err)
		}
		end := make(chan struct{})
		returned := make(chan bool, 1)
		fe := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithCancel(r.Context())
			defer cancel()
			go func() { <-end; cancel() }()
			ok := false
			defer func() { returned <- ok }()
			asGuard(h, alice).ServeHTTP(w, r.WithContext(ctx))
			ok = true
		}))
		defer fe.Close()
		resp, err := http.Get(fe.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		if line, err := br.ReadString('\n'); err != nil || line != "data: 1\n" {
			t.Fatalf("first event: %q %v", line, err)
		}
		close(end)
		if rest, err := io.ReadAll(br); err != nil || string(rest) != "\n" {
			t.Fatalf("after the gateway ended the stream, the client read %q and %v, want the end of the stream", rest, err)
		}
		if !<-returned {
			t.Fatal("the proxy aborted the connection instead of returning")
		}
	})
}

// The proxy keeps connections to the upstream alive, as many as
// concurrent requests need (http.DefaultTransport would keep 2 and dial
// the others again for every wave), and does not use one that the
// upstream closed while it was idle.
func TestUpstreamConnectionsReusedAndStaleOnesSkipped(t *testing.T) {
	const wave = 8
	start := func(idle time.Duration, h http.Handler) (*httptest.Server, *atomic.Int32) {
		var conns atomic.Int32
		be := httptest.NewUnstartedServer(h)
		be.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		}
		be.Config.IdleTimeout = idle // 0: keeps idle connections
		be.Start()
		t.Cleanup(be.Close)
		return be, &conns
	}
	call := func(url string) {
		t.Helper()
		resp := post(t, url, "{}", nil)
		if readAll(t, resp); resp.StatusCode != 200 {
			t.Errorf("status %d", resp.StatusCode)
		}
	}
	// Each request waits until the whole wave is in: wave connections.
	var mu sync.Mutex
	var waiting []chan struct{}
	barrier := (&recorder{}).handler(func(w http.ResponseWriter, r *http.Request) {
		ch := make(chan struct{})
		mu.Lock()
		if waiting = append(waiting, ch); len(waiting) == wave {
			for _, c := range waiting {
				close(c)
			}
			waiting = nil
		}
		mu.Unlock()
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
		}
		w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`))
	})
	be, conns := start(0, barrier)
	fe := front(t, be.URL, Options{}, alice)
	for range 3 {
		var wg sync.WaitGroup
		for range wave {
			wg.Go(func() { call(fe.URL) })
		}
		wg.Wait()
	}
	if n := conns.Load(); n != wave {
		t.Fatalf("%d connections to the upstream for 3 waves of %d requests at once, want %d", n, wave, wave)
	}

	be, conns = start(20*time.Millisecond, (&recorder{}).handler(nil)) // closes idle connections
	fe = front(t, be.URL, Options{}, alice)
	call(fe.URL)
	time.Sleep(150 * time.Millisecond)
	call(fe.URL) // on a new connection, not the closed one
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

// An answer the upstream breaks off must not reach the client as complete.
func TestTruncatedAnswerAbortsClientConnection(t *testing.T) {
	bothProtocols(t, func(t *testing.T, up *upstream) {
		// At once, and after the first bytes have reached the client.
		for _, pause := range []time.Duration{0, 10 * flushDelay} {
			be := up.backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Content-Length", "100")
				io.WriteString(w, `{"jsonrpc":`)
				w.(http.Flusher).Flush()
				time.Sleep(pause)
				panic(http.ErrAbortHandler) // closes the connection (HTTP/1.1) or resets the stream (HTTP/2)
			}))
			fe := up.front(t, be.URL, Options{}, alice)
			resp, err := http.Post(fe.URL, "application/json", strings.NewReader("{}"))
			if err != nil && pause == 0 {
				continue // aborted before the headers left
			}
			if err != nil {
				t.Fatalf("after %v: %v, want the headers and the first bytes", pause, err)
			}
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil {
				t.Fatalf("after %v: the client read a truncated answer as complete", pause)
			}
		}
	})
}

func TestTrailersPassed(t *testing.T) {
	bothProtocols(t, func(t *testing.T, up *upstream) {
		var opts Options
		be := up.backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-Checksum")
			w.Write([]byte("body"))
			w.Header().Set("X-Checksum", "42")
		}))
		fe := up.front(t, be.URL, opts, alice)
		resp := post(t, fe.URL, "{}", nil)
		if b := readAll(t, resp); b != "body" || resp.Trailer.Get("X-Checksum") != "42" {
			t.Fatalf("body %q trailer %v", b, resp.Trailer)
		}
	})
}

// A header value that would split the request (which net/http's server
// never lets a client send, but a middleware in front could set) never
// reaches the upstream, and a query that Go would read differently from
// other servers is re-encoded.
func TestNoHeaderInjectionAndCleanQuery(t *testing.T) {
	rec := &recorder{}
	be := backend(t, rec.handler(nil))
	h, err := New(Options{Upstream: mustURL(t, be.URL+"/mcp")})
	if err != nil {
		t.Fatal(err)
	}
	inject := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Inject") != "" {
			r.Header["X-A"] = []string{"1\r\nX-Injected: 2"}
			r.Header["Bad Name"] = []string{"v"}
		}
		asGuard(h, alice).ServeHTTP(w, r)
	})
	fe := httptest.NewServer(inject)
	defer fe.Close()
	resp := post(t, fe.URL+"/x?a=1&b=2;c=3", "{}", map[string]string{"X-Inject": "1"})
	readAll(t, resp)
	rec.mu.Lock()
	for _, r := range rec.reqs {
		if r.Header.Get("X-Injected") != "" || r.Header.Get("Bad Name") != "" {
			t.Errorf("the upstream got an injected header: %v", r.Header)
		}
	}
	rec.mu.Unlock()
	resp = post(t, fe.URL+"/x?a=1&b=2;c=3", "{}", nil)
	readAll(t, resp)
	if r, _ := rec.last(t); resp.StatusCode != 200 || r.URL.RawQuery != "a=1" {
		t.Fatalf("status %d, the upstream got the query %q, want a=1", resp.StatusCode, r.URL.RawQuery)
	}
}

// behindGateway serves upstream through the proxy behind a gateway that
// sets the headers of set first, as the guard sets its CORS headers, and
// answers a POST from a browser page's origin.
func behindGateway(t *testing.T, upstream http.HandlerFunc, set func(http.Header)) *http.Response {
	t.Helper()
	be := backend(t, upstream)
	h, err := New(Options{Upstream: mustURL(t, be.URL)})
	if err != nil {
		t.Fatal(err)
	}
	fe := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		set(w.Header())
		asGuard(h, alice).ServeHTTP(w, r)
	}))
	t.Cleanup(fe.Close)
	return post(t, fe.URL, "{}", map[string]string{"Origin": "http://localhost:3000"})
}

// An informational answer of the upstream (103 Early Hints) stays between
// it and the proxy, and leaves alone the headers the gateway set before
// the proxy ran (the guard's CORS headers, which browser clients need).
func TestInformationalAnswerKeepsGatewayHeaders(t *testing.T) {
	resp := behindGateway(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`))
	}, func(h http.Header) {
		h.Set("Access-Control-Allow-Origin", "http://localhost:3000")
		h.Set("Access-Control-Expose-Headers", "Mcp-Session-Id")
	})
	body := readAll(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(body, `"result"`) {
		t.Fatalf("status %d, body %q; want 200 and the upstream's result", resp.StatusCode, body)
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "http://localhost:3000" {
		t.Errorf("Access-Control-Allow-Origin %q after a 103, want the gateway's http://localhost:3000", got)
	}
	if got := resp.Header.Get("Access-Control-Expose-Headers"); got != "Mcp-Session-Id" {
		t.Errorf("Access-Control-Expose-Headers %q after a 103, want Mcp-Session-Id", got)
	}
	if got := resp.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type %q, want the upstream's application/json", got)
	}
}

// The upstream's Vary joins the gateway's Vary: Origin (SEC-34), which
// an answer that echoes the caller's origin must carry for caches in
// between; before, the upstream's replaced it.
func TestSEC34_UpstreamVaryKeepsOrigin(t *testing.T) {
	resp := behindGateway(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Vary", "Accept-Encoding")
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`))
	}, func(h http.Header) {
		h.Set("Access-Control-Allow-Origin", "http://localhost:3000")
		h.Add("Vary", "Origin")
	})
	readAll(t, resp)
	if got := resp.Header.Values("Vary"); !slices.Contains(got, "Origin") || !slices.Contains(got, "Accept-Encoding") {
		t.Errorf("Vary %q, want the gateway's Origin and the upstream's Accept-Encoding", got)
	}
}
