package mcpgate_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/internal/pgtest"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/postgres"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

// gatedStore holds every CreateGrant while armed until the test lets it
// go, so that a test orders the grant writes of racing requests.
type gatedStore struct {
	store.Store
	armed atomic.Bool
	calls chan *gatedCall
}

// gatedCall is one held CreateGrant.
type gatedCall struct {
	grant   *store.Grant
	proceed chan struct{} // closed by the test: write now
	done    chan struct{} // closed once the write has returned
}

func (s *gatedStore) CreateGrant(ctx context.Context, g *store.Grant, rt *store.RefreshToken) error {
	if s.armed.Load() {
		c := &gatedCall{grant: g, proceed: make(chan struct{}), done: make(chan struct{})}
		s.calls <- c
		<-c.proceed
		defer close(c.done)
	}
	return s.Store.CreateGrant(ctx, g, rt)
}

// let lets c write and waits until it has.
func (c *gatedCall) let() {
	close(c.proceed)
	<-c.done
}

// tokenAnswer is a /token answer read in another goroutine.
type tokenAnswer struct {
	status int
	tok    tokenResponse
	err    error
}

func postToken(a *authRequest, code string) <-chan tokenAnswer {
	out := make(chan tokenAnswer, 1)
	go func() {
		resp, err := http.PostForm(a.base+"/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"client_id": {a.ClientID}, "redirect_uri": {a.Redirect}, "code_verifier": {a.Verifier}, "resource": {a.Resource}})
		if err != nil {
			out <- tokenAnswer{err: err}
			return
		}
		defer resp.Body.Close()
		var tok tokenResponse
		b, err := io.ReadAll(resp.Body)
		if err == nil {
			err = json.Unmarshal(b, &tok)
		}
		out <- tokenAnswer{resp.StatusCode, tok, err}
	}()
	return out
}

// PKCE-3: a code replayed while its first redemption has spent it
// and not yet stored its grant still ends that grant, in the store and not
// only in this process's denylist: whatever the first redemption was
// answered, its refresh token is refused with its access token, and the
// grant is revoked where a restart reads it. Both orders of the two
// requests' grant writes, on every persistent store.
func TestPKCE3_ReplayDuringRedemptionEndsGrant(t *testing.T) {
	for _, backend := range []string{"memory", "sqlite", "postgres"} {
		for _, order := range []string{"replay writes first", "redemption writes first"} {
			t.Run(backend+"/"+order, func(t *testing.T) {
				var st store.Store
				switch backend {
				case "sqlite":
					s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "mcpgate.db"))
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { s.Close() })
					st = s
				case "postgres":
					s, err := postgres.Open(t.Context(), pgtest.Start(t))
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { s.Close() })
					st = s
				}
				testReplayDuringRedemption(t, st, order == "replay writes first")
			})
		}
	}
}

// testReplayDuringRedemption runs on st, or on the harness's memory store
// when st is nil.
func testReplayDuringRedemption(t *testing.T, st store.Store, replayFirst bool) {
	gate := &gatedStore{calls: make(chan *gatedCall)}
	g := newGateway(t, func(c *mcpgate.Config) {
		gate.Store = c.Store
		if st != nil {
			gate.Store = st
		}
		c.Store = gate
	})
	c := g.register(nil)
	a := g.newAuth(c.ClientID)
	code, _ := g.login(a)

	gate.armed.Store(true)
	firstCh := postToken(a, code)
	var first *gatedCall
	select {
	case first = <-gate.calls:
	case r := <-firstCh:
		t.Fatalf("the first redemption was answered (%d %q %v) without storing a grant", r.status, r.tok.Error, r.err)
	case <-time.After(30 * time.Second):
		t.Fatal("the first redemption did not reach CreateGrant")
	}
	replayCh := postToken(a, code)
	var replay tokenAnswer
	select {
	case w := <-gate.calls: // the replay writes the grant too
		if replayFirst {
			w.let()
			first.let()
		} else {
			first.let()
			w.let()
		}
		replay = <-replayCh
	case replay = <-replayCh: // it answered without writing a grant
		first.let()
	case <-time.After(30 * time.Second):
		t.Fatal("the replay was not answered")
	}
	gate.armed.Store(false)
	if replay.err != nil || replay.status != 400 || replay.tok.Error != "invalid_grant" {
		t.Fatalf("replay: %d %q %v, want 400 invalid_grant", replay.status, replay.tok.Error, replay.err)
	}
	r := <-firstCh
	switch {
	case r.err != nil:
		t.Fatalf("first redemption: %v", r.err)
	case r.status == 200:
		if resp, _ := g.refresh(c.ClientID, r.tok.RefreshToken, nil); resp.StatusCode != 400 {
			t.Errorf("refresh token of a code replayed during its redemption: %d, want 400", resp.StatusCode)
		}
		if resp, _ := g.mcpInitialize(g.url, r.tok.AccessToken); resp.StatusCode != 401 {
			t.Errorf("access token of a code replayed during its redemption: %d, want 401", resp.StatusCode)
		}
	case r.status != 400 || r.tok.Error != "invalid_grant":
		t.Errorf("first redemption: %d %q, want 200, or 400 invalid_grant", r.status, r.tok.Error)
	}
	grant, err := gate.Store.GetGrant(context.Background(), first.grant.ID)
	if err != nil || grant.RevokedAt.IsZero() {
		t.Fatalf("the grant of a code replayed during its redemption, in the store: %v, want it there, revoked", err)
	}
}
