package e2e

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/store/memory"
)

// nodeProc is a Node process of a real-client test, in its own process
// group: a failing test, or its context's end, kills the whole group (the
// process and whatever it started, such as a browser opener).
type nodeProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *safeBuffer
	stderr *safeBuffer
	exited chan struct{} // closed when Wait returned; err is then set
	err    error
}

// startNode runs node with args in dir, with env added to the test's
// environment (later entries win), bounded by ctx.
func startNode(t *testing.T, ctx context.Context, node, dir string, env []string, args ...string) *nodeProc {
	t.Helper()
	p := &nodeProc{stdout: &safeBuffer{}, stderr: &safeBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, node, args...)
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd.Cancel = func() error { return syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL) }
	p.cmd.WaitDelay = 5 * time.Second
	stdin, err := p.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.stdin = stdin
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", node, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.exited
		}
		if t.Failed() {
			t.Logf("%s stdout:\n%s\n%s stderr:\n%s", filepath.Base(args[0]), p.stdout, filepath.Base(args[0]), p.stderr)
		}
	})
	return p
}

// waitFor polls out until re matches, and returns the submatches; the
// process's exit or ctx's end first fails the test.
func (p *nodeProc) waitFor(t *testing.T, ctx context.Context, out *safeBuffer, re *regexp.Regexp) []string {
	t.Helper()
	for {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m
		}
		select {
		case <-p.exited:
			if m := re.FindStringSubmatch(out.String()); m != nil {
				return m
			}
			t.Fatalf("%s exited (%v) before printing %s", p.cmd.Path, p.err, re)
		case <-ctx.Done():
			t.Fatalf("%s printed no %s: %v", p.cmd.Path, re, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// wait waits for the process to exit with status 0.
func (p *nodeProc) wait(t *testing.T, ctx context.Context) {
	t.Helper()
	select {
	case <-p.exited:
	case <-ctx.Done():
		t.Fatalf("%s did not exit: %v", p.cmd.Path, ctx.Err())
	}
	if p.err != nil {
		t.Fatalf("%s: %v", p.cmd.Path, p.err)
	}
}

// whoamiOutput is the structured result of the demo server's whoami tool.
type whoamiOutput struct {
	User     identity.User `json:"user"`
	ClientID string        `json:"client_id"`
	Scopes   []string      `json:"scopes"`
	Resource string        `json:"resource"`
}

// tsResult is what e2e/testdata/tsclient.mjs prints after "RESULT ".
type tsResult struct {
	Mode                 string            `json:"mode"`
	ClientID             string            `json:"client_id"`
	AuthorizationRequest map[string]string `json:"authorization_request"`
	Iss                  string            `json:"iss"`
	TokenType            string            `json:"token_type"`
	Scope                string            `json:"scope"`
	ExpiresIn            float64           `json:"expires_in"`
	RefreshTokenLength   int               `json:"refresh_token_length"`
	Whoami               whoamiOutput      `json:"whoami"`
	Echo                 string            `json:"echo"`
	Refresh              struct {
		Outcome            string       `json:"outcome"`
		Rotated            bool         `json:"rotated"`
		NewAccessToken     bool         `json:"new_access_token"`
		RefreshTokenLength int          `json:"refresh_token_length"`
		Whoami             whoamiOutput `json:"whoami"`
	} `json:"refresh"`
	ClientAuth []tsClientAuth `json:"client_auth"`
	StepUp     *struct {
		ScopeBefore    string `json:"scope_before"`
		ScopeRequested string `json:"scope_requested"`
		ScopeAfter     string `json:"scope_after"`
	} `json:"step_up"`
}

// tsClientAuth is one token request that tsclient.mjs authenticated with
// its private key: the parameter names it sent, and its assertion's header
// and claims.
type tsClientAuth struct {
	Endpoint  string         `json:"endpoint"`
	GrantType string         `json:"grant_type"`
	Params    []string       `json:"params"`
	Header    map[string]any `json:"header"`
	Claims    struct {
		Iss string  `json:"iss"`
		Sub string  `json:"sub"`
		Aud string  `json:"aud"`
		Jti string  `json:"jti"`
		Exp float64 `json:"exp"`
		Iat float64 `json:"iat"`
	} `json:"claims"`
}

var (
	tsAuthURL = regexp.MustCompile(`(?m)^AUTH_URL (\S+)$`)
	tsResultL = regexp.MustCompile(`(?m)^RESULT (.+)$`)
)

// runTSClient runs e2e/testdata/tsclient.mjs (a real @modelcontextprotocol/sdk
// client) with args, as the browser: when it prints its authorization URL,
// the headless form follower walks the consent and login pages up to
// redirect, and the script reads that final redirect on stdin. It returns
// the script's result.
func runTSClient(t *testing.T, ctx context.Context, redirect string, args ...string) tsResult {
	t.Helper()
	return runTSClientWith(t, ctx, browser.New(user, password), redirect, args...)
}

// runTSClientWith is runTSClient with b as the browser: b walks every page
// between the authorization URL and redirect (an OpenID provider's login
// form included).
func runTSClientWith(t *testing.T, ctx context.Context, b *browser.Browser, redirect string, args ...string) tsResult {
	t.Helper()
	node, sdk := node22(t), tssdkDir(t)
	script, err := os.ReadFile(filepath.Join("testdata", "tsclient.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	// Bare imports resolve from the nearest node_modules up the tree: run the
	// script from a directory inside the SDK's tool directory.
	dir, err := os.MkdirTemp(sdk, "e2e-run-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "tsclient.mjs")
	if err := os.WriteFile(path, script, 0o644); err != nil {
		t.Fatal(err)
	}
	if v, err := os.ReadFile(filepath.Join(sdk, "node_modules", "@modelcontextprotocol", "sdk", "package.json")); err == nil {
		var pkg struct{ Version string }
		json.Unmarshal(v, &pkg)
		t.Logf("@modelcontextprotocol/sdk %s on %s", pkg.Version, node)
	}

	p := startNode(t, ctx, node, dir, nil, append([]string{path}, args...)...)
	p.waitFor(t, ctx, p.stdout, tsAuthURL)
	// Every authorization the client asks for, until it exits: a step-up
	// is a second one.
walk:
	for walked := 0; ; {
		if urls := tsAuthURL.FindAllStringSubmatch(p.stdout.String(), -1); walked < len(urls) {
			final, err := b.Walk(ctx, urls[walked][1], redirect)
			if err != nil {
				t.Fatalf("walking %s: %v", urls[walked][1], err)
			}
			if _, err := fmt.Fprintln(p.stdin, final.String()); err != nil {
				t.Fatalf("handing the callback to the client: %v", err)
			}
			walked++
			continue
		}
		select {
		case <-p.exited:
			break walk
		case <-ctx.Done():
			t.Fatalf("%s did not exit: %v", p.cmd.Path, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	p.stdin.Close()
	p.wait(t, ctx)
	m := tsResultL.FindStringSubmatch(p.stdout.String())
	if m == nil {
		t.Fatalf("no RESULT line:\n%s", p.stdout)
	}
	var r tsResult
	if err := json.Unmarshal([]byte(m[1]), &r); err != nil {
		t.Fatalf("RESULT: %v\n%s", err, m[1])
	}
	return r
}

// checkTSResult checks what every TypeScript SDK run must show: the user
// and client whoami names (before and after the refresh), the resource,
// the echo, iss (RFC 9207; the SDK does not check it), a refresh token and
// its rotation.
func checkTSResult(t *testing.T, r tsResult, base, clientID string) {
	t.Helper()
	for _, w := range []whoamiOutput{r.Whoami, r.Refresh.Whoami} {
		if w.User.ID != "local:alice" || w.User.Username != user {
			t.Errorf("whoami: %+v, want local:alice", w)
		}
	}
	checkTSFlow(t, r, base, clientID)
}

// checkTSFlow is checkTSResult without the user: whoami's client and
// resource (before and after the refresh), the authorization request, iss,
// the echo, a refresh token and its rotation.
func checkTSFlow(t *testing.T, r tsResult, base, clientID string) {
	t.Helper()
	for _, w := range []whoamiOutput{r.Whoami, r.Refresh.Whoami} {
		if w.ClientID != clientID || w.Resource != base+"/mcp" {
			t.Errorf("whoami: %+v, want client %s, resource %s/mcp", w, clientID, base)
		}
	}
	if r.ClientID != clientID {
		t.Errorf("the SDK's client_id is %q, want %q", r.ClientID, clientID)
	}
	if r.AuthorizationRequest["client_id"] != clientID || r.AuthorizationRequest["code_challenge_method"] != "S256" ||
		r.AuthorizationRequest["resource"] != base+"/mcp" {
		t.Errorf("authorization request: %v; want client_id %s, S256 and resource %s/mcp", r.AuthorizationRequest, clientID, base)
	}
	if r.Iss != base {
		t.Errorf("iss %q, want %q", r.Iss, base)
	}
	if r.Echo != "hello from the TypeScript SDK" {
		t.Errorf("echo: %q, want %q", r.Echo, "hello from the TypeScript SDK")
	}
	if !strings.EqualFold(r.TokenType, "bearer") || r.RefreshTokenLength == 0 {
		t.Errorf("tokens: type %q, refresh token of %d bytes; want bearer and a refresh token", r.TokenType, r.RefreshTokenLength)
	}
	if r.Refresh.Outcome != "AUTHORIZED" || !r.Refresh.Rotated || !r.Refresh.NewAccessToken {
		t.Errorf("refresh through the SDK: %+v, want AUTHORIZED, the refresh token rotated and a new access token", r.Refresh)
	}
	t.Logf("TypeScript SDK (%s): client_id %s; authorization request %v; token_type %s, scope %q, expires_in %v, refresh token of %d bytes (rotated on refresh: %d bytes)",
		r.Mode, r.ClientID, r.AuthorizationRequest, r.TokenType, r.Scope, r.ExpiresIn, r.RefreshTokenLength, r.Refresh.RefreshTokenLength)
}

// The MCP TypeScript SDK's client (@modelcontextprotocol/sdk, pinned, on
// Node 22) through the whole flow with dynamic client registration: it
// discovers from the 401, registers a public native client, authorizes
// with PKCE S256 and resource (the login and consent walked headlessly),
// trades the code, calls whoami and echo, and refreshes (rotation).
func TestTypeScriptSDK_DCR(t *testing.T) {
	begin := time.Now()
	defer func() { t.Logf("TestTypeScriptSDK_DCR took %v", time.Since(begin).Round(time.Millisecond)) }()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv := realClientGateway(t, ctx, nil)
	cb := fmt.Sprintf("http://127.0.0.1:%d/callback", freePort(t))

	r := runTSClient(t, ctx, cb, "dcr", srv.URL+"/mcp", cb)
	if r.ClientID == "" || strings.HasPrefix(r.ClientID, "https://") {
		t.Fatalf("DCR client_id %q, want a registered (non-URL) client_id", r.ClientID)
	}
	checkTSResult(t, r, srv.URL, r.ClientID)
}

// SCOPE-1: the MCP TypeScript SDK's client steps up. The tool policy
// allows echo only with mcp:write, which the resource grants on request:
// the SDK's echo gets 403 insufficient_scope naming it, the SDK authorizes
// again for the challenge's scope (the person approves the wider access),
// and its echo then goes through with the wider token. The client keeps
// no refresh token: the SDK would refresh instead, keeping the scope, and
// give up (see tsclient.mjs).
func TestTypeScriptSDK_StepUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv := startGateway(t, ctx, mcpgate.Config{Store: memory.New(), Resources: []mcpgate.Resource{{
		Path: "/mcp", Scopes: []string{"mcp"}, OptionalScopes: []string{"mcp:write"},
		ToolPolicy: &mcpgate.ToolPolicy{Default: "deny", Rules: []mcpgate.ToolRule{
			{Allow: []string{"whoami"}},
			{Allow: []string{"echo"}, Scopes: []string{"mcp:write"}},
		}},
	}}})
	cb := fmt.Sprintf("http://127.0.0.1:%d/callback", freePort(t))

	r := runTSClient(t, ctx, cb, "stepup", srv.URL+"/mcp", cb)
	if r.Whoami.User.ID != "local:alice" || r.Whoami.ClientID != r.ClientID || r.Echo != "hello from the TypeScript SDK" {
		t.Errorf("whoami %+v, echo %q; want local:alice through client %s, and the echo", r.Whoami, r.Echo, r.ClientID)
	}
	if r.StepUp == nil || r.StepUp.ScopeBefore != "mcp" || r.StepUp.ScopeRequested != "mcp mcp:write" || r.StepUp.ScopeAfter != "mcp mcp:write" {
		t.Errorf("step-up: %+v, want the token's scope mcp, then mcp mcp:write asked for and granted", r.StepUp)
	}
}

// The MCP TypeScript SDK's client with a Client ID Metadata Document: its
// clientMetadataUrl is an https URL on a local TLS host, which the gateway
// fetches (trusting the host's test CA, 127.0.0.1 allowed); the SDK skips
// registration because the metadata advertises CIMD, and whoami names the
// document URL as the client.
func TestTypeScriptSDK_CIMD(t *testing.T) {
	begin := time.Now()
	defer func() { t.Logf("TestTypeScriptSDK_CIMD took %v", time.Since(begin).Round(time.Millisecond)) }()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	docs := newCIMDHost(t)
	const docPath = "/oauth/tssdk-e2e-client.json"
	cb := fmt.Sprintf("http://127.0.0.1:%d/callback", freePort(t))
	clientID := docs.publish(docPath, "TypeScript SDK e2e (CIMD)", cb)
	srv := realClientGateway(t, ctx, docs)

	r := runTSClient(t, ctx, cb, "cimd", srv.URL+"/mcp", cb, clientID)
	checkTSResult(t, r, srv.URL, clientID)
	if docs.fetches(docPath) < 1 {
		t.Fatal("the gateway never fetched the metadata document, want at least one fetch (CIMD-2)")
	}
}

// The MCP TypeScript SDK's client as ChatGPT connects (SEC-128, CIMD-8): its
// metadata document says token_endpoint_auth_method private_key_jwt,
// token_endpoint_auth_signing_alg RS256 and a jwks_uri on the same https
// host, which serves the public half of an RSA-2048 key the test made. The
// SDK signs each token request with createPrivateKeyJwtAuth (no client_id,
// no kid, aud the issuer): the code exchange, the tools and the refresh go
// through, the gateway having fetched the key set once (CIMD-10, CIMD-6).
// Then the same client from Go (checkAssertionRefusals): without an
// assertion, with another key's, or with an assertion used before, it is
// refused invalid_client.
func TestTypeScriptSDK_SEC128_PrivateKeyJWT(t *testing.T) {
	begin := time.Now()
	defer func() {
		t.Logf("TestTypeScriptSDK_SEC128_PrivateKeyJWT took %v", time.Since(begin).Round(time.Millisecond))
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	docs := newCIMDHost(t)
	runPrivateKeyJWTClient(t, ctx, docs, "TypeScript SDK e2e (private_key_jwt)", func() string {
		return realClientGateway(t, ctx, docs).URL
	})
}

// The same client against the built binary, run as an operator would run
// it for a client like ChatGPT: mcpgate serve with a local account,
// trusting the document host's test CA; and the same attempts of a client
// without the key, refused by the binary (SEC-128, CIMD-8).
func TestBinaryTypeScriptSDK_SEC128_PrivateKeyJWT(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	docs := newCIMDHost(t)
	runPrivateKeyJWTClient(t, ctx, docs, "TypeScript SDK against the binary (private_key_jwt)", func() string {
		ca := filepath.Join(t.TempDir(), "docs-ca.pem")
		if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: docs.srv.Certificate().Raw}), 0o600); err != nil {
			t.Fatal(err)
		}
		return startBinary(t, freePort(t), "--data-dir", t.TempDir(), "--local-user", user+":"+password,
			"--cimd-allow-host", "127.0.0.1", "--cimd-test-ca-file", ca).base
	})
}

// runPrivateKeyJWTClient publishes on docs a private_key_jwt client named
// name with a key of its own, starts the gateway (start returns its base
// URL), and runs the SDK's client through the whole flow with it: the
// metadata, the run, the assertions it sent, and the key set fetched once
// for its two token requests, cached for its max-age as documents are;
// then, from Go, what a client without the key tries (checkAssertionRefusals).
func runPrivateKeyJWTClient(t *testing.T, ctx context.Context, docs *cimdHost, name string, start func() string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	const docPath, keysPath = "/oauth/tssdk-e2e-pkj.json", "/oauth/tssdk-e2e-pkj-jwks.json"
	cb := fmt.Sprintf("http://127.0.0.1:%d/callback", freePort(t))
	clientID := docs.publishPrivateKeyJWT(t, docPath, keysPath, name, &key.PublicKey, cb)
	base := start()
	checkPrivateKeyJWTMetadata(t, base)
	r := runTSClient(t, ctx, cb, "cimd", base+"/mcp", cb, clientID, writePKCS8(t, key))
	checkTSResult(t, r, base, clientID)
	checkTSAssertions(t, r.ClientAuth, base, clientID)
	if n := docs.fetches(keysPath); n != 1 {
		t.Fatalf("the gateway fetched the client's jwks_uri %d times for the SDK's code exchange and refresh, want once (SEC-128)", n)
	}
	checkAssertionRefusals(t, ctx, base, clientID, cb, key, func() int { return docs.fetches(keysPath) })
}

// checkAssertionRefusals walks a new authorization of the private_key_jwt
// client clientID at base, then posts to /token as the client would
// (SEC-128): the code without an assertion is refused invalid_client naming
// private_key_jwt, as it is with an assertion another key signed (two such,
// which make the gateway fetch the key set again at most once: the client
// may have rotated its keys, but made-up assertions do not make it fetch
// for each); the code is then still good with an assertion of key; the same
// assertion is refused with the refresh token it bought, which a new
// assertion then renews; and a new assertion for the revocation endpoint
// (aud its URL) revokes it.
func checkAssertionRefusals(t *testing.T, ctx context.Context, base, clientID, cb string, key *rsa.PrivateKey, keyFetches func() int) {
	t.Helper()
	verifier := tokens.NewSecret()
	q := url.Values{"client_id": {clientID}, "redirect_uri": {cb}, "response_type": {"code"}, "state": {"pkj"},
		"code_challenge": {tokens.S256(verifier)}, "code_challenge_method": {"S256"}, "resource": {base + "/mcp"}}
	code, _, _, err := browser.New(user, password).Authorize(ctx, base+"/authorize?"+q.Encode(), cb)
	if err != nil {
		t.Fatalf("authorizing the private_key_jwt client from Go: %v", err)
	}
	exchange := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {cb},
		"code_verifier": {verifier}, "resource": {base + "/mcp"}}
	post := func(path string, form url.Values) (int, string, map[string]any) {
		status, body := postForm(t, http.DefaultClient, base+path, form)
		return status, oauthOutcome(body), body
	}

	if status, got, body := post("/token", withForm(exchange, "client_id", clientID)); status != http.StatusUnauthorized ||
		body["error"] != "invalid_client" || !strings.Contains(got, "private_key_jwt") {
		t.Fatalf("code exchange with client_id and no assertion: %d %s, want 401 invalid_client naming private_key_jwt", status, got)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	before := keyFetches()
	for range 2 {
		if status, got, body := post("/token", withAssertion(exchange, signAssertion(t, other, clientID, base))); status != http.StatusUnauthorized ||
			body["error"] != "invalid_client" {
			t.Fatalf("code exchange with an assertion another key signed: %d %s, want 401 invalid_client", status, got)
		}
	}
	if n := keyFetches() - before; n > 1 {
		t.Fatalf("two assertions no key of the set verifies made the gateway fetch the set %d times, want at most once", n)
	}

	first := signAssertion(t, key, clientID, base)
	status, got, body := post("/token", withAssertion(exchange, first))
	refresh, _ := body["refresh_token"].(string)
	if status != http.StatusOK || refresh == "" {
		t.Fatalf("code exchange with the client's assertion, after the refusals: %d %s, want 200 and a refresh token", status, got)
	}
	renew := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}
	if status, got, body := post("/token", withAssertion(renew, first)); status != http.StatusUnauthorized ||
		body["error"] != "invalid_client" || !strings.Contains(got, "used before") {
		t.Fatalf("refresh with the code exchange's assertion sent again: %d %s, want 401 invalid_client, used before", status, got)
	}
	status, got, body = post("/token", withAssertion(renew, signAssertion(t, key, clientID, base)))
	renewed, _ := body["refresh_token"].(string)
	if status != http.StatusOK || renewed == "" || renewed == refresh {
		t.Fatalf("refresh with a new assertion after the replay's refusal: %d %s, want 200 and a new refresh token", status, got)
	}
	if status, got, _ := post("/revoke", withAssertion(url.Values{"token": {renewed}}, signAssertion(t, key, clientID, base+"/revoke"))); status != http.StatusOK {
		t.Fatalf("revocation with an assertion for the revocation endpoint: %d %s, want 200", status, got)
	}
	renew.Set("refresh_token", renewed)
	if status, got, body := post("/token", withAssertion(renew, signAssertion(t, key, clientID, base))); status != http.StatusBadRequest ||
		body["error"] != "invalid_grant" {
		t.Fatalf("refresh with the revoked refresh token: %d %s, want 400 invalid_grant", status, got)
	}
}

// oauthOutcome says what a token endpoint answered without its tokens:
// the error and its description, or the names of the members.
func oauthOutcome(body map[string]any) string {
	if e, ok := body["error"]; ok {
		return fmt.Sprintf("%v: %v", e, body["error_description"])
	}
	return fmt.Sprintf("members %v", slices.Sorted(maps.Keys(body)))
}

// publishPrivateKeyJWT serves, at docPath, the document of a confidential
// client as ChatGPT's reads (private_key_jwt, RS256, a jwks_uri on the same
// host), and at keysPath the JWK Set of pub; it returns the client_id.
func (h *cimdHost) publishPrivateKeyJWT(t *testing.T, docPath, keysPath, name string, pub *rsa.PublicKey, redirectURIs ...string) string {
	t.Helper()
	raw, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: pub, KeyID: "e2e-" + tokens.NewID(), Algorithm: string(jose.RS256), Use: "sig"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var set map[string]any
	if err := json.Unmarshal(raw, &set); err != nil {
		t.Fatal(err)
	}
	id := h.publish(docPath, name, redirectURIs...)
	h.mu.Lock()
	defer h.mu.Unlock()
	doc := h.docs[docPath]
	doc["token_endpoint_auth_method"] = "private_key_jwt"
	doc["token_endpoint_auth_signing_alg"] = "RS256"
	doc["jwks_uri"] = h.srv.URL + keysPath
	h.docs[keysPath] = set
	return id
}

// writePKCS8 writes key as PKCS#8 PEM, as the TypeScript SDK imports it,
// to a file only the test's user reads, and returns its path.
func writePKCS8(t *testing.T, key *rsa.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "client-key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// signAssertion is a private_key_jwt assertion of clientID for aud, as the
// TypeScript SDK makes them (RS256, no kid), with a new jti.
func signAssertion(t *testing.T, key *rsa.PrivateKey, clientID, aud string) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	s, err := jwt.Signed(signer).Claims(jwt.Claims{Issuer: clientID, Subject: clientID, Audience: jwt.Audience{aud},
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(5 * time.Minute)), ID: tokens.NewID()}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// withForm is a copy of form with key set to value.
func withForm(form url.Values, key, value string) url.Values {
	c := maps.Clone(form)
	c.Set(key, value)
	return c
}

// withAssertion is a copy of form authenticated by the assertion a,
// without client_id as the TypeScript SDK sends it.
func withAssertion(form url.Values, a string) url.Values {
	return withForm(withForm(form, "client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"), "client_assertion", a)
}

// checkPrivateKeyJWTMetadata checks that the authorization server metadata
// offers private_key_jwt with RS256 at the token endpoint (SEC-128).
func checkPrivateKeyJWTMetadata(t *testing.T, base string) {
	t.Helper()
	resp, err := http.Get(base + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m struct {
		Methods []string `json:"token_endpoint_auth_methods_supported"`
		Algs    []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("authorization server metadata: %v", err)
	}
	if !slices.Contains(m.Methods, "private_key_jwt") || !slices.Contains(m.Algs, "RS256") {
		t.Fatalf("metadata: methods %v, algorithms %v; want private_key_jwt and RS256", m.Methods, m.Algs)
	}
}

// checkTSAssertions checks the SDK's two token requests (the code, the
// refresh): each sent an assertion and its type, no client_id and no
// secret; RS256 without a kid; iss and sub the client_id, aud the issuer,
// a new jti each time.
func checkTSAssertions(t *testing.T, sent []tsClientAuth, base, clientID string) {
	t.Helper()
	if len(sent) != 2 || sent[0].GrantType != "authorization_code" || sent[1].GrantType != "refresh_token" {
		t.Fatalf("the SDK's token requests with an assertion: %+v, want the code exchange and the refresh", sent)
	}
	for _, a := range sent {
		if a.Endpoint != base+"/token" || !slices.Contains(a.Params, "client_assertion") || !slices.Contains(a.Params, "client_assertion_type") ||
			slices.Contains(a.Params, "client_id") || slices.Contains(a.Params, "client_secret") {
			t.Errorf("%s request to %s sent %v; want %s/token with client_assertion and its type, no client_id and no client_secret",
				a.GrantType, a.Endpoint, a.Params, base)
		}
		if _, kid := a.Header["kid"]; a.Header["alg"] != "RS256" || kid {
			t.Errorf("%s assertion header %v, want RS256 without a kid", a.GrantType, a.Header)
		}
		if c := a.Claims; c.Iss != clientID || c.Sub != clientID || c.Aud != base || c.Jti == "" || c.Exp <= c.Iat {
			t.Errorf("%s assertion claims %+v, want iss and sub %s, aud %s, a jti and exp after iat", a.GrantType, c, clientID, base)
		}
	}
	if sent[0].Claims.Jti == sent[1].Claims.Jti {
		t.Errorf("the SDK sent the jti %q twice", sent[0].Claims.Jti)
	}
	t.Logf("TypeScript SDK private_key_jwt: %s sent %v with header %v", sent[0].GrantType, sent[0].Params, sent[0].Header)
}
