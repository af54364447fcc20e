package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/upstream"
	"github.com/mcpgate/mcpgate/upstream/local"
	"golang.org/x/oauth2"
)

// GatewayConfig is the configuration of the gateway under load, for
// mcpgate.New: the store st, a local user (user, password) as its only
// connector, a random secret key and logger, and, as `mcpgate serve` with
// no backend, the demo server (mcpgate.DemoServer) at /mcp.
func GatewayConfig(ctx context.Context, st store.Store, user, password string, logger *slog.Logger) (mcpgate.Config, error) {
	lc := local.New(st, local.Options{})
	if err := lc.SetUser(ctx, user, password); err != nil {
		return mcpgate.Config{}, err
	}
	key := make([]byte, 32)
	rand.Read(key)
	return mcpgate.Config{
		Store:      st,
		SecretKey:  key,
		Connectors: []upstream.Connector{lc},
		Logger:     logger,
		Version:    "bench",
	}, nil
}

// RegisterClient registers a public client (no secret, native) named name
// with the redirect URI callback at the gateway at base (POST /register),
// and returns its client_id.
func RegisterClient(ctx context.Context, client *http.Client, base, name, callback string) (string, error) {
	reg, _ := json.Marshal(map[string]any{
		"client_name": name, "redirect_uris": []string{callback},
		"token_endpoint_auth_method": "none", "application_type": "native",
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/register", bytes.NewReader(reg))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("register: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return "", fmt.Errorf("register: %w", err)
	}
	var registered struct {
		ClientID string `json:"client_id"`
	}
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(body, &registered) != nil || registered.ClientID == "" {
		return "", fmt.Errorf("register: HTTP %d: %s", resp.StatusCode, Snippet(body))
	}
	return registered.ClientID, nil
}

// AuthorizeURL is the /authorize URL of the gateway at base for a code for
// clientID, with PKCE S256, the redirect URI callback and resource, up to
// the parameters of each request: AuthorizeRequest adds them.
func AuthorizeURL(base, clientID, callback, resource string) string {
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {clientID},
		"redirect_uri":          {callback},
		"code_challenge_method": {"S256"},
		"resource":              {resource},
	}
	return base + "/authorize?" + q.Encode()
}

// AuthorizeRequest is authorize, from AuthorizeURL, with the PKCE
// challenge of verifier and state.
func AuthorizeRequest(authorize, verifier, state string) string {
	return authorize + "&code_challenge=" + oauth2.S256ChallengeFromVerifier(verifier) + "&state=" + state
}

// Authorize walks one authorization through the pages of the gateway at
// base with the headless browser b (login form, consent), checks the state
// and iss of the redirect to callback, and returns its code and the PKCE
// verifier to redeem it with. authorize is from AuthorizeURL.
func Authorize(ctx context.Context, b *browser.Browser, authorize, callback, base string) (code, verifier string, err error) {
	verifier, state := NewSecret(), NewSecret()
	code, gotState, iss, err := b.Authorize(ctx, AuthorizeRequest(authorize, verifier, state), callback)
	if err != nil {
		return "", "", fmt.Errorf("authorize: %w", err)
	}
	if gotState != state || iss != base {
		return "", "", fmt.Errorf("authorize: state %q iss %q, want %q and %q", gotState, iss, state, base)
	}
	return code, verifier, nil
}

// NewSecret is a PKCE code verifier (RFC 7636 §4.1) or a state: 32 random
// bytes, base64url, as clients make them.
func NewSecret() string { return oauth2.GenerateVerifier() }
