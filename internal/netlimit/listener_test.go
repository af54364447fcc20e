package netlimit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// largeAnswer is the size of /large's answer, written at once.
const largeAnswer = 4 << 20

// serve runs an HTTP server on a Listener with opts: /hold answers once
// release is closed, after telling held; / answers at once.
func serve(t *testing.T, opts Options) (l *Listener, held chan struct{}, release chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, ln, opts)
}

// serveOn is serve on ln.
func serveOn(t *testing.T, ln net.Listener, opts Options) (l *Listener, held chan struct{}, release chan struct{}) {
	t.Helper()
	l = NewListener(ln, opts)
	held, release = make(chan struct{}, 10), make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/hold", func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		held <- struct{}{}
		<-release
		io.WriteString(w, "held")
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { // 64 MiB, more than any socket buffers
		chunk := make([]byte, 1<<20)
		for range 64 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/large", func(w http.ResponseWriter, r *http.Request) { // 4 MiB in one write
		w.Header().Set("Content-Length", strconv.Itoa(largeAnswer))
		w.Write(make([]byte, largeAnswer))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	srv := &http.Server{Handler: Handler(mux), ConnContext: ConnContext}
	go srv.Serve(l)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
		srv.Close()
	})
	return l, held, release
}

// dial connects from the loopback address from (all of 127/8 is loopback
// on Linux) and writes head.
func dial(t *testing.T, l *Listener, from, head string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	return c
}

// closedBy reports whether the server closes c within d.
func closedBy(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	return !errors.Is(err, os.ErrDeadlineExceeded)
}

// waitOpen waits until l holds n connections.
func waitOpen(t *testing.T, l *Listener, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for l.Open() != n {
		select {
		case <-ctx.Done():
			t.Fatalf("%d connections open, want %d", l.Open(), n)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// get sends a GET from 127.0.0.1 on a connection of its own.
func get(t *testing.T, l *Listener, path string) (string, error) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := client.Get(fmt.Sprintf("http://%s%s", l.Addr(), path))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// SEC-41: one address gets no more than its share; a connection over it is
// closed at once, and other addresses are served.
func TestSEC41_PerAddressCap(t *testing.T) {
	l, _, _ := serve(t, Options{Max: 100, PerAddress: 3})
	var conns []net.Conn
	for range 3 {
		conns = append(conns, dial(t, l, "127.0.0.2", ""))
	}
	waitOpen(t, l, 3)
	over := dial(t, l, "127.0.0.2", "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if !closedBy(over, 10*time.Second) {
		t.Fatal("a connection over the per-address cap is open, want it closed at once")
	}
	if body, err := get(t, l, "/"); err != nil || body != "ok" {
		t.Fatalf("another address at the cap: %q %v, want ok", body, err)
	}
	for _, c := range conns {
		c.Close()
	}
	waitOpen(t, l, 0)
	if body, err := get(t, l, "/"); err != nil || body != "ok" {
		t.Fatalf("after the capped address closed its connections: %q %v, want ok", body, err)
	}
}

// SEC-41: at the overall cap, the oldest connection not being served (idle,
// or still sending its request) is closed for the new one; a connection
// whose request was read and whose answer is under way is kept.
func TestSEC41_OverallCapEvictsOldestUnserved(t *testing.T) {
	l, held, release := serve(t, Options{Max: 3})
	served := dial(t, l, "127.0.0.1", "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
	<-held
	idle := dial(t, l, "127.0.0.2", "")
	waitOpen(t, l, 2)
	slow := dial(t, l, "127.0.0.3", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\na")
	waitOpen(t, l, 3)

	if body, err := get(t, l, "/"); err != nil || body != "ok" {
		t.Fatalf("a new connection at the cap: %q %v, want ok", body, err)
	}
	if !closedBy(idle, 10*time.Second) {
		t.Fatal("the oldest connection not being served is open, want it closed for the new one")
	}
	waitOpen(t, l, 2)
	younger := dial(t, l, "127.0.0.2", "")
	waitOpen(t, l, 3)
	if body, err := get(t, l, "/"); err != nil || body != "ok" {
		t.Fatalf("a second new connection at the cap: %q %v, want ok", body, err)
	}
	if !closedBy(slow, 10*time.Second) {
		t.Fatal("the connection still sending its request is open, want it closed for the second new one")
	}
	if closedBy(younger, 100*time.Millisecond) {
		t.Fatal("a younger idle connection was closed, want the oldest one closed")
	}
	close(release)
	served.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 512)
	n, _ := io.ReadAtLeast(served, b, 1)
	if want := "HTTP/1.1 200 OK"; string(b[:min(n, len(want))]) != want {
		t.Fatalf("the connection being served got %q, want its answer, 200", b[:n])
	}
}

// SEC-41: when every connection at the overall cap is being served, the new
// one is closed, and the others go on.
func TestSEC41_OverallCapAllServed(t *testing.T) {
	l, held, release := serve(t, Options{Max: 1})
	served := dial(t, l, "127.0.0.1", "POST /hold HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
	<-held
	waitOpen(t, l, 1)
	if _, err := get(t, l, "/"); err == nil {
		t.Fatal("a new connection with every one being served was answered, want it closed")
	}
	close(release)
	served.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 15)
	if _, err := io.ReadFull(served, b); err != nil || string(b) != "HTTP/1.1 200 OK" {
		t.Fatalf("the connection being served: %q %v, want its answer, 200", b, err)
	}
}

func TestClientKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1:5":               "192.0.2.1",
		"[::ffff:192.0.2.1]:5":      "192.0.2.1",
		"[2001:db8:1:2:3:4:5:6]:80": "2001:db8:1:2::",
	} {
		ap := net.TCPAddrFromAddrPort(netip.MustParseAddrPort(in))
		if got := clientKey(ap).String(); got != want {
			t.Errorf("clientKey(%s) = %s, want %s", in, got, want)
		}
	}
}

// A connection keeps what net/http needs of a TCP connection: the answer
// written before closing on a client still sending (431 to headers too
// large) ends with a clean end of stream, then the close, rather than a
// reset that may destroy the answer; that needs CloseWrite.
func TestConnHalfCloses(t *testing.T) {
	l, _, _ := serve(t, Options{Max: 10, PerAddress: 10})
	c := dial(t, l, "127.0.0.1", "GET / HTTP/1.1\r\nHost: x\r\n")
	go func() {
		pad := "X-Pad: " + strings.Repeat("a", 64<<10) + "\r\n"
		for range 64 { // 4 MiB of headers, past MaxHeaderBytes
			if _, err := io.WriteString(c, pad); err != nil {
				return
			}
		}
	}()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	answer, err := io.ReadAll(c)
	if err != nil || !strings.HasPrefix(string(answer), "HTTP/1.1 431") {
		t.Fatalf("headers too large: %q, %v; want the 431 answer, then the end of the stream", answer, err)
	}
}

// SEC-139: a client that stops reading its answer holds its connection,
// served and so never closed for another, only WriteStall: then the write
// gives up and the connection closes, and the cap has room again. Fails
// before this change: at the cap of 1, the unread answer's connection
// stayed served for good and every new connection was closed.
func TestSEC139_UnreadAnswerReleasedAfterWriteStall(t *testing.T) {
	l, _, _ := serve(t, Options{Max: 1, WriteStall: 200 * time.Millisecond})
	c := dial(t, l, "127.0.0.1", "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
	// The answer has begun (the connection is served); then nothing more
	// is read.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if b := make([]byte, 12); func() bool { _, err := io.ReadFull(c, b); return err != nil || string(b) != "HTTP/1.1 200" }() {
		t.Fatal("no answer began")
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		body, err := get(t, l, "/")
		if err == nil && body == "ok" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a new connection 20 s after the unread answer began: %q %v, want it served once the write stalled", body, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// SEC-139: the write stall is time without progress, not time for a whole
// write: a client that keeps reading an answer written at once (a tool's
// result of many MB), only slowly, gets all of it. Fails before this
// change: the deadline covered the whole 4 MiB write, and the client was
// cut after what the socket buffers held.
func TestSEC139_SlowReaderThatKeepsReadingGetsAll(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Small socket buffers on both sides, so that what the kernel holds
	// does not stand in for the client's reading: the server's write
	// waits for the client at every few KB.
	l, _, _ := serveOn(t, smallSendBuffers{ln}, Options{Max: 4, WriteStall: 500 * time.Millisecond})
	c := dial(t, l, "127.0.0.1", "GET /large HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	c.(*net.TCPConn).SetReadBuffer(32 << 10)
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	buf, total := make([]byte, 64<<10), 0
	for {
		n, err := c.Read(buf)
		total += n
		if err != nil {
			break
		}
		time.Sleep(20 * time.Millisecond) // a slow reader: well under 2 MB/s
	}
	if total < largeAnswer {
		t.Fatalf("a client reading every 20 ms got %d bytes of an answer of %d (with its head), want all of it", total, largeAnswer)
	}
}

// smallSendBuffers is a listener whose connections have a send buffer of
// 32 KiB.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(32 << 10)
	}
	return c, err
}
