package oidc_test

import (
	"context"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/upstream/oidc"
)

// stalling returns the URL of a server that accepts connections and never
// answers, as a provider that hangs.
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

// SEC-73: every call to a provider is bounded, also through a caller's
// HTTP client without a Timeout (the fake's own, here): a provider that
// accepts the connection and never answers fails the login (or the
// refresh) once the bound has passed, instead of holding it for good.
func TestSEC73_ProviderCallsBounded(t *testing.T) {
	defer oidc.SetCallTimeout(200 * time.Millisecond)()
	stall := stalling(t)
	for _, tc := range []struct {
		name string
		// setup makes the connector; call is the call that must end
		setup func(t *testing.T) (call func() error)
	}{
		{"discovery", func(t *testing.T) func() error {
			return func() error {
				_, err := oidc.New(context.Background(), oidc.Config{Issuer: stall, ClientID: "client-1", HTTPClient: &http.Client{}})
				return err
			}
		}},
		{"token endpoint", func(t *testing.T) func() error {
			f := newFakeIdP(t)
			f.moved = map[string]string{"token_endpoint": stall + "/token"}
			c := f.connector(t, nil)
			return func() error { _, err := f.login(t, c); return err }
		}},
		{"key set", func(t *testing.T) func() error {
			f := newFakeIdP(t)
			f.moved = map[string]string{"jwks_uri": stall + "/jwks"}
			f.idClaims = profile(nil)
			c := f.connector(t, nil)
			return func() error { _, err := f.login(t, c); return err }
		}},
		{"userinfo", func(t *testing.T) func() error {
			f := newFakeIdP(t)
			f.moved = map[string]string{"userinfo_endpoint": stall + "/userinfo"}
			f.idClaims = map[string]any{"name": "N"} // userinfo is asked for the rest
			c := f.connector(t, nil)
			return func() error { _, err := f.login(t, c); return err }
		}},
		{"refresh", func(t *testing.T) func() error {
			f := newFakeIdP(t)
			f.moved = map[string]string{"token_endpoint": stall + "/token"}
			c := f.connector(t, nil)
			return func() error { _, _, err := c.Refresh(context.Background(), "rt-1"); return err }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			call := tc.setup(t)
			done := make(chan error, 1)
			go func() { done <- call() }()
			// Far past the bound, far below the 30 s of a default.
			select {
			case err := <-done:
				if err == nil {
					t.Fatal("a provider that never answers: no error")
				}
			case <-time.After(20 * time.Second):
				t.Fatal("a provider that never answers: no outcome after 20 s; want the call bounded")
			}
		})
	}
}
