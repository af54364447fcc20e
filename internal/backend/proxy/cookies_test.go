package proxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync/atomic"
	"testing"
)

// SEC-121: an upstream's cookies never reach the client, on an answer or
// on an event stream: the answer comes from the gateway's origin, where
// the gateway's own cookies (the browser's sign-in session) live.
func TestSEC121_UpstreamCookiesDropped(t *testing.T) {
	var calls atomic.Int32
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Add("Set-Cookie", "mcpgate_session=planted; Path=/")
		w.Header().Add("Set-Cookie", "AWSALB=x; Path=/")
		w.Header().Set("Set-Cookie2", "old=1")
		if r.Method == http.MethodGet {
			w.Header().Set("Content-Type", "text/event-stream")
		} else {
			w.Header().Set("Content-Type", "application/json")
		}
		w.Write([]byte("{}"))
	}))
	fe := front(t, be.URL, Options{}, alice)
	for _, method := range []string{http.MethodPost, http.MethodGet} {
		var body *strings.Reader
		if method == http.MethodPost {
			body = strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`)
		} else {
			body = strings.NewReader("")
		}
		req, _ := http.NewRequest(method, fe.URL+"/mcp", body)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d, want the upstream's 200", method, resp.StatusCode)
		}
		if got := resp.Header.Values("Set-Cookie"); len(got) != 0 || resp.Header.Get("Set-Cookie2") != "" {
			t.Errorf("%s: the client got the upstream's cookies %q %q, want none", method, got, resp.Header.Get("Set-Cookie2"))
		}
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("the upstream answered %d requests, want both", n)
	}
}

// SEC-121 holds for the rest of an answer too: a cookie in its trailers,
// announced or not, and one on an informational answer (1xx) before it,
// never reach the client.
func TestSEC121_UpstreamCookiesInTrailersAnd1xxDropped(t *testing.T) {
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Set-Cookie", "early=1; Path=/")
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Set-Cookie")
		w.Header().Set("Trailer", "Set-Cookie, X-Checksum")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`))
		w.Header().Set("Set-Cookie", "announced=1; Path=/")
		w.Header().Set("X-Checksum", "abc")
		w.Header().Set(http.TrailerPrefix+"Set-Cookie2", "old=1")
	}))
	fe := front(t, be.URL, Options{}, alice)
	var early []string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		early = append(early, h.Values("Set-Cookie")...)
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodPost, fe.URL+"/mcp",
		strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d, want the upstream's 200", resp.StatusCode)
	}
	if resp.Trailer.Get("X-Checksum") != "abc" {
		t.Errorf("trailers %v, want the upstream's X-Checksum passed on", resp.Trailer)
	}
	if got := append(resp.Trailer.Values("Set-Cookie"), resp.Trailer.Values("Set-Cookie2")...); len(got) != 0 {
		t.Errorf("the client got the upstream's cookies in the trailers: %q, want none", got)
	}
	if len(early) != 0 {
		t.Errorf("the client got the upstream's cookies on a 1xx answer: %q, want none", early)
	}
}
