package e2e

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate/e2e/browser"
)

// killChain is one grant as its client saw it: every token response it
// read (the code's, then each refresh's), in order.
type killChain struct {
	clientID string
	access   []string
	refresh  []string // refresh[i] came with access[i]
}

// killLoad is the load of TestBinaryKillReplicaUnderLoad: what it was
// answered, and the replica requests go to next (round robin).
type killLoad struct {
	t       *testing.T
	lb      *replicaRouter
	public  string
	next    atomic.Int64
	dead    atomic.Int64 // the killed replica + 1, 0 before the kill
	stop    atomic.Bool
	answers atomic.Int64 // token responses read (codes and refreshes)
	regs    atomic.Int64 // registrations begun, within the limit per address
	cuts    atomic.Int64 // requests that failed for the kill, then sent again
	mu      sync.Mutex
	clients []string
	chains  []*killChain
}

// regLimit is how many registrations the load may have begun by now.
func (l *killLoad) regLimit() int64 {
	if l.dead.Load() == 0 {
		return 10
	}
	return killRegistrations
}

func (l *killLoad) pick() int { return int(l.next.Add(1) % 3) }

// lost reports whether err is a connection error that the kill explains:
// after it (or while it happens), a request to the killed replica fails.
func (l *killLoad) lost(err error) bool {
	var op *net.OpError
	if l.dead.Load() == 0 {
		return false
	}
	// net/http's error for a pooled connection the dead replica's kernel
	// closed as a POST was sent on it is unexported: its text is all
	// there is to know it by.
	if errors.As(err, &op) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		strings.Contains(err.Error(), "server closed idle connection") {
		l.cuts.Add(1)
		return true
	}
	return false
}

// form posts v to path on replica r and decodes the JSON answer; err is
// set when no whole answer was read.
func (l *killLoad) form(ctx context.Context, r int, path string, v url.Values) (int, map[string]any, error) {
	req, _ := http.NewRequestWithContext(ctx, "POST", l.public+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := l.lb.on(r).Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	var m map[string]any
	json.Unmarshal(raw, &m)
	return resp.StatusCode, m, nil
}

// register registers a public client, on the next replica that answers.
func (l *killLoad) register(ctx context.Context, w int) (string, bool) {
	body := fmt.Sprintf(`{"client_name":"kill-%d","redirect_uris":["%s"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"],"response_types":["code"]}`, w, callback)
	for ctx.Err() == nil {
		r := l.pick()
		req, _ := http.NewRequestWithContext(ctx, "POST", l.public+"/register", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := l.lb.on(r).Do(req)
		var reg map[string]any
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&reg)
			resp.Body.Close()
		}
		if err != nil {
			if l.lost(err) {
				continue
			}
			l.t.Errorf("register on %c: %v", 'A'+r, err)
			return "", false
		}
		id, _ := reg["client_id"].(string)
		if resp.StatusCode != http.StatusCreated || id == "" {
			l.t.Errorf("register on %c: %d %v, want 201 with a client_id", 'A'+r, resp.StatusCode, reg)
			return "", false
		}
		l.mu.Lock()
		l.clients = append(l.clients, id)
		l.mu.Unlock()
		return id, true
	}
	return "", false
}

// pair checks a token response and records it in c.
func (l *killLoad) pair(c *killChain, what string, r, status int, m map[string]any) bool {
	at, _ := m["access_token"].(string)
	rt, _ := m["refresh_token"].(string)
	if status != 200 || m["token_type"] != "Bearer" || at == "" || rt == "" {
		l.t.Errorf("%s on %c: %d %v, want 200 with a Bearer access token and a refresh token", what, 'A'+r, status, m)
		return false
	}
	l.mu.Lock()
	c.access = append(c.access, at)
	c.refresh = append(c.refresh, rt)
	l.mu.Unlock()
	l.answers.Add(1)
	return true
}

// flow runs one authorization code flow with PKCE for clientID through
// the headless browser, its token request and up to three
// refreshes, each request on the next replica. A request the kill cut off
// is sent again to the next replica, as a client would: a code is then
// either redeemed there or found redeemed (its first redemption committed
// before the kill), and a refresh token presented again within the grace
// window (RT-1) gets its rotation's pair.
func (l *killLoad) flow(ctx context.Context, clientID string) {
	verifier := rand.Text() + rand.Text()
	sum := sha256.Sum256([]byte(verifier))
	state := rand.Text()
	authURL := l.public + "/authorize?" + url.Values{
		"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {callback},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
		"state": {state}, "resource": {l.public + "/mcp"},
	}.Encode()
	b := browser.New(user, password)
	b.Client.Transport = l.lb
	code, gotState, _, err := b.Authorize(ctx, authURL, callback)
	if err != nil {
		if !l.lost(err) {
			l.t.Errorf("authorization walk of %s: %v", clientID, err)
		}
		return // a walk the kill cut off: its client stays registered
	}
	if gotState != state {
		l.t.Errorf("authorization response state %q, want %q", gotState, state)
		return
	}
	c := &killChain{clientID: clientID}
	l.mu.Lock()
	l.chains = append(l.chains, c)
	l.mu.Unlock()
	cut := false
	for ctx.Err() == nil {
		r := l.pick()
		status, m, err := l.form(ctx, r, "/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"redirect_uri": {callback}, "client_id": {clientID}, "code_verifier": {verifier}, "resource": {l.public + "/mcp"}})
		if err != nil {
			if !l.lost(err) {
				l.t.Errorf("token on %c: %v", 'A'+r, err)
				return
			}
			// Refused: never sent. Anything else may have reached the
			// replica as it died.
			cut = cut || !errors.Is(err, syscall.ECONNREFUSED)
			continue
		}
		if cut && status == http.StatusBadRequest && m["error"] == "invalid_grant" {
			return // redeemed by the killed replica, whose answer was lost
		}
		if !l.pair(c, "token for "+clientID, r, status, m) {
			return
		}
		break
	}
	for i := 0; i < 3 && !l.stop.Load() && ctx.Err() == nil; {
		r := l.pick()
		status, m, err := l.form(ctx, r, "/token", url.Values{"grant_type": {"refresh_token"},
			"refresh_token": {c.refresh[len(c.refresh)-1]}, "client_id": {clientID}})
		if err != nil {
			if !l.lost(err) {
				l.t.Errorf("refresh on %c: %v", 'A'+r, err)
				return
			}
			continue
		}
		if !l.pair(c, "refresh for "+clientID, r, status, m) {
			return
		}
		i++
	}
}

// killRegistrations bounds the registrations of the load below the limit
// per address of 20 a minute, with room for one cut off by the kill.
const killRegistrations = 16

// kill -9 of one of three replicas on one PostgreSQL database while eight
// workers register clients, walk the authorization code flow with PKCE, redeem
// their codes and refresh, every request on the next replica in turn. The
// load goes on through the two others for a while, then stops. Through the
// survivors: every client registered with 201 is known (a made-up code is
// refused as a code, not the client), every access token answered opens an
// MCP session (a rotation does not revoke its predecessor's access token),
// and the newest refresh token of every chain refreshes (SEC-50, SEC-80).
func TestBinaryKillReplicaUnderLoad(t *testing.T) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	server := mcp.NewServer(&mcp.Implementation{Name: "upstream", Version: "1"}, nil)
	up := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil))
	defer up.Close()
	procs, addrs, public := startThreeReplicas(t, up.URL+"/mcp")
	const A, B, C = 0, 1, 2
	lb := newReplicaRouter(addrs)
	defer lb.close()
	l := &killLoad{t: t, lb: lb, public: public}
	lb.pick = func(*http.Request) int { return l.pick() }
	stderr := func() string {
		return fmt.Sprintf("A: %s\nB: %s\nC: %s", procs[A].Stderr(), procs[B].Stderr(), procs[C].Stderr())
	}

	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			// A new client every other flow, as long as the registration
			// limit per address (20 a minute, across replicas) allows,
			// keeping most of the room for after the kill.
			clientID := ""
			for n := 0; !l.stop.Load() && ctx.Err() == nil; n++ {
				if clientID == "" || n%2 == 0 && l.regs.Load() < l.regLimit() {
					l.regs.Add(1)
					id, ok := l.register(ctx, w)
					if !ok {
						return
					}
					clientID = id
				}
				l.flow(ctx, clientID)
			}
		})
	}
	// The kill and the stop come after a count of answers, not a time, which
	// a slow machine might spend before the load gets going.
	waitAnswers := func(n int64, what string) {
		deadline := time.Now().Add(40 * time.Second)
		for l.answers.Load() < n {
			if time.Now().After(deadline) || t.Failed() {
				l.stop.Store(true)
				wg.Wait()
				t.Fatalf("%d token responses read in 40 s %s, want %d\n%s", l.answers.Load(), what, n, stderr())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitAnswers(60, "before the kill")
	l.dead.Store(B + 1)
	if err := procs[B].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-procs[B].done
	atKill := l.answers.Load()
	l.mu.Lock()
	clientsAtKill := len(l.clients)
	l.mu.Unlock()
	waitAnswers(atKill+60, "through A and C after the kill of B")
	l.stop.Store(true)
	wg.Wait()
	if t.Failed() {
		t.Fatalf("the load failed\n%s", stderr())
	}

	survivors := [2]int{A, C}
	for i, id := range l.clients {
		r := survivors[i%2]
		status, m, err := l.form(ctx, r, "/token", url.Values{"grant_type": {"authorization_code"}, "code": {"kill-probe"},
			"redirect_uri": {callback}, "client_id": {id}, "code_verifier": {rand.Text() + rand.Text()}})
		if err != nil || status != http.StatusBadRequest || m["error"] != "invalid_grant" {
			t.Errorf("SEC-50: client %s, registered with 201, at /token on %c after the kill: %d %v %v, want 400 invalid_grant", id, 'A'+r, status, m, err)
		}
	}
	tokens, refreshes := 0, 0
	for i, c := range l.chains {
		for j, at := range c.access {
			r := survivors[(i+j)%2]
			status, session, m := rpc(t, lb.on(r), public+"/mcp", at, "",
				`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"kill","version":"1"}}}`)
			if status != 200 || session == "" || m["result"] == nil {
				t.Errorf("SEC-50: access token %d of %s's chain, answered before the load stopped, at /mcp on %c: %d %v, want 200 with a session", j, c.clientID, 'A'+r, status, m)
			}
			tokens++
		}
		if len(c.refresh) == 0 {
			continue
		}
		r := survivors[i%2]
		status, m, err := l.form(ctx, r, "/token", url.Values{"grant_type": {"refresh_token"},
			"refresh_token": {c.refresh[len(c.refresh)-1]}, "client_id": {c.clientID}})
		if err != nil || status != 200 || m["access_token"] == nil || m["refresh_token"] == nil {
			t.Errorf("SEC-50: the newest refresh token of %s's chain (%d answers), on %c after the kill: %d %v %v, want 200 with a new pair", c.clientID, len(c.refresh), 'A'+r, status, m, err)
		}
		refreshes++
	}
	if len(l.clients) == 0 || tokens == 0 || refreshes == 0 {
		t.Fatalf("nothing to check: %d clients, %d access tokens, %d chains", len(l.clients), tokens, refreshes)
	}
	t.Logf("%d clients (%d before the kill), %d chains, %d access tokens checked (%d token responses before the kill, %d in all), %d requests lost to the kill, %v",
		len(l.clients), clientsAtKill, refreshes, tokens, atKill, l.answers.Load(), l.cuts.Load(), time.Since(start).Round(time.Millisecond))
	if len(l.clients) == clientsAtKill {
		t.Errorf("no client registered through A and C after the kill")
	}
	if t.Failed() {
		t.Logf("%s", stderr())
	}
	lb.close()
	procs[A].stop(t)
	procs[C].stop(t)
}
