package authserver

import (
	"testing"

	"github.com/mcpgate/mcpgate/internal/oauth"
)

// FuzzDecodeRegistration: any body either fails with an RFC 7591 error
// code or yields metadata that satisfies every registration rule.
func FuzzDecodeRegistration(f *testing.F) {
	for _, s := range []string{
		`{"redirect_uris":["http://127.0.0.1:33418/callback"],"token_endpoint_auth_method":"none","application_type":"native"}`,
		`{"redirect_uris":["cursor://anysphere.cursor-mcp/oauth/callback"],"application_type":"web"}`,
		`{"redirect_uris":["https://claude.ai/api/mcp/auth_callback"],"grant_types":["authorization_code","refresh_token"],"scope":"mcp offline_access"}`,
		`{"redirect_uris":["javascript:alert(1)"]}`,
		`{}`, `[]`, `null`, `{"redirect_uris":"x"}`, `{"a":1}{"b":2}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, oerr := DecodeRegistration(body)
		if oerr != nil {
			switch oerr.Code {
			case oauth.InvalidClientMetadata, oauth.InvalidRedirectURI:
			default:
				t.Fatalf("error code %q, want invalid_client_metadata or invalid_redirect_uri (RFC 7591 §3.2.2)", oerr.Code)
			}
			return
		}
		if len(req.RedirectURIs) == 0 || len(req.RedirectURIs) > 20 {
			t.Fatalf("accepted %d redirect URIs, want 1 to 20", len(req.RedirectURIs))
		}
		for _, u := range req.RedirectURIs {
			if err := oauth.ValidateRedirectURI(u); err != nil {
				t.Fatalf("DCR-3: accepted redirect URI %q that ValidateRedirectURI refuses: %v", u, err)
			}
		}
		switch req.TokenEndpointAuthMethod {
		case "none", "client_secret_basic", "client_secret_post":
		default:
			t.Fatalf("accepted auth method %q, want none, client_secret_basic or client_secret_post", req.TokenEndpointAuthMethod)
		}
		if req.ApplicationType != "native" && req.ApplicationType != "web" {
			t.Fatalf("DCR-2: accepted application type %q, want native or web", req.ApplicationType)
		}
		if _, ok := oauth.ParseScope(req.Scope); !ok {
			t.Fatalf("accepted scope %q, which ParseScope refuses", req.Scope)
		}
	})
}
