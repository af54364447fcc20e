package cimd

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/oauth"
)

// CIMD-2, CIMD-4: a valid document becomes a public client.
func TestClientValidDocument(t *testing.T) {
	e := newEnv(t, docHandler, nil)
	id := e.url("/client.json")
	c, err := e.f.Client(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if c.ID != id || c.Name != "Example MCP Client" || c.Scope != "mcp" ||
		c.ClientURI != "https://app.example" || c.LogoURI != "https://app.example/logo.png" {
		t.Errorf("client = %+v, want the document's client_id, client_name, scope, client_uri and logo_uri", c)
	}
	if !slices.Equal(c.RedirectURIs, []string{"https://app.example/callback"}) {
		t.Errorf("RedirectURIs = %v, want [https://app.example/callback]", c.RedirectURIs)
	}
	if !slices.Equal(c.GrantTypes, []string{"authorization_code", "refresh_token"}) || !slices.Equal(c.ResponseTypes, []string{"code"}) {
		t.Errorf("GrantTypes = %v, ResponseTypes = %v (want the DCR defaults)", c.GrantTypes, c.ResponseTypes)
	}
	if c.TokenEndpointAuthMethod != "none" || !c.Public() || c.SecretHash != nil {
		t.Errorf("auth method %q, public %v, secret hash %x; want none, public, no secret (a CIMD client is public)", c.TokenEndpointAuthMethod, c.Public(), c.SecretHash)
	}
	if c.ApplicationType != "web" {
		t.Errorf("ApplicationType = %q, want web (https redirect)", c.ApplicationType)
	}
	if !c.CreatedAt.Equal(e.clock.now()) {
		t.Errorf("CreatedAt = %v, want the fetch time", c.CreatedAt)
	}
}

// Claude Code quirk (CLIENT-QUIRKS): its document lists port-less loopback
// redirects, then it listens on an ephemeral port. The client is native and
// oauth.MatchRedirectURI accepts any port (CIMD-5, REDIR-4).
func TestClientClaudeCodeLoopbackDocument(t *testing.T) {
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
		serveJSON(w, fmt.Sprintf(`{
  "client_id": %q,
  "client_name": "Claude Code",
  "client_uri": "https://claude.ai",
  "redirect_uris": ["http://localhost/callback", "http://127.0.0.1/callback"],
  "grant_types": ["authorization_code", "refresh_token"],
  "response_types": ["code"],
  "token_endpoint_auth_method": "none"
}`, selfURL(r)))
	}, nil)
	c, err := e.f.Client(context.Background(), e.url("/oauth/claude-code-client-metadata"))
	if err != nil {
		t.Fatal(err)
	}
	if c.ApplicationType != "native" {
		t.Errorf("ApplicationType = %q, want native", c.ApplicationType)
	}
	if !oauth.MatchRedirectURI(c.RedirectURIs, "http://localhost:53124/callback") {
		t.Errorf("loopback redirect on an ephemeral port does not match %v, want a match (REDIR-4)", c.RedirectURIs)
	}
	if oauth.MatchRedirectURI(c.RedirectURIs, "https://evil.example/callback") {
		t.Errorf("an unlisted redirect matches %v, want no match", c.RedirectURIs)
	}
}

// CIMD-3, CIMD-4, CIMD-8: every document rule, end to end.
func TestClientDocumentRules(t *testing.T) {
	cases := []struct {
		name string
		body func(id string) string
		want string // substring of Reason
	}{
		{"CIMD-3 client_id with a trailing slash", func(id string) string {
			return doc(id, func(m map[string]any) { m["client_id"] = id + "/" })
		}, "does not match its URL exactly"},
		{"CIMD-3 client_id of another URL", func(id string) string {
			return doc(id, func(m map[string]any) { m["client_id"] = "https://claude.ai/oauth/mcp-oauth-client-metadata" })
		}, "does not match its URL exactly"},
		{"CIMD-3 client_id differing in case", func(id string) string {
			return doc(id, func(m map[string]any) { m["client_id"] = strings.Replace(id, "example.com", "Example.com", 1) })
		}, "does not match its URL exactly"},
		{"CIMD-3 client_id missing", func(id string) string {
			return doc(id, func(m map[string]any) { delete(m, "client_id") })
		}, "has no client_id"},
		{"CIMD-3 Client_ID is not client_id", func(id string) string {
			return doc(id, func(m map[string]any) { delete(m, "client_id"); m["Client_ID"] = id })
		}, "has no client_id"},
		{"CIMD-3 client_id not a string", func(id string) string {
			return doc(id, func(m map[string]any) { m["client_id"] = []string{id} })
		}, "client_id has the wrong type"},
		{"CIMD-4 client_name missing", func(id string) string {
			return doc(id, func(m map[string]any) { delete(m, "client_name") })
		}, "has no client_name"},
		{"CIMD-4 client_name blank", func(id string) string {
			return doc(id, func(m map[string]any) { m["client_name"] = "  " })
		}, "has no client_name"},
		{"CIMD-4 client_name with a bidi override", func(id string) string {
			return doc(id, func(m map[string]any) { m["client_name"] = "Good\u202eliveE" })
		}, "client_name must be"},
		{"CIMD-4 redirect_uris missing", func(id string) string {
			return doc(id, func(m map[string]any) { delete(m, "redirect_uris") })
		}, "has no redirect_uris"},
		{"CIMD-4 redirect_uris empty", func(id string) string {
			return doc(id, func(m map[string]any) { m["redirect_uris"] = []string{} })
		}, "has no redirect_uris"},
		{"CIMD-4 redirect_uris a string", func(id string) string {
			return doc(id, func(m map[string]any) { m["redirect_uris"] = "https://app.example/callback" })
		}, "redirect_uris has the wrong type"},
		{"CIMD-4 redirect_uris with null", func(id string) string {
			return doc(id, func(m map[string]any) { m["redirect_uris"] = []any{"https://app.example/callback", nil} })
		}, "redirect_uris has the wrong type"},
		{"CIMD-4 javascript redirect", func(id string) string {
			return doc(id, func(m map[string]any) { m["redirect_uris"] = []string{"javascript:alert(1)"} })
		}, "is not allowed"},
		{"CIMD-4 http redirect off loopback", func(id string) string {
			return doc(id, func(m map[string]any) { m["redirect_uris"] = []string{"http://app.example/callback"} })
		}, "is not allowed"},
		{"CIMD-4 redirect with a fragment", func(id string) string {
			return doc(id, func(m map[string]any) { m["redirect_uris"] = []string{"https://app.example/cb#x"} })
		}, "is not allowed"},
		{"CIMD-4 too many redirect_uris", func(id string) string {
			return doc(id, func(m map[string]any) {
				var uris []string
				for i := range 21 {
					uris = append(uris, fmt.Sprintf("https://a.example/%d", i))
				}
				m["redirect_uris"] = uris
			})
		}, "more than 20"},
		{"CIMD-8 client_secret_post", func(id string) string {
			return doc(id, func(m map[string]any) { m["token_endpoint_auth_method"] = "client_secret_post" })
		}, "uses a shared secret"},
		{"CIMD-8 client_secret_basic", func(id string) string {
			return doc(id, func(m map[string]any) { m["token_endpoint_auth_method"] = "client_secret_basic" })
		}, "uses a shared secret"},
		{"CIMD-8 client_secret_jwt", func(id string) string {
			return doc(id, func(m map[string]any) { m["token_endpoint_auth_method"] = "client_secret_jwt" })
		}, "uses a shared secret"},
		{"CIMD-8 client_secret present", func(id string) string {
			return doc(id, func(m map[string]any) { m["client_secret"] = "s3cret" })
		}, "contains a client_secret"},
		{"CIMD-8 client_secret null", func(id string) string {
			return doc(id, func(m map[string]any) { m["client_secret"] = nil })
		}, "contains a client_secret"},
		{"CIMD-8 client_secret_expires_at present", func(id string) string {
			return doc(id, func(m map[string]any) { m["client_secret_expires_at"] = 0 })
		}, "client_secret_expires_at"},
		{"SEC-128 private_key_jwt without keys", func(id string) string {
			return doc(id, func(m map[string]any) { m["token_endpoint_auth_method"] = "private_key_jwt" })
		}, "must name its keys with jwks_uri or jwks"},
		{"SEC-128 private_key_jwt with jwks_uri and jwks", func(id string) string {
			return doc(id, func(m map[string]any) {
				m["token_endpoint_auth_method"] = "private_key_jwt"
				m["jwks_uri"] = "https://app.example/jwks.json"
				m["jwks"] = testKeySet
			})
		}, "has both jwks_uri and jwks"},
		{"SEC-128 jwks_uri over http", func(id string) string {
			return doc(id, func(m map[string]any) {
				m["token_endpoint_auth_method"] = "private_key_jwt"
				m["jwks_uri"] = "http://app.example/jwks.json"
			})
		}, "jwks_uri is not a valid key set URL: it must start with https://"},
		{"SEC-128 jwks_uri with a query", func(id string) string {
			return doc(id, func(m map[string]any) {
				m["token_endpoint_auth_method"] = "private_key_jwt"
				m["jwks_uri"] = "https://app.example/jwks.json?v=1"
			})
		}, "jwks_uri is not a valid key set URL: it must not have a query"},
		{"SEC-128 jwks wrong type", func(id string) string {
			return doc(id, func(m map[string]any) {
				m["token_endpoint_auth_method"] = "private_key_jwt"
				m["jwks_uri"] = []string{"https://app.example/jwks.json"}
			})
		}, "jwks_uri has the wrong type"},
		{"SEC-128 jwks with a private key", func(id string) string {
			return doc(id, func(m map[string]any) {
				m["token_endpoint_auth_method"] = "private_key_jwt"
				m["jwks"] = testPrivateKeySet
			})
		}, "jwks: key 1 of the key set is private or symmetric key material"},
		{"SEC-128 jwks with a shared secret", func(id string) string {
			return doc(id, func(m map[string]any) {
				m["token_endpoint_auth_method"] = "private_key_jwt"
				m["jwks"] = map[string]any{"keys": []any{map[string]any{"kty": "oct", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}}}
			})
		}, "is private or symmetric key material"},
		{"SEC-128 jwks without keys", func(id string) string {
			return doc(id, func(m map[string]any) {
				m["token_endpoint_auth_method"] = "private_key_jwt"
				m["jwks"] = map[string]any{"keys": []any{}}
			})
		}, "jwks: the key set has no key to verify signatures with"},
		{"SEC-128 signing alg HS256", func(id string) string {
			return doc(id, func(m map[string]any) {
				m["token_endpoint_auth_method"] = "private_key_jwt"
				m["jwks_uri"] = "https://app.example/jwks.json"
				m["token_endpoint_auth_signing_alg"] = "HS256"
			})
		}, `token_endpoint_auth_signing_alg "HS256" is not supported`},
		{"CIMD-8 other auth method", func(id string) string {
			return doc(id, func(m map[string]any) { m["token_endpoint_auth_method"] = "tls_client_auth" })
		}, "is not supported; use none or private_key_jwt"},
		{"grant type implicit", func(id string) string {
			return doc(id, func(m map[string]any) { m["grant_types"] = []string{"authorization_code", "implicit"} })
		}, `grant type "implicit" is not supported`},
		{"grant type client_credentials", func(id string) string {
			return doc(id, func(m map[string]any) { m["grant_types"] = []string{"client_credentials"} })
		}, "is not supported"},
		{"grant types without authorization_code", func(id string) string {
			return doc(id, func(m map[string]any) { m["grant_types"] = []string{"refresh_token"} })
		}, "must include authorization_code"},
		{"response type token", func(id string) string {
			return doc(id, func(m map[string]any) { m["response_types"] = []string{"code", "token"} })
		}, "only the code response type"},
		{"application_type other", func(id string) string {
			return doc(id, func(m map[string]any) { m["application_type"] = "service" })
		}, "application_type must be"},
		{"scope with a quote", func(id string) string {
			return doc(id, func(m map[string]any) { m["scope"] = `mcp "x"` })
		}, "scope is not a valid"},
		{"logo_uri javascript", func(id string) string {
			return doc(id, func(m map[string]any) { m["logo_uri"] = "javascript:alert(1)" })
		}, "client_uri and logo_uri"},
		{"CIMD-4 array", func(string) string { return `[]` }, "not a JSON object"},
		{"CIMD-4 null", func(string) string { return `null` }, "not a JSON object"},
		{"CIMD-4 string", func(string) string { return `"x"` }, "not a JSON object"},
		{"CIMD-4 not JSON", func(string) string { return `client_id=x` }, "not a JSON object"},
		{"CIMD-4 trailing data", func(id string) string { return doc(id, nil) + `{}` }, "not a JSON object"},
		{"CIMD-4 duplicate member", func(id string) string {
			return `{"client_id":"https://evil.example/x",` + doc(id, nil)[1:]
		}, `member "client_id" twice`},
	}
	byPath := map[string]func(string) string{}
	for i, c := range cases {
		byPath[fmt.Sprintf("/case/%d", i)] = c.body
	}
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
		serveJSON(w, byPath[r.URL.Path](selfURL(r)))
	}, nil)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.f.Client(context.Background(), e.url(fmt.Sprintf("/case/%d", i)))
			if err == nil {
				t.Fatalf("the document was accepted, want it refused with a reason containing %q", c.want)
			}
			if r := asError(t, err).Reason; !strings.Contains(r, c.want) {
				t.Errorf("Reason = %q, want it to contain %q", r, c.want)
			}
		})
	}
}

// CIMD-4, CIMD-10: the response must be a 200 JSON document of at most
// 5 KiB; redirects are not followed.
func TestClientResponseRules(t *testing.T) {
	big := func(w http.ResponseWriter, r *http.Request, flush bool) {
		w.Header().Set("Content-Type", "application/json")
		body := doc(selfURL(r), func(m map[string]any) { m["padding"] = strings.Repeat("x", 6<<10) })
		if flush { // no Content-Length: the limit must hold while reading
			_, _ = w.Write([]byte(body[:100]))
			w.(http.Flusher).Flush()
			body = body[100:]
		}
		_, _ = w.Write([]byte(body))
	}
	cases := []struct {
		name    string
		handler http.HandlerFunc
		want    string // substring of Reason; "" means accepted
	}{
		{"CIMD-4 application/json with charset", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			_, _ = w.Write([]byte(doc(selfURL(r), nil)))
		}, ""},
		{"CIMD-4 application/*+json", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/vnd.example.client+json")
			_, _ = w.Write([]byte(doc(selfURL(r), nil)))
		}, ""},
		{"CIMD-4 text/html", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte(doc(selfURL(r), nil)))
		}, "not served as application/json"},
		{"CIMD-4 text/json", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/json")
			_, _ = w.Write([]byte(doc(selfURL(r), nil)))
		}, "not served as application/json"},
		{"CIMD-4 no content type", func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Content-Type"] = nil // no sniffing
			_, _ = w.Write([]byte(doc(selfURL(r), nil)))
		}, "not served as application/json"},
		{"CIMD-4 not JSON", func(w http.ResponseWriter, r *http.Request) {
			serveJSON(w, "<html>hello</html>")
		}, "not a JSON object"},
		{"CIMD-10 exactly 5120 bytes", func(w http.ResponseWriter, r *http.Request) {
			body := doc(selfURL(r), nil)
			serveJSON(w, body+strings.Repeat(" ", 5120-len(body)))
		}, ""},
		{"CIMD-10 6 KiB with Content-Length", func(w http.ResponseWriter, r *http.Request) { big(w, r, false) }, "larger than 5120 bytes"},
		{"CIMD-10 6 KiB chunked", func(w http.ResponseWriter, r *http.Request) { big(w, r, true) }, "larger than 5120 bytes"},
		{"CIMD-10 302 is not followed", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/target", http.StatusFound)
		}, "redirects are not followed"},
		{"CIMD-10 308 is not followed", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/target", http.StatusPermanentRedirect)
		}, "redirects are not followed"},
		{"CIMD-9 404", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, "answered HTTP 404"},
		{"CIMD-9 500", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "oops", http.StatusInternalServerError)
		}, "answered HTTP 500"},
	}
	byPath := map[string]http.HandlerFunc{"/target": docHandler}
	for i, c := range cases {
		byPath[fmt.Sprintf("/case/%d", i)] = c.handler
	}
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request) { byPath[r.URL.Path](w, r) }, nil)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.f.Client(context.Background(), e.url(fmt.Sprintf("/case/%d", i)))
			if c.want == "" {
				if err != nil {
					t.Fatalf("refused: %v, want the document accepted", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, want it refused with a reason containing %q", c.want)
			}
			if r := asError(t, err).Reason; !strings.Contains(r, c.want) {
				t.Errorf("Reason = %q, want it to contain %q", r, c.want)
			}
		})
	}
	if n := e.hitCount("/target"); n != 0 {
		t.Errorf("the redirect target was fetched %d times, want never", n)
	}
}

// CIMD-10: a server that never answers is abandoned after Timeout.
func TestClientTimeout(t *testing.T) {
	// The server answers only once the test is over: an answer written
	// when the client's going cancelled the request could still reach a
	// client under load and be judged as a document.
	release := make(chan struct{})
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
		<-release
	}, func(o *Options) { o.Timeout = 200 * time.Millisecond })
	t.Cleanup(func() { close(release) }) // before newEnv's server Close, which waits for handlers
	start := time.Now()
	_, err := e.f.Client(context.Background(), e.url("/slow.json"))
	if err == nil {
		t.Fatal("a server that never answers: accepted, want a timeout")
	}
	if r := asError(t, err).Reason; r != reasonUnreachable {
		t.Errorf("Reason = %q, want %q", r, reasonUnreachable)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("gave up after %v, want about 200ms", d)
	}
}

// CIMD-9: the *Error carries the cause for the log only; its Reason is for
// people and names no address.
func TestErrorReasonHidesNetworkDetail(t *testing.T) {
	e := newEnv(t, docHandler, func(o *Options) { o.AllowHosts = nil })
	_, err := e.f.Client(context.Background(), e.url("/client.json"))
	ce := asError(t, err)
	if ce.Reason != reasonUnreachable || strings.Contains(ce.Reason, "127.0.0.1") {
		t.Errorf("Reason = %q, want %q, which names no address", ce.Reason, reasonUnreachable)
	}
	if !strings.Contains(ce.Error(), "127.0.0.1") {
		t.Errorf("Error() = %q, want the cause with the address", ce.Error())
	}
}

// The cached client is not shared with callers.
func TestClientReturnsCopies(t *testing.T) {
	e := newEnv(t, docHandler, nil)
	id := e.url("/client.json")
	c1, err := e.f.Client(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	c1.RedirectURIs[0] = "https://evil.example/cb"
	c1.Name = "changed"
	c2, err := e.f.Client(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if c2.RedirectURIs[0] != "https://app.example/callback" || c2.Name != "Example MCP Client" {
		t.Errorf("cache was modified through a returned client: %+v", c2)
	}
}

// CIMD-7: an invalid URL is refused before any lookup.
func TestClientInvalidURLNotFetched(t *testing.T) {
	e := newEnv(t, docHandler, nil)
	_, err := e.f.Client(context.Background(), "https://example.com:"+e.port()+"/x?y=1")
	if err == nil || !strings.Contains(asError(t, err).Reason, "query") {
		t.Fatalf("err = %v, want a refusal naming the query", err)
	}
	if n := e.res.count(); n != 0 {
		t.Errorf("resolver was asked %d times, want never", n)
	}
}

// SEC-164: a host the administrator blocks serves no document and no key
// set, whatever is cached: "example.com" that host, ".example.com" every
// host under it; a host merely ending with the same letters is not under
// it.
func TestDenyHosts(t *testing.T) {
	for _, c := range []struct {
		deny    string
		refused bool
	}{
		{"example.com", true},
		{"EXAMPLE.com", true},
		{".example.com", true},
		{".com", true},
		{"ample.com", false},
		{".ample.com", false},
		{"other.example", false},
	} {
		e := newEnv(t, docHandler, func(o *Options) { o.DenyHosts = []string{c.deny} })
		_, err := e.f.Client(context.Background(), e.url("/client.json"))
		var e1 *Error
		if refused := errors.As(err, &e1) && e1.Reason == reasonDenied; refused != c.refused {
			t.Errorf("deny %q: %v, want refused %v", c.deny, err, c.refused)
		}
		if c.refused && e.hitCount("/client.json") != 0 {
			t.Errorf("deny %q: the document was fetched", c.deny)
		}
	}

	// A client cached before: its key set on a blocked host is refused.
	e := keysEnv(t, serveKeySet, nil)
	c, err := e.f.Client(context.Background(), e.url("/client.json"))
	if err != nil {
		t.Fatal(err)
	}
	e.f.deny = []string{"example.com"}
	_, err = e.f.Keys(context.Background(), c, false)
	var e1 *Error
	if !errors.As(err, &e1) || e1.Reason != reasonKeysDenied {
		t.Errorf("the key set of a client on a blocked host: %v, want refused", err)
	}
	if _, err := e.f.Client(context.Background(), e.url("/client.json")); !errors.As(err, &e1) || e1.Reason != reasonDenied {
		t.Errorf("a cached document of a blocked host: %v, want refused", err)
	}
}
