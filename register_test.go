package mcpgate_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/internal/tokens"
)

// DCR-1..3, COMM-2: RFC 7591 registration, its defaults and its errors.
func TestDCR_Registration(t *testing.T) {
	g := newGateway(t)
	// Public native client.
	c := g.register(nil)
	if c.ClientID == "" || c.ClientSecret != "" || c.AuthMethod != "none" {
		t.Fatalf("public client: %+v, want a client_id, no secret and auth method none", c)
	}
	// RFC 7591 §2: an omitted auth method means client_secret_basic, with a secret.
	resp, body := g.postJSON(g.url+"/register", map[string]any{"redirect_uris": []string{"https://app.example/cb"}})
	r := decode[map[string]any](t, body)
	if resp.StatusCode != 201 || r["token_endpoint_auth_method"] != "client_secret_basic" || r["client_secret"] == nil ||
		r["application_type"] != "web" || r["client_secret_expires_at"] != float64(0) {
		t.Fatalf("default auth method: %d %v; want 201, client_secret_basic with a secret that never expires (0), application_type web", resp.StatusCode, r)
	}
	// DCR-2: Cursor registers a private-use scheme with application_type web.
	resp, body = g.postJSON(g.url+"/register", map[string]any{"redirect_uris": []string{"cursor://anysphere.cursor-mcp/oauth/callback"},
		"application_type": "web", "token_endpoint_auth_method": "none"})
	if resp.StatusCode != 201 {
		t.Fatalf("Cursor: %d %s, want 201", resp.StatusCode, body)
	}
	// DCR-2: native with a loopback http redirect.
	resp, body = g.postJSON(g.url+"/register", map[string]any{"redirect_uris": []string{"http://127.0.0.1/callback"},
		"application_type": "native", "token_endpoint_auth_method": "none"})
	if resp.StatusCode != 201 {
		t.Fatalf("native loopback: %d %s, want 201", resp.StatusCode, body)
	}

	cases := []struct {
		body any
		code string
	}{
		{map[string]any{"client_name": "x"}, "invalid_redirect_uri"},
		{map[string]any{"redirect_uris": []string{"http://app.example/cb"}}, "invalid_redirect_uri"}, // COMM-2
		{map[string]any{"redirect_uris": []string{"javascript:alert(1)"}}, "invalid_redirect_uri"},
		{map[string]any{"redirect_uris": []string{"https://a.example/cb#f"}}, "invalid_redirect_uri"},
		{map[string]any{"redirect_uris": []string{"https://a.example/cb"}, "token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata"},
		{map[string]any{"redirect_uris": []string{"https://a.example/cb"}, "grant_types": []string{"implicit"}}, "invalid_client_metadata"},
		{map[string]any{"redirect_uris": []string{"https://a.example/cb"}, "response_types": []string{"token"}}, "invalid_client_metadata"},
		{map[string]any{"redirect_uris": []string{"https://a.example/cb"}, "application_type": "desktop"}, "invalid_client_metadata"},
		{map[string]any{"redirect_uris": []string{"https://a.example/cb"}, "scope": "a\"b"}, "invalid_client_metadata"},
		{map[string]any{"redirect_uris": []string{"https://a.example/cb"}, "client_name": "a\u0000b"}, "invalid_client_metadata"},
		{map[string]any{"redirect_uris": "https://a.example/cb"}, "invalid_client_metadata"},
		{"not an object", "invalid_client_metadata"},
	}
	for i, tc := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			resp, body := g.on(t).postJSON(g.url+"/register", tc.body)
			e := decode[map[string]string](t, body)
			if resp.StatusCode != 400 || e["error"] != tc.code || e["error_description"] == "" {
				t.Errorf("registering %v: got %d %v, want 400 %s with a description", tc.body, resp.StatusCode, e, tc.code)
			}
		})
	}
}

// DCR-1, RFC 7591 §3.2.1: a registered scope keeps only the scopes the
// gateway serves (its scopes_supported); the answer and the record say
// what a grant can carry, not what the client wished for.
func TestDCR_RegisteredScopeNarrowed(t *testing.T) {
	g := newGateway(t)
	_, body := g.get(g.url + "/.well-known/oauth-authorization-server")
	supported := decode[struct {
		Scopes []string `json:"scopes_supported"`
	}](t, body).Scopes
	if len(supported) < 2 {
		t.Fatalf("scopes_supported %v, want at least a resource's scope and offline_access", supported)
	}
	cases := []struct{ asked, want string }{
		{"made:up " + supported[0] + " offline_access other", supported[0] + " offline_access"},
		{"made:up other", ""},
		{"", ""},
	}
	for _, tc := range cases {
		t.Run(tc.asked, func(t *testing.T) {
			resp, body := g.on(t).postJSON(g.url+"/register", map[string]any{"redirect_uris": []string{"https://a.example/cb"},
				"token_endpoint_auth_method": "none", "scope": tc.asked})
			r := decode[map[string]any](t, body)
			got, present := r["scope"]
			if resp.StatusCode != 201 || (tc.want == "" && present) || (tc.want != "" && got != tc.want) {
				t.Errorf("registering scope %q: %d, scope %v (present %v); want 201 and scope %q (omitted when empty)", tc.asked, resp.StatusCode, got, present, tc.want)
			}
		})
	}
}

// The body is limited, must be JSON, and registrations are rate-limited
// per client address.
func TestDCR_LimitsAndRateLimit(t *testing.T) {
	g := newGateway(t)
	big := `{"redirect_uris":["https://a.example/cb"],"client_name":"` + strings.Repeat("x", 70<<10) + `"}`
	resp, _ := g.do(jsonReq(t, g.url+"/register", big))
	if resp.StatusCode != 413 {
		t.Fatalf("oversized body: %d, want 413", resp.StatusCode)
	}
	req, _ := http.NewRequest("POST", g.url+"/register", strings.NewReader(`{"redirect_uris":["https://a.example/cb"]}`))
	req.Header.Set("Content-Type", "text/plain")
	if resp, _ := g.do(req); resp.StatusCode != 400 {
		t.Fatalf("non-JSON content type: %d, want 400", resp.StatusCode)
	}
	limited := false
	for i := 0; i < 40 && !limited; i++ {
		resp, _ := g.do(jsonReq(t, g.url+"/register", `{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"none"}`))
		limited = resp.StatusCode == 429 && resp.Header.Get("Retry-After") != ""
	}
	if !limited {
		t.Fatal("40 registrations from one address in a row were all accepted, want a 429 with Retry-After")
	}
}

// Registrations are stored: the client works at /authorize afterwards,
// and its secret is stored only hashed (TOK-4), and never logged.
func TestDCR_SecretStoredHashed(t *testing.T) {
	g := newGateway(t)
	c := g.register(map[string]any{"token_endpoint_auth_method": "client_secret_post"})
	if strings.Contains(g.logs.String(), c.ClientSecret) {
		t.Fatal("TOK-4: the client secret reached the log")
	}
	stored, err := g.store.GetClient(t.Context(), c.ClientID)
	if err != nil {
		t.Fatalf("the registered client is not in the store: %v", err)
	}
	if !bytes.Equal(stored.SecretHash, tokens.Hash(c.ClientSecret)) || bytes.Contains(stored.SecretHash, []byte(c.ClientSecret)) {
		t.Fatalf("TOK-4: stored secret %q, want only the SHA-256 of the secret", stored.SecretHash)
	}
	g.login(g.newAuth(c.ClientID))
}

func jsonReq(t *testing.T, u, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest("POST", u, bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return req
}
