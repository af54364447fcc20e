package mcpgate_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/tokens"
)

// refreshResult is one refresh sent from a goroutine (where t.Fatal must
// not be called).
type refreshResult struct {
	status int
	body   string
	tok    tokenResponse
	err    error
}

// refreshAtOnce sends n refreshes of the same token, released together.
func (g *gw) refreshAtOnce(clientID, rt string, n int) []refreshResult {
	out := make([]refreshResult, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {clientID}}
			resp, err := http.PostForm(g.url+"/token", form)
			if err != nil {
				out[i].err = err
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			out[i].status, out[i].body = resp.StatusCode, string(b)
			out[i].err = json.Unmarshal(b, &out[i].tok)
		}()
	}
	close(start)
	wg.Wait()
	return out
}

// sameSuccess checks that every answer is a 200 and all carry the same
// pair, and returns it. Every bad answer is reported before the test
// stops.
func sameSuccess(t *testing.T, results []refreshResult) tokenResponse {
	t.Helper()
	var first tokenResponse
	bad := false
	for i, r := range results {
		switch {
		case r.err != nil:
			t.Errorf("request %d of %d: %v (%d %s)", i, len(results), r.err, r.status, r.body)
		case r.status != 200:
			t.Errorf("RT-1: request %d of %d simultaneous refreshes failed: %d %s, want 200", i, len(results), r.status, r.body)
		case i == 0:
			first = r.tok
			continue
		case r.tok.AccessToken != first.AccessToken || r.tok.RefreshToken != first.RefreshToken:
			t.Errorf("RT-1: simultaneous refreshes got different pairs, want one:\n%+v\n%+v", first, r.tok)
		default:
			continue
		}
		bad = true
	}
	if bad {
		t.FailNow()
	}
	if first.AccessToken == "" || first.RefreshToken == "" {
		t.Fatalf("no pair: %+v, want an access and a refresh token", first)
	}
	return first
}

// RT-1, Okta row of CLIENT-QUIRKS: a refresh token presented again within
// the grace window (a retry after a lost response) gets byte for byte the
// pair its rotation issued, and the family goes on working.
func TestRT1_GraceWindowSamePair(t *testing.T) {
	g := newGateway(t)
	c, _, tok := g.fullFlow()
	resp, first := g.refresh(c.ClientID, tok.RefreshToken, nil)
	if resp.StatusCode != 200 || first.RefreshToken == tok.RefreshToken {
		t.Fatalf("refresh: %d %+v, want 200 with a new refresh token", resp.StatusCode, first)
	}
	g.clock.Advance(29 * time.Second)
	resp, b := g.postForm(g.url+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {c.ClientID}})
	again := decode[tokenResponse](t, b)
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("RT-1: retry within the grace window: %d, Cache-Control %q, %s; want 200 no-store", resp.StatusCode, resp.Header.Get("Cache-Control"), b)
	}
	if again.AccessToken != first.AccessToken || again.RefreshToken != first.RefreshToken || again.TokenType != "Bearer" || again.Scope != first.Scope {
		t.Fatalf("RT-1: the retry got another pair, want the first one again:\n%+v\n%+v", first, again)
	}
	if r, _ := g.mcpInitialize(g.url, again.AccessToken); r.StatusCode != 200 {
		t.Fatalf("the repeated access token is refused: %d, want 200", r.StatusCode)
	}
	// The family goes on.
	resp, next := g.refresh(c.ClientID, first.RefreshToken, nil)
	if resp.StatusCode != 200 || next.RefreshToken == first.RefreshToken {
		t.Fatalf("the family did not survive the retry: %d %+v, want 200 with a new refresh token", resp.StatusCode, next)
	}
	if r, _ := g.mcpInitialize(g.url, next.AccessToken); r.StatusCode != 200 {
		t.Fatalf("next access token refused: %d, want 200", r.StatusCode)
	}
	// TOK-4: none of it reached the log.
	logs := g.logs.String()
	for name, s := range map[string]string{"first refresh token": tok.RefreshToken, "retried refresh token": first.RefreshToken,
		"retried access token": first.AccessToken, "next refresh token": next.RefreshToken, "next access token": next.AccessToken} {
		if strings.Contains(logs, s) {
			t.Errorf("TOK-4: the %s reached the log, want no token there", name)
		}
	}
}

// RT-1: after the grace window, presenting a rotated refresh token is
// reuse: invalid_grant, and the whole family is dead, its access tokens at
// /mcp included.
func TestRT1_ReuseAfterGraceRevokes(t *testing.T) {
	g := newGateway(t)
	c, _, tok := g.fullFlow()
	resp, first := g.refresh(c.ClientID, tok.RefreshToken, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("refresh: %d, want 200", resp.StatusCode)
	}
	if r, _ := g.mcpInitialize(g.url, first.AccessToken); r.StatusCode != 200 {
		t.Fatalf("refreshed access token refused: %d, want 200", r.StatusCode)
	}
	g.clock.Advance(31 * time.Second)
	if resp, again := g.refresh(c.ClientID, tok.RefreshToken, nil); resp.StatusCode != 400 || again.Error != "invalid_grant" {
		t.Fatalf("RT-1: reuse after the grace window: %d %+v, want 400 invalid_grant", resp.StatusCode, again)
	}
	if resp, again := g.refresh(c.ClientID, first.RefreshToken, nil); resp.StatusCode != 400 || again.Error != "invalid_grant" {
		t.Fatalf("RT-1: the family survived a reuse: %d %+v, want 400 invalid_grant", resp.StatusCode, again)
	}
	for name, at := range map[string]string{"first": tok.AccessToken, "refreshed": first.AccessToken} {
		if r, _ := g.mcpInitialize(g.url, at); r.StatusCode != 401 {
			t.Errorf("RT-1: %s access token of a revoked family still works: %d, want 401", name, r.StatusCode)
		}
	}
}

// SEC-187: a rotated refresh token that comes back past the grace window
// ends its family (RT-1) even when the store cannot take the revocation
// at that moment: the gateway refuses the family's tokens at once and
// stores the revocation once it can, as for every other misuse (SEC-12).
// Fails before: the request was answered 500 and forgotten, and whoever
// had refreshed first (the thief) kept the family.
func TestSEC187_ReuseDuringAStoreOutageEndsTheFamily(t *testing.T) {
	g := newGateway(t, withFaultyStore)
	c, _, tok := g.fullFlow()
	resp, thief := g.refresh(c.ClientID, tok.RefreshToken, nil) // the thief's copy, used first
	if resp.StatusCode != 200 {
		t.Fatalf("the first refresh: %d, want 200", resp.StatusCode)
	}
	g.clock.Advance(time.Minute) // past the window
	g.faulty().failRotate.Store(true)
	resp, b := g.postForm(g.url+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {c.ClientID}})
	if resp.StatusCode != 500 || strings.Contains(string(b), "disk") {
		t.Fatalf("the rotated token back while the store takes no write: %d %s, want 500 without the store's text", resp.StatusCode, b)
	}
	g.faulty().failRotate.Store(false)
	if r, _ := g.mcpInitialize(g.url, thief.AccessToken); r.StatusCode != 401 {
		t.Errorf("RT-1: the newest access token after the reuse: %d, want 401", r.StatusCode)
	}
	if resp, _ := g.refresh(c.ClientID, thief.RefreshToken, nil); resp.StatusCode != 400 {
		t.Errorf("RT-1: the newest refresh token after the reuse: %d, want 400", resp.StatusCode)
	}
	if _, gr, err := g.store.GetRefresh(context.Background(), tokens.Hash(tok.RefreshToken), g.clock.Now()); err != nil || gr.RevokedAt.IsZero() {
		t.Errorf("the grant in the store after the reuse: %+v %v, want it revoked", gr, err)
	}

	// With the window off, as the store decides, any rotated token is
	// reuse: also one rotated by a replica whose clock is a second ahead.
	g = newGateway(t, withFaultyStore, func(c *mcpgateConfig) { c.RefreshGrace = -1 })
	c, _, tok = g.fullFlow()
	if resp, thief = g.refresh(c.ClientID, tok.RefreshToken, nil); resp.StatusCode != 200 {
		t.Fatalf("the first refresh: %d, want 200", resp.StatusCode)
	}
	g.clock.Advance(-time.Second)
	g.faulty().failRotate.Store(true)
	if resp, _ := g.refresh(c.ClientID, tok.RefreshToken, nil); resp.StatusCode != 500 {
		t.Fatalf("window off, clock behind: the rotated token back while the store takes no write: %d, want 500", resp.StatusCode)
	}
	g.faulty().failRotate.Store(false)
	if r, _ := g.mcpInitialize(g.url, thief.AccessToken); r.StatusCode != 401 {
		t.Errorf("window off, clock behind: the newest access token after the reuse: %d, want 401", r.StatusCode)
	}
}

// RT-1 with the grace window off (RefreshGrace < 0; refresh_grace: off):
// the first reuse revokes the family at once.
func TestRT1_GraceDisabled(t *testing.T) {
	g := newGateway(t, func(c *mcpgateConfig) { c.RefreshGrace = -1 })
	c, _, tok := g.fullFlow()
	resp, first := g.refresh(c.ClientID, tok.RefreshToken, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("refresh: %d, want 200", resp.StatusCode)
	}
	if resp, _ := g.refresh(c.ClientID, tok.RefreshToken, nil); resp.StatusCode != 400 {
		t.Fatalf("immediate reuse accepted with the grace window off: %d, want 400", resp.StatusCode)
	}
	if resp, _ := g.refresh(c.ClientID, first.RefreshToken, nil); resp.StatusCode != 400 {
		t.Fatalf("the family survived a reuse: %d, want 400", resp.StatusCode)
	}
	if r, _ := g.mcpInitialize(g.url, first.AccessToken); r.StatusCode != 401 {
		t.Fatalf("access token of a revoked family still works: %d, want 401", r.StatusCode)
	}
}

// RT-1: the grace window is for the token's own client. Another client
// presenting a just-rotated token is theft: invalid_grant, and the family
// ends.
func TestRT1_GraceRetryByAnotherClientRevokes(t *testing.T) {
	g := newGateway(t)
	c, _, tok := g.fullFlow()
	other := g.register(nil)
	_, first := g.refresh(c.ClientID, tok.RefreshToken, nil)
	if resp, got := g.refresh(other.ClientID, tok.RefreshToken, nil); resp.StatusCode != 400 || got.AccessToken != "" {
		t.Fatalf("another client got the pair: %d %+v, want 400 and no token", resp.StatusCode, got)
	}
	if resp, _ := g.refresh(c.ClientID, first.RefreshToken, nil); resp.StatusCode != 400 {
		t.Fatalf("the family survived theft: %d, want 400", resp.StatusCode)
	}
	if r, _ := g.mcpInitialize(g.url, first.AccessToken); r.StatusCode != 401 {
		t.Fatalf("access token of a stolen family still works: %d, want 401", r.StatusCode)
	}
}

// Claude.ai row of CLIENT-QUIRKS (refreshes from two egress IPs): the same
// refresh token sent twice, then eight times, at once. Every answer is a
// 200 with the same pair, and that one family goes on.
func TestClaudeAI_SameRefreshTwiceConcurrently(t *testing.T) {
	for _, n := range []int{2, 8} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			g := newGateway(t)
			c, _, tok := g.fullFlow()
			pair := sameSuccess(t, g.refreshAtOnce(c.ClientID, tok.RefreshToken, n))
			if r, _ := g.mcpInitialize(g.url, pair.AccessToken); r.StatusCode != 200 {
				t.Fatalf("the access token all got is refused: %d, want 200", r.StatusCode)
			}
			resp, next := g.refresh(c.ClientID, pair.RefreshToken, nil)
			if resp.StatusCode != 200 {
				t.Fatalf("the refresh token all got does not work: %d %+v, want 200", resp.StatusCode, next)
			}
			if r, _ := g.mcpInitialize(g.url, next.AccessToken); r.StatusCode != 200 {
				t.Fatalf("the family's next access token is refused: %d, want 200", r.StatusCode)
			}
		})
	}
}

// RT-1: duplicates race in every round of a family's life; each round
// continues one chain only, and all its tokens belong to one family (a
// reuse of a round's token after the window ends the newest one too).
func TestRT1_ConcurrentRefreshOneFamily(t *testing.T) {
	g := newGateway(t)
	c, _, tok := g.fullFlow()
	chain := []string{tok.RefreshToken}
	for round := range 5 {
		pair := sameSuccess(t, g.refreshAtOnce(c.ClientID, chain[len(chain)-1], 2+round))
		for i, prev := range chain {
			if pair.RefreshToken == prev {
				t.Fatalf("round %d: refresh token %d of the chain came back, want a new one each round", round, i)
			}
		}
		chain = append(chain, pair.RefreshToken)
		g.clock.Advance(time.Second)
	}
	last := chain[len(chain)-1]
	// Only the newest token continues the chain: once the window has
	// passed, an older one is reuse and ends the family, newest included.
	g.clock.Advance(31 * time.Second)
	if resp, _ := g.refresh(c.ClientID, chain[2], nil); resp.StatusCode != 400 {
		t.Fatalf("a rotated token of the chain still refreshes: %d, want 400", resp.StatusCode)
	}
	if resp, _ := g.refresh(c.ClientID, last, nil); resp.StatusCode != 400 {
		t.Fatalf("RT-1: the newest token survived the reuse of its ancestor: %d, want 400", resp.StatusCode)
	}
}

// The setting: refresh_grace in the file, MCPGATE_REFRESH_GRACE,
// --refresh-grace; default 30 s when left out; off turns the window off;
// a 0 written out, which once turned it off, is refused rather than read
// as the default; at most 5 min.
func TestRT1_RefreshGraceSetting(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	dir := t.TempDir()
	file := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	seconds, off := file("seconds.yaml", "refresh_grace: 15s\n"), file("off.yaml", "refresh_grace: off\n")
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want time.Duration // as mcpgate.Config gets it; negative: off
	}{
		{"default", nil, nil, 30 * time.Second},
		{"file", []string{"--config", seconds}, nil, 15 * time.Second},
		{"env over file", []string{"--config", seconds}, map[string]string{"MCPGATE_REFRESH_GRACE": "10s"}, 10 * time.Second},
		{"flag off over env", []string{"--refresh-grace", "off"}, map[string]string{"MCPGATE_REFRESH_GRACE": "10s"}, -1},
		{"env off", nil, map[string]string{"MCPGATE_REFRESH_GRACE": "off"}, -1},
		{"file off", []string{"--config", off}, nil, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Load(tc.args, env(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatalf("Validate: %v, want a valid configuration", err)
			}
			g, err := cfg.Gateway()
			if err != nil {
				t.Fatal(err)
			}
			if got := g.RefreshGrace; got != tc.want && !(tc.want < 0 && got < 0) {
				t.Errorf("RefreshGrace %v, want %v (negative: off)", got, tc.want)
			}
		})
	}
	cfg, err := config.Load([]string{"--refresh-grace", "10m"}, env(nil))
	if err != nil {
		t.Fatalf("10m: %v", err)
	}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "refresh_grace") {
		t.Fatalf("10m: Validate says %v, want it to refuse refresh_grace", err)
	}
	for _, bad := range []string{"-5s", "0", "0s"} {
		if _, err := config.Load([]string{"--refresh-grace", bad}, env(nil)); err == nil {
			t.Errorf("--refresh-grace %s accepted, want an error: off is the way to turn the window off", bad)
		}
	}
}
