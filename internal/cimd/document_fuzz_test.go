package cimd

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/assertion"
	"github.com/mcpgate/mcpgate/internal/oauth"
)

// FuzzDocument: any body either fails with an *Error or yields a client
// that satisfies every CIMD-3, CIMD-4 and CIMD-8 rule: public with none, or
// private_key_jwt with one valid way to find its keys (SEC-128).
func FuzzDocument(f *testing.F) {
	const id = "https://client.example/oauth/metadata.json"
	for _, s := range []string{
		doc(id, nil),
		doc(id, func(m map[string]any) {
			m["redirect_uris"] = []string{"http://localhost/callback", "http://127.0.0.1/callback"}
			m["grant_types"] = []string{"authorization_code", "refresh_token"}
			m["response_types"] = []string{"code"}
			m["token_endpoint_auth_method"] = "none"
		}),
		doc(id, func(m map[string]any) { m["redirect_uris"] = []string{"cursor://anysphere.cursor-mcp/oauth/callback"} }),
		doc(id, func(m map[string]any) { m["client_id"] = id + "/" }),
		doc(id, func(m map[string]any) { m["token_endpoint_auth_method"] = "client_secret_post" }),
		doc(id, func(m map[string]any) { m["client_secret"] = "x" }),
		doc(id, func(m map[string]any) {
			m["token_endpoint_auth_method"] = "private_key_jwt"
			m["jwks_uri"] = "https://client.example/jwks"
		}),
		doc(id, func(m map[string]any) {
			m["token_endpoint_auth_method"] = "private_key_jwt"
			m["token_endpoint_auth_signing_alg"] = "RS256"
			m["jwks"] = map[string]any{"keys": []any{map[string]any{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}}}
		}),
		doc(id, func(m map[string]any) { delete(m, "client_name") }),
		doc(id, func(m map[string]any) { m["redirect_uris"] = []string{"javascript:alert(1)"} }),
		doc(id, func(m map[string]any) { m["grant_types"] = []string{"implicit"} }),
		`{"client_id":"` + id + `","Client_ID":"x","client_name":"a","redirect_uris":["https://a.example/cb"]}`,
		`{"client_id":"` + id + `","client_id":"` + id + `"}`,
		`{}`, `[]`, `null`, `"x"`, `{"a":1}{"b":2}`, `{"client_id":` + "\xff" + `}`,
	} {
		f.Add([]byte(s))
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := parseDocument(id, body, now)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Reason == "" {
				t.Fatalf("error %v, want an *Error with a Reason", err)
			}
			return
		}
		// CIMD-3: the document's own client_id, read without
		// case-folding, equals the URL.
		var m map[string]json.RawMessage
		if json.Unmarshal(body, &m) != nil {
			t.Fatal("CIMD-4: accepted a body that is not a JSON object")
		}
		var docID string
		if json.Unmarshal(m["client_id"], &docID) != nil || docID != id || c.ID != id {
			t.Fatalf("CIMD-3: accepted client_id %s (client %q), want exactly %s", m["client_id"], c.ID, id)
		}
		// CIMD-8.
		if _, ok := m["client_secret"]; ok {
			t.Fatal("CIMD-8: accepted a client_secret")
		}
		if _, ok := m["client_secret_expires_at"]; ok {
			t.Fatal("CIMD-8: accepted client_secret_expires_at")
		}
		switch c.TokenEndpointAuthMethod {
		case "none":
			if !c.Public() || c.JWKSURI != "" || c.JWKS != nil || c.SigningAlg != "" {
				t.Fatalf("CIMD-8: a public client with keys: %+v", c)
			}
		case "private_key_jwt":
			if c.Public() {
				t.Fatal("SEC-128: a private_key_jwt client counts as public")
			}
			if (c.JWKSURI == "") == (c.JWKS == nil) {
				t.Fatalf("SEC-128: jwks_uri %q and jwks %q: want exactly one", c.JWKSURI, c.JWKS)
			}
			if c.JWKSURI != "" && validateKeysURL(c.JWKSURI) != nil {
				t.Fatalf("SEC-128: accepted jwks_uri %q", c.JWKSURI)
			}
			if c.JWKS != nil {
				if _, err := assertion.ParseKeySet(c.JWKS); err != nil {
					t.Fatalf("SEC-128: accepted jwks that ParseKeySet refuses: %v", err)
				}
			}
			if c.SigningAlg != "" && !assertion.Supported(c.SigningAlg) {
				t.Fatalf("SEC-128: accepted signing alg %q", c.SigningAlg)
			}
		default:
			t.Fatalf("CIMD-8: accepted auth method %q, want none or private_key_jwt", c.TokenEndpointAuthMethod)
		}
		// CIMD-4.
		if name, ok := oauth.CleanClientName(c.Name); !ok || name != c.Name || name == "" {
			t.Fatalf("CIMD-4: accepted client_name %q, want a non-empty, clean name", c.Name)
		}
		if len(c.RedirectURIs) == 0 || len(c.RedirectURIs) > maxRedirectURIs {
			t.Fatalf("CIMD-4: accepted %d redirect URIs, want 1 to %d", len(c.RedirectURIs), maxRedirectURIs)
		}
		for _, u := range c.RedirectURIs {
			if err := oauth.ValidateRedirectURI(u); err != nil {
				t.Fatalf("CIMD-4: accepted redirect URI %q that ValidateRedirectURI refuses: %v", u, err)
			}
		}
		if !slices.Contains(c.GrantTypes, "authorization_code") {
			t.Fatalf("accepted grant types %v, want authorization_code among them", c.GrantTypes)
		}
		for _, g := range c.GrantTypes {
			if g != "authorization_code" && g != "refresh_token" {
				t.Fatalf("accepted grant type %q, want authorization_code or refresh_token", g)
			}
		}
		for _, rt := range c.ResponseTypes {
			if rt != "code" {
				t.Fatalf("accepted response type %q, want code", rt)
			}
		}
		if len(c.ResponseTypes) == 0 {
			t.Fatal("no response types, want [code]")
		}
		if c.ApplicationType != "native" && c.ApplicationType != "web" {
			t.Fatalf("accepted application type %q, want native or web", c.ApplicationType)
		}
		if _, ok := oauth.ParseScope(c.Scope); !ok {
			t.Fatalf("accepted scope %q, which ParseScope refuses", c.Scope)
		}
		for _, u := range []string{c.ClientURI, c.LogoURI} {
			if u != "" && !oauth.IsWebURL(u) {
				t.Fatalf("accepted client_uri or logo_uri %q, want an http(s) URL", u)
			}
		}
	})
}
