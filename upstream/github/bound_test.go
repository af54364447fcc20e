package github_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
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

// SEC-203: a token endpoint or API that redirects to another origin is
// not followed: the code, its verifier and the client secret (which
// GitHub takes in the body) are not posted there, nor is the person's
// token sent to it. Here the other origin is the fake itself, so a
// followed redirect would log in.
func TestSEC203_GitHubRedirectToAnotherOriginNotFollowed(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  func(moving string) github.Config
	}{
		{"token endpoint", func(moving string) github.Config {
			return github.Config{TokenURL: moving + "/login/oauth/access_token"}
		}},
		{"API", func(moving string) github.Config { return github.Config{APIURL: moving} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, octocat)
			var mu sync.Mutex
			var moved []string
			moving := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				moved = append(moved, r.URL.Path)
				mu.Unlock()
				http.Redirect(w, r, e.fake.URL+r.URL.Path, http.StatusTemporaryRedirect)
			}))
			defer moving.Close()
			c := e.connector(tc.cfg(moving.URL))
			if u, err := c.HandleCallback(context.Background(), callback, e.authorize(c.LoginURL("state-1", callback))); err == nil {
				t.Fatalf("logged in as %q through a redirect to another origin; want the login refused", u.ID)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(moved) == 0 {
				t.Fatal("the redirecting endpoint was never asked: the test shows nothing")
			}
		})
	}
}
