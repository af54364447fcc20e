package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

type listedAttempt struct {
	Attempt  string `json:"attempt"`
	ClientID string `json:"client_id"`
	UserID   string `json:"user_id"`
	Result   string `json:"result"`
	Summary  string `json:"summary"`
	Steps    []struct {
		Step    string `json:"step"`
		Outcome string `json:"outcome"`
		Reason  string `json:"reason"`
	} `json:"steps"`
}

// mcpgate flows against the data directory of a running mcpgate serve:
// after a client's /authorize with a redirect URI it did not register,
// and another client's whole flow, the command shows the failed attempt
// with its reason last and the good one with every step, and never a
// secret (SEC-113, SEC-117).
func TestBinaryFlows(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	settings := []string{"--data-dir", dir, "--local-user", user + ":" + password}
	p := startBinaryWith(t, freePort(t), binaryOpts{}, settings...)
	cli := func(args ...string) adminRun {
		t.Helper()
		code, out, errOut := runBinaryWith(t, nil, "", append(append([]string{"flows"}, args...), settings...)...)
		return adminRun{code, out, errOut}
	}

	// A client registers with one redirect URI and comes with another.
	body, _ := json.Marshal(map[string]any{"client_name": "Flaky Client", "redirect_uris": []string{callback}, "token_endpoint_auth_method": "none"})
	resp, err := http.Post(p.base+"/register", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var reg struct {
		ClientID string `json:"client_id"`
	}
	json.NewDecoder(resp.Body).Decode(&reg)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || reg.ClientID == "" {
		t.Fatalf("register: %d", resp.StatusCode)
	}
	state, challenge := "st4te-not-recorded", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
	q := url.Values{"response_type": {"code"}, "client_id": {reg.ClientID}, "redirect_uri": {"http://127.0.0.1:33418/cb"},
		"state": {state}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}, "resource": {p.base + "/mcp"}}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noRedirect.Get(p.base + "/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("/authorize with an unregistered redirect_uri: %d, want 400", resp.StatusCode)
	}

	// Another client's whole flow, and a tool call.
	h, _ := oauthClient(t)
	whoami(t, ctx, mcpStreamable{p.base + "/mcp", h}.transport())
	tok := tokenOf(t, ctx, h)
	good := clientIDOf(t, tok.AccessToken)

	// The recorder writes within a quarter of a second; the command reads
	// what is written.
	want := "redirect_uri http://127.0.0.1:33418/cb is not registered for this client; registered: " + callback
	var out string
	for deadline := time.Now().Add(30 * time.Second); ; {
		out = ok(t, "flows --client", cli("--client", reg.ClientID))
		if strings.Contains(out, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("flows --client %s: no reason within 30 s:\n%s", reg.ClientID, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, "stopped at authorize (invalid_redirect_uri): "+want) {
		t.Errorf("the reason is not last:\n%s", out)
	}
	if strings.Contains(out, good) {
		t.Errorf("flows --client %s shows the other client:\n%s", reg.ClientID, out)
	}

	var attempts []listedAttempt
	for deadline := time.Now().Add(30 * time.Second); ; {
		attempts = decode[[]listedAttempt](t, "flows --json", ok(t, "flows --client --json", cli("--client", good, "--json")))
		// Its registration, an attempt of its own, then its flow.
		if len(attempts) == 2 && len(attempts[1].Steps) >= 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("flows --client %s --json: %+v, want its registration and its whole flow within 30 s", good, attempts)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r := attempts[0]; len(r.Steps) != 1 || r.Steps[0].Step != "register" || r.Result != "ok" {
		t.Errorf("the registration: %+v", r)
	}
	a := attempts[1]
	var steps []string
	for _, s := range a.Steps {
		steps = append(steps, s.Step+":"+s.Outcome)
	}
	if a.Result != "ok" || a.UserID != "local:"+user || !strings.HasPrefix(strings.Join(steps, " "), "authorize:ok consent:ok login:ok token_code:ok") {
		t.Errorf("the good attempt: %+v, steps %v", a, steps)
	}

	failed := decode[[]listedAttempt](t, "flows --outcome failed", ok(t, "flows --outcome failed", cli("--outcome", "failed", "--json")))
	if len(failed) != 1 || failed[0].ClientID != reg.ClientID || failed[0].Result != "failed" {
		t.Errorf("flows --outcome failed: %+v, want the one failed attempt", failed)
	}
	everything := ok(t, "flows", cli()) + ok(t, "flows --json", cli("--json"))
	for _, secret := range []string{state, challenge, tok.AccessToken, tok.RefreshToken, password} {
		if strings.Contains(everything, secret) {
			t.Errorf("SEC-113: mcpgate flows prints a secret (%.8s…)", secret)
		}
	}
	if r := cli("--since", "yesterday"); r.code != 2 || !strings.Contains(r.stderr, "--since") {
		t.Errorf("flows --since yesterday: exit %d %q, want 2 naming --since", r.code, r.stderr)
	}
}
