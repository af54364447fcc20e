package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// identitySeen records the identity tokens the upstream received.
type identitySeen struct {
	mu     sync.Mutex
	tokens []string
}

func (s *identitySeen) add(tok string) { s.mu.Lock(); s.tokens = append(s.tokens, tok); s.mu.Unlock() }
func (s *identitySeen) last() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.tokens) == 0 {
		return ""
	}
	return s.tokens[len(s.tokens)-1]
}

// The binary with a config file: an upstream with a tool policy, identity
// tokens and an audit log. bob may not call delete_notes and does not see
// it listed; alice may. The upstream checks the identity token with the
// gateway's JWKS. Every tools/call leaves one audit line without the
// arguments. Then a client holding an event stream open does not hold up
// shutdown.
func TestBinaryToolPolicyIdentityTokenAudit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var idTokens identitySeen
	ran := make(chan string, 16)
	server := mcp.NewServer(&mcp.Implementation{Name: "notes", Version: "1"}, nil)
	type textArg struct {
		Text string `json:"text"`
	}
	for _, name := range []string{"read_notes", "delete_notes", "fail"} {
		mcp.AddTool(server, &mcp.Tool{Name: name}, func(ctx context.Context, req *mcp.CallToolRequest, in textArg) (*mcp.CallToolResult, any, error) {
			ran <- name
			idTokens.add(req.Extra.Header.Get("X-Mcpgate-Identity"))
			return &mcp.CallToolResult{IsError: name == "fail", Content: []mcp.Content{&mcp.TextContent{Text: name + " done"}}}, nil, nil
		})
	}
	up := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil))
	defer up.Close()

	dir := t.TempDir()
	auditPath := filepath.Join(dir, "audit.jsonl")
	cfg := `local_users: ["alice:` + password + `", "bob:` + password + `"]
upstream: ` + up.URL + `/mcp
identity_token: true
audit_log: ` + auditPath + `
tool_policy:
  rules:
    - deny: ["delete_*"]
      users: ["local:bob"]
`
	cfgPath := filepath.Join(dir, "mcpgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	p := startBinary(t, port, "--data-dir", filepath.Join(dir, "data"), "--config", cfgPath)

	var aliceHandler *auth.AuthorizationCodeHandler
	connect := func(name string) *mcp.ClientSession {
		h, _ := oauthClientAs(t, name, password)
		if name == "alice" {
			aliceHandler = h
		}
		client := mcp.NewClient(&mcp.Implementation{Name: "e2e-" + name, Version: "1"}, nil)
		sess, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: p.base + "/mcp", OAuthHandler: h}, nil)
		if err != nil {
			t.Fatalf("%s: connect: %v\n%s", name, err, p.Stderr())
		}
		return sess
	}
	toolNames := func(sess *mcp.ClientSession) string {
		res, err := sess.ListTools(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, tl := range res.Tools {
			names = append(names, tl.Name)
		}
		return strings.Join(names, ",")
	}

	bob := connect("bob")
	if got := toolNames(bob); got != "fail,read_notes" {
		t.Fatalf("bob's tools/list = %s, want fail,read_notes (delete_notes filtered)", got)
	}
	if _, err := bob.CallTool(ctx, &mcp.CallToolParams{Name: "delete_notes", Arguments: map[string]any{"text": "secret-argument"}}); err == nil || !strings.Contains(err.Error(), "not allowed") {
		t.Fatalf("bob's delete_notes: err = %v, want a JSON-RPC error saying not allowed", err)
	}
	select {
	case name := <-ran:
		t.Fatalf("the upstream ran %s for a denied call, want the call stopped at the gateway", name)
	default:
	}
	if res, err := bob.CallTool(ctx, &mcp.CallToolParams{Name: "read_notes", Arguments: map[string]any{"text": "secret-argument"}}); err != nil || res.IsError {
		t.Fatalf("bob's read_notes: %v %+v, want a result", err, res)
	}
	<-ran
	bobToken := idTokens.last()

	alice := connect("alice")
	if got := toolNames(alice); got != "delete_notes,fail,read_notes" {
		t.Fatalf("alice's tools/list = %s, want delete_notes,fail,read_notes", got)
	}
	if res, err := alice.CallTool(ctx, &mcp.CallToolParams{Name: "delete_notes", Arguments: map[string]any{"text": "x"}}); err != nil || res.IsError {
		t.Fatalf("alice's delete_notes: %v %+v, want a result", err, res)
	}
	<-ran
	if res, err := alice.CallTool(ctx, &mcp.CallToolParams{Name: "fail", Arguments: map[string]any{"text": "x"}}); err != nil || !res.IsError {
		t.Fatalf("alice's fail: %v %+v, want a tool error (isError)", err, res)
	}
	<-ran

	// The upstream can check who called with the gateway's JWKS.
	claims := verifyIdentityToken(t, p.base, bobToken)
	if claims["sub"] != "local:bob" || claims["aud"] != up.URL+"/mcp" || claims["iss"] != p.base {
		t.Fatalf("identity token claims %v; want sub local:bob, aud %s/mcp, iss %s", claims, up.URL, p.base)
	}

	// TRANS-2 through the binary: a Mcp-Name that does not match the body.
	ts, err := aliceHandler.TokenSource(ctx)
	if err != nil {
		t.Fatal(err)
	}
	oauthTok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	tok := oauthTok.AccessToken
	req, _ := http.NewRequest("POST", p.base+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"delete_notes","arguments":{"text":"x"}}}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Method", "tools/call")
	req.Header.Set("Mcp-Name", "read_notes")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body), "-32020") {
		t.Fatalf("TRANS-2 mismatch: %d %s, want 400 with -32020", resp.StatusCode, body)
	}

	// One audit line per tools/call, outcomes as they happened, and no
	// argument or token in the file.
	bob.Close()
	// An event is written when the gateway's handler returns, which may be
	// just after the client has its answer.
	var events []map[string]any
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if events = readAudit(t, auditPath); len(events) >= 4 || time.Now().After(deadline) {
			break
		}
	}
	// Each event is written as its handler returns, after the client has
	// its answer: a client's next call may be logged first, so the events
	// are compared in sorted order.
	want := []string{"local:alice delete_notes ok", "local:alice fail tool_error", "local:bob delete_notes denied", "local:bob read_notes ok"}
	if len(events) != len(want) {
		t.Fatalf("audit has %d events, want %d: %v", len(events), len(want), events)
	}
	var got []string
	for i, e := range events {
		got = append(got, e["user"].(string)+" "+e["tool"].(string)+" "+e["outcome"].(string))
		if e["resource"] != "/mcp" || e["client"] == "" {
			t.Errorf("audit event %d: %v, want resource /mcp and a client", i, e)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("audit events (sorted) = %q, want %q", got, want)
	}
	raw, _ := os.ReadFile(auditPath)
	if strings.Contains(string(raw), "secret-argument") || strings.Contains(string(raw), tok) {
		t.Fatal("the audit log holds a tool argument or a token, want neither")
	}

	// Graceful shutdown ends an open event stream instead of waiting for
	// its client (the shutdown deadline is 15 s): alice's session still
	// holds the GET stream the go-sdk client opens after initialize.
	defer alice.Close()
	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, p.Stderr())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("mcpgate did not stop within 30 s of SIGTERM")
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("shutdown took %v: the open event stream held it up, want under 10 s", took)
	}
}

// verifyIdentityToken checks tok with the gateway's JWKS as a backend
// would, and returns its claims.
func verifyIdentityToken(t *testing.T, base, tok string) map[string]any {
	t.Helper()
	resp, err := http.Get(base + "/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatalf("identity token %q: %v", tok, err)
	}
	h := jws.Signatures[0].Protected
	if h.ExtraHeaders[jose.HeaderType] != "mcpgate-identity+jwt" {
		t.Fatalf("typ %v, want mcpgate-identity+jwt", h.ExtraHeaders[jose.HeaderType])
	}
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q is not in the JWKS", h.KeyID)
	}
	payload, err := jws.Verify(keys[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	json.Unmarshal(payload, &claims)
	if exp, _ := claims["exp"].(float64); time.Until(time.Unix(int64(exp), 0)) > 61*time.Second || time.Until(time.Unix(int64(exp), 0)) < 0 {
		t.Fatalf("exp %v is not within the next minute", claims["exp"])
	}
	return claims
}

func readAudit(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("audit line %q: %v, want a JSON object per line", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}
