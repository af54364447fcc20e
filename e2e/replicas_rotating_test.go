package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/mcpgate/mcpgate/internal/pgtest"
)

// replicaRouter sends every request, whatever its URL's host, to one of
// several replicas (chosen by pick), as a load balancer behind one public
// URL does: the Host header stays the public one. It records where each
// request went.
type replicaRouter struct {
	addrs [3]string
	pick  func(*http.Request) int
	tr    [3]*http.Transport
	mu    sync.Mutex
	log   []string // "A GET /authorize", …
}

func newReplicaRouter(addrs [3]string) *replicaRouter {
	r := &replicaRouter{addrs: addrs}
	for i := range r.tr {
		addr := addrs[i]
		r.tr[i] = &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}}
	}
	return r
}

func (r *replicaRouter) RoundTrip(req *http.Request) (*http.Response, error) {
	i := r.pick(req)
	r.mu.Lock()
	r.log = append(r.log, fmt.Sprintf("%c %s %s", 'A'+i, req.Method, req.URL.Path))
	r.mu.Unlock()
	return r.tr[i].RoundTrip(req)
}

// on returns a client whose requests all go to replica i.
func (r *replicaRouter) on(i int) *http.Client {
	return &http.Client{Transport: r.tr[i], CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (r *replicaRouter) close() {
	for _, t := range r.tr {
		t.CloseIdleConnections()
	}
}

// postForm posts form to u through c and decodes the JSON answer.
func postForm(t *testing.T, c *http.Client, u string, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil && resp.StatusCode != 200 {
		t.Logf("POST %s: %d, body not JSON: %v", u, resp.StatusCode, err)
	}
	return resp.StatusCode, m
}

// rpc sends one JSON-RPC message to the MCP endpoint through c and returns
// the status, the Mcp-Session-Id answered and the JSON-RPC response (from
// a JSON body or the first SSE data event).
func rpc(t *testing.T, c *http.Client, endpoint, token, session, body string) (int, string, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", endpoint, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
		req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
	}
	resp, err := c.Do(req)
	if err != nil { // Errorf, not Fatalf: the revocation polls call it from goroutines
		t.Errorf("MCP %s: %v", body, err)
		return 0, "", nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var m map[string]any
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		sc := bufio.NewScanner(bytes.NewReader(raw))
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				json.Unmarshal([]byte(data), &m)
				break
			}
		}
	} else if len(raw) > 0 {
		json.Unmarshal(raw, &m)
	}
	return resp.StatusCode, resp.Header.Get("Mcp-Session-Id"), m
}

// Three `mcpgate serve` processes on one PostgreSQL database, one secret
// key file and one public URL, in front of one upstream go-sdk MCP server,
// and a client whose requests rotate across them as a round-robin load
// balancer would send them: register on A, authorize on B, consent and
// login on C, token on A, refresh on B, initialize on A and tools/call on B
// and C in the session A opened (SESS-3), revoke on C and refused on A and
// B within 1 s (SEC-80).
func TestBinaryThreeReplicasRotatingFlow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	server := mcp.NewServer(&mcp.Implementation{Name: "upstream", Version: "1"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "whoami"}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		text := req.Extra.Header.Get("X-Forwarded-User") + " " + req.Session.ID()
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}}, nil, nil
	})
	up := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil))
	defer up.Close()

	procs, addrs, public := startThreeReplicas(t, up.URL+"/mcp")
	const A, B, C = 0, 1, 2
	lb := newReplicaRouter(addrs)
	defer lb.close()
	stderr := func() string {
		return fmt.Sprintf("A: %s\nB: %s\nC: %s", procs[A].Stderr(), procs[B].Stderr(), procs[C].Stderr())
	}

	// Register on A.
	regBody := `{"client_name":"rotating","redirect_uris":["` + callback + `"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"],"response_types":["code"]}`
	resp, err := lb.on(A).Post(public+"/register", "application/json", strings.NewReader(regBody))
	if err != nil {
		t.Fatal(err)
	}
	var reg map[string]any
	json.NewDecoder(resp.Body).Decode(&reg)
	resp.Body.Close()
	clientID, _ := reg["client_id"].(string)
	if resp.StatusCode != http.StatusCreated || clientID == "" {
		t.Fatalf("register on A: %d %v, want 201 with a client_id\n%s", resp.StatusCode, reg, stderr())
	}

	// Authorize on B; every later page (consent, login) on C.
	verifier := rand.Text() + rand.Text()
	sum := sha256.Sum256([]byte(verifier))
	state := rand.Text()
	authURL := public + "/authorize?" + url.Values{
		"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {callback},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
		"state": {state}, "resource": {public + "/mcp"},
	}.Encode()
	first := true
	lb.pick = func(*http.Request) int {
		if first {
			first = false
			return B
		}
		return C
	}
	b := browser.New(user, password)
	b.Client.Transport = lb
	code, gotState, iss, err := b.Authorize(ctx, authURL, callback)
	if err != nil {
		t.Fatalf("authorize on B, consent and login on C: %v\nrequests: %v\n%s", err, lb.log, stderr())
	}
	if gotState != state || iss != public {
		t.Fatalf("authorization response: state %q iss %q, want %q and %q", gotState, iss, state, public)
	}
	walk := strings.Join(lb.log, ", ")
	if !strings.HasPrefix(walk, "B GET /authorize, C ") || !strings.Contains(walk, "C POST /consent") || !strings.Contains(walk, "C POST /login/") {
		t.Fatalf("the walk went %s; want /authorize on B and the consent and login posted to C", walk)
	}
	t.Logf("authorization walk: %s", walk)

	// Token on A, refresh on B.
	status, tok := postForm(t, lb.on(A), public+"/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {callback}, "client_id": {clientID}, "code_verifier": {verifier}, "resource": {public + "/mcp"}})
	if status != 200 || tok["token_type"] != "Bearer" || tok["access_token"] == nil || tok["refresh_token"] == nil {
		t.Fatalf("token on A: %d %v, want 200 with a Bearer access token and a refresh token\n%s", status, tok, stderr())
	}
	status, ref := postForm(t, lb.on(B), public+"/token", url.Values{"grant_type": {"refresh_token"},
		"refresh_token": {tok["refresh_token"].(string)}, "client_id": {clientID}})
	if status != 200 || ref["token_type"] != "Bearer" || ref["access_token"] == nil || ref["refresh_token"] == nil ||
		ref["refresh_token"] == tok["refresh_token"] || ref["access_token"] == tok["access_token"] {
		t.Fatalf("refresh on B: %d %v, want 200 with a new access token and a new refresh token\n%s", status, ref, stderr())
	}
	at := ref["access_token"].(string)

	// MCP: initialize on A, the calls on B and C in that session.
	endpoint := public + "/mcp"
	status, session, init := rpc(t, lb.on(A), endpoint, at, "",
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"rotating","version":"1"}}}`)
	if status != 200 || session == "" || init["result"] == nil {
		t.Fatalf("initialize on A: %d session %q %v, want 200, a session id and a result\n%s", status, session, init, stderr())
	}
	if status, _, _ := rpc(t, lb.on(A), endpoint, at, session, `{"jsonrpc":"2.0","method":"notifications/initialized"}`); status != http.StatusAccepted {
		t.Fatalf("notifications/initialized on A: %d, want 202\n%s", status, stderr())
	}
	for i, r := range []int{B, C} {
		status, _, m := rpc(t, lb.on(r), endpoint, at, session, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`, 2+i))
		var res struct {
			Result struct {
				Content []struct{ Text string } `json:"content"`
				IsError bool                    `json:"isError"`
			} `json:"result"`
		}
		raw, _ := json.Marshal(m)
		json.Unmarshal(raw, &res)
		want := "local:alice " + session
		if status != 200 || res.Result.IsError || len(res.Result.Content) != 1 || res.Result.Content[0].Text != want {
			t.Fatalf("tools/call whoami on %c in A's session: %d %v, want 200 and the text %q\n%s", 'A'+r, status, m, want, stderr())
		}
	}

	// Revoke on C; refused on A and B within 1 s.
	revokedAt := time.Now()
	status, _ = postForm(t, lb.on(C), public+"/revoke", url.Values{"token": {at}, "client_id": {clientID}})
	if status != 200 {
		t.Fatalf("revoke on C: %d, want 200", status)
	}
	if status, _, _ := rpc(t, lb.on(C), endpoint, at, session, `{"jsonrpc":"2.0","id":9,"method":"tools/list"}`); status != http.StatusUnauthorized {
		t.Fatalf("C takes the token it revoked: %d, want 401", status)
	}
	var wg sync.WaitGroup
	var delays [2]time.Duration
	var nextID atomic.Int64
	nextID.Store(100)
	for i, r := range []int{A, B} {
		wg.Go(func() {
			for {
				delays[i] = time.Since(revokedAt)
				if delays[i] > time.Second {
					t.Errorf("SEC-80: replica %c still takes the token %v after it was revoked on C, want refused within 1s", 'A'+r, delays[i].Round(time.Millisecond))
					return
				}
				// An id of its own: two requests in flight with one id in
				// one session would collide at the upstream.
				status, _, _ := rpc(t, lb.on(r), endpoint, at, session, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/list"}`, nextID.Add(1)))
				if status == http.StatusUnauthorized || status == 0 {
					return
				}
				if status != 200 {
					t.Errorf("replica %c before the revocation reached it: %d, want 200 or 401\n%s", 'A'+r, status, stderr())
					return
				}
				time.Sleep(5 * time.Millisecond) // the poll's pace
			}
		})
	}
	wg.Wait()
	t.Logf("revoked on C, refused by A after %v and by B after %v", delays[0], delays[1])
	lb.close()
	for _, p := range procs {
		p.stop(t)
	}
}

// startThreeReplicas starts three mcpgate serve processes on one fresh
// PostgreSQL database, sharing a secret key file made by `mcpgate keys
// new-secret`, the public URL of the third, the local user and upstream:
// the processes, their listen addresses and the public URL.
func startThreeReplicas(t *testing.T, upstream string) (procs [3]*process, addrs [3]string, public string) {
	t.Helper()
	keyFile := filepath.Join(t.TempDir(), "secret.key")
	key, err := exec.Command(binPath, "keys", "new-secret").Output()
	if err != nil {
		t.Fatalf("mcpgate keys new-secret: %v", err)
	}
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	opts := binaryOpts{env: []string{"MCPGATE_STORE=" + pgtest.Start(t)}}
	ports := [3]int{freePort(t), freePort(t), freePort(t)}
	public = fmt.Sprintf("http://127.0.0.1:%d", ports[2])
	for i := range procs {
		addrs[i] = fmt.Sprintf("127.0.0.1:%d", ports[i])
		procs[i] = startBinaryWith(t, ports[i], opts, "--data-dir", t.TempDir(), "--local-user", user+":"+password,
			"--public-url", public, "--secret-key-file", keyFile, "--upstream", upstream)
	}
	return procs, addrs, public
}
