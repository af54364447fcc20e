package mcpgate_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawGet sends a GET for path with the Host header host exactly as given
// (the Go client checks and rewrites what it sends) and returns the answer.
func (g *gw) rawGet(path, host string) (*http.Response, []byte) {
	g.t.Helper()
	conn, err := net.DialTimeout("tcp", g.srv.Listener.Addr().String(), 10*time.Second)
	if err != nil {
		g.t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n"); err != nil {
		g.t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		g.t.Fatalf("GET %s with Host %q: %v", path, host, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// SEC-11: without a public URL the issuer follows a loopback Host, so a
// Host that is not a well-formed host[:port] is refused with a 400 before
// any handler reads it, and never shows in metadata, a redirect or a
// challenge.
func TestSEC11_MalformedHostRefused(t *testing.T) {
	g := newGateway(t)
	port := g.srv.Listener.Addr().(*net.TCPAddr).Port
	p := func(s string) string { return strings.ReplaceAll(s, "P", strconv.Itoa(port)) }
	c := g.register(nil)
	a := g.newAuth(c.ClientID)
	authorize := strings.TrimPrefix(a.URL(), g.url)
	for _, host := range []string{
		p("127.0.0.1:P,evil.com"), p("127.0.0.1:P,evil.com:443"), p("localhost:P/evil.com"),
		p("evil.com@127.0.0.1:P"), "127.0.0.1:evil", p("127.0.0.1:P:1"), p("[::1]:P,evil.com"),
		p("127.0.0.1:+P"), "127.0.0.1:99999", p("localhost:P;evil.com"), p("127.0.0.1:P?evil.com"),
	} {
		for _, path := range []string{"/.well-known/oauth-authorization-server", "/.well-known/oauth-protected-resource/mcp", authorize, "/mcp", "/"} {
			t.Run(host+" "+path[:min(len(path), 12)], func(t *testing.T) {
				resp, body := g.on(t).rawGet(path, host)
				if resp.StatusCode != 400 {
					t.Errorf("got %d, want 400", resp.StatusCode)
				}
				all := string(body)
				for k, vs := range resp.Header {
					all += k + ": " + strings.Join(vs, ",") + "\n"
				}
				if strings.Contains(all, "evil") || strings.Contains(all, host) {
					t.Errorf("the Host shows in the answer:\n%s", all)
				}
			})
		}
	}
	// Well-formed loopback Hosts still set the issuer (ASM-3), and the MCP
	// endpoint still challenges.
	for _, host := range []string{p("127.0.0.1:P"), p("localhost:P"), p("LOCALHOST:P"), "localhost", p("[::1]:P")} {
		resp, body := g.rawGet("/.well-known/oauth-authorization-server", host)
		if resp.StatusCode != 200 || decode[map[string]any](t, body)["issuer"] != "http://"+strings.ToLower(host) {
			t.Errorf("Host %q: %d %s, want 200 with that issuer", host, resp.StatusCode, body)
		}
		if resp, _ := g.rawGet("/mcp", host); resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "http://"+strings.ToLower(host)+"/") {
			t.Errorf("Host %q at /mcp: %d %q, want 401 with a challenge naming it", host, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
}
