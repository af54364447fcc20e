package github_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/upstream/github"
)

// stalling returns the URL of a server that accepts connections and never
// answers, as a GitHub that hangs.
func stalling(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + ln.Addr().String()
}

// SEC-73: every call to GitHub (token, API) is bounded, also through a
// caller's HTTP client without a Timeout (the fake's own, here): a GitHub
// that accepts the connection and never answers fails the login or the
// recheck once the bound has passed, instead of holding it for good.
func TestSEC73_GitHubCallsBounded(t *testing.T) {
	defer github.SetCallTimeout(200 * time.Millisecond)()
	stall := stalling(t)
	for _, tc := range []struct {
		name  string
		setup func(e *env) (call func() error)
	}{
		{"token endpoint", func(e *env) func() error {
			c := e.connector(github.Config{TokenURL: stall + "/login/oauth/access_token"})
			r := e.authorize(c.LoginURL("state-1", callback))
			return func() error { _, err := c.HandleCallback(context.Background(), callback, r); return err }
		}},
		{"API at login", func(e *env) func() error {
			c := e.connector(github.Config{APIURL: stall})
			r := e.authorize(c.LoginURL("state-1", callback))
			return func() error { _, err := c.HandleCallback(context.Background(), callback, r); return err }
		}},
		{"API at a recheck", func(e *env) func() error {
			c := e.connector(github.Config{APIURL: stall})
			return func() error { _, _, err := c.Refresh(context.Background(), "gho_token"); return err }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			call := tc.setup(newEnv(t, octocat))
			done := make(chan error, 1)
			go func() { done <- call() }()
			// Far past the bound, far below the 30 s of a default.
			select {
			case err := <-done:
				if err == nil {
					t.Fatal("a GitHub that never answers: no error")
				}
			case <-time.After(20 * time.Second):
				t.Fatal("a GitHub that never answers: no outcome after 20 s; want the call bounded")
			}
		})
	}
}
