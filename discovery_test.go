package mcpgate_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -run %s -update creates it)", err, t.Name())
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from the golden file:\n got:\n%s\nwant:\n%s", name, got, want)
	}
}

// ASM-1, ASM-2, ASM-4, ASM-7 (= ISS-2): the same RFC 8414 document at both
// well-known paths, with S256 and the iss parameter advertised. ASM-6: the
// registration endpoint signals DCR. ASM-8, ASM-9: the default suffix, and
// endpoints at the issuer's root, where 2025-03-26 clients look for them.
func TestASM_MetadataGolden(t *testing.T) {
	g := newGateway(t)
	for _, path := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		t.Run(strings.TrimPrefix(path, "/.well-known/"), func(t *testing.T) {
			g := g.on(t)
			resp, body := g.get(g.url + path)
			if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				t.Fatalf("got %d %s, want 200 application/json", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			name := "metadata-" + strings.TrimPrefix(path, "/.well-known/") + ".json"
			golden(t, name, []byte(strings.ReplaceAll(string(body), g.url, "http://ISSUER")))
			var m map[string]any
			json.Unmarshal(body, &m)
			if m["issuer"] != g.url {
				t.Errorf("ASM-3: issuer %v, want %s", m["issuer"], g.url)
			}
			for key, path := range map[string]string{"authorization_endpoint": "/authorize", "token_endpoint": "/token", "registration_endpoint": "/register"} {
				if m[key] != g.url+path {
					t.Errorf("ASM-6/ASM-9: %s = %v, want %s", key, m[key], g.url+path)
				}
			}
			if m["authorization_response_iss_parameter_supported"] != true {
				t.Errorf("ASM-7: authorization_response_iss_parameter_supported is %v, want true", m["authorization_response_iss_parameter_supported"])
			}
			if !containsJSON(m["code_challenge_methods_supported"], "S256") || containsJSON(m["code_challenge_methods_supported"], "plain") {
				t.Errorf("ASM-4: code_challenge_methods_supported %v, want S256 and not plain", m["code_challenge_methods_supported"])
			}
		})
	}
}

// ASM-3: the issuer follows the loopback name the client used, byte for
// byte, with no trailing slash; PRM's authorization_servers matches it.
func TestASM3_IssuerFollowsLoopbackHost(t *testing.T) {
	g := newGateway(t)
	for name, base := range map[string]string{"127.0.0.1": g.url, "localhost": g.localhostURL()} {
		t.Run(name, func(t *testing.T) {
			g := g.on(t)
			_, body := g.get(base + "/.well-known/oauth-authorization-server")
			m := decode[map[string]any](t, body)
			if m["issuer"] != base {
				t.Errorf("issuer %v, want %s", m["issuer"], base)
			}
			_, body = g.get(base + "/.well-known/oauth-protected-resource/mcp")
			p := decode[map[string]any](t, body)
			if as, _ := p["authorization_servers"].([]any); len(as) != 1 || as[0] != base {
				t.Errorf("PRM authorization_servers %v, want [%s]", p["authorization_servers"], base)
			}
			if p["resource"] != base+"/mcp" {
				t.Errorf("PRM-9: resource %v, want %s/mcp", p["resource"], base)
			}
		})
	}
}

// A fixed public URL pins the issuer whatever the Host.
func TestASM3_FixedPublicURL(t *testing.T) {
	g := newGateway(t, func(c *mcpgateConfig) { c.PublicURL = "https://mcp.example.com" })
	_, body := g.get(g.url + "/.well-known/oauth-authorization-server")
	if m := decode[map[string]any](t, body); m["issuer"] != "https://mcp.example.com" {
		t.Fatalf("issuer %v, want https://mcp.example.com whatever the Host", m["issuer"])
	}
}

// PRM-1, PRM-2, PRM-3, PRM-4, PRM-7, PRM-8, PRM-9: PRM at the path-inserted
// and the root URL, naming the authorization server and the resource's
// canonical URL, with the minimal scope set and never offline_access.
func TestPRM_Golden(t *testing.T) {
	g := newGateway(t)
	for _, path := range []string{"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"} {
		t.Run(strings.TrimPrefix(path, "/.well-known/"), func(t *testing.T) {
			g := g.on(t)
			resp, body := g.get(g.url + path)
			if resp.StatusCode != 200 {
				t.Fatalf("got %d, want 200", resp.StatusCode)
			}
			golden(t, "prm.json", []byte(strings.ReplaceAll(string(body), g.url, "http://ISSUER")))
			p := decode[map[string]any](t, body)
			if as, _ := p["authorization_servers"].([]any); len(as) != 1 || as[0] != g.url {
				t.Errorf("PRM-2: authorization_servers %v, want [%s]", p["authorization_servers"], g.url)
			}
			if sc, _ := p["scopes_supported"].([]any); len(sc) != 1 || sc[0] != "mcp" {
				t.Errorf("PRM-7: scopes_supported %v, want [mcp]", p["scopes_supported"])
			}
			if strings.Contains(string(body), "offline_access") {
				t.Errorf("PRM-8: offline_access advertised in PRM:\n%s", body)
			}
		})
	}
}

// Discovery paths never fall through to the protected endpoint.
func TestWellKnownUnknownIs404(t *testing.T) {
	g := newGateway(t)
	resp, _ := g.get(g.url + "/.well-known/oauth-protected-resource/other")
	if resp.StatusCode != 404 {
		t.Fatalf("PRM of an unknown resource: %d, want 404", resp.StatusCode)
	}
	resp, _ = g.get(g.url + "/mcp/")
	if resp.StatusCode == 307 || resp.StatusCode == 308 || resp.StatusCode == 301 {
		t.Fatalf("the MCP path with a trailing slash was redirected (%d); want no redirect", resp.StatusCode)
	}
}

// CORS for browser clients (MCP Inspector): preflight on discovery,
// register, token and /mcp; WWW-Authenticate and Mcp-Session-Id exposed;
// never credentials (with the wildcard origin, or the MCP endpoint's
// echoed one).
func TestCORS_Preflight(t *testing.T) {
	g := newGateway(t)
	for _, path := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration",
		"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource", "/register", "/token", "/mcp", "/jwks.json"} {
		req := newReq(t, "OPTIONS", g.url+path)
		req.Header.Set("Origin", "http://localhost:6274")
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type, mcp-protocol-version")
		resp, _ := g.do(req)
		want := "*"
		if path == "/mcp" {
			want = "http://localhost:6274" // an allowed origin, echoed (SEC-34)
		}
		if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != want {
			t.Errorf("%s: preflight %d, Access-Control-Allow-Origin %q; want 204 and %s", path, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"), want)
		}
		if !strings.Contains(strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers")), "authorization") {
			t.Errorf("%s: Access-Control-Allow-Headers %q, want authorization among them", path, resp.Header.Get("Access-Control-Allow-Headers"))
		}
		if resp.Header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("%s: Access-Control-Allow-Credentials %q with a wildcard origin, want none", path, resp.Header.Get("Access-Control-Allow-Credentials"))
		}
	}
	// The 401 of /mcp must be readable by the browser client.
	resp, _ := g.mcpInitialize(g.url, "", "Origin", "http://localhost:6274")
	if resp.StatusCode != 401 || resp.Header.Get("Access-Control-Allow-Origin") != "http://localhost:6274" ||
		!strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "WWW-Authenticate") ||
		!strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "Mcp-Session-Id") {
		t.Fatalf("401 CORS: %d %v; want 401 with the allowed origin echoed, exposing WWW-Authenticate and Mcp-Session-Id", resp.StatusCode, resp.Header)
	}
}

func containsJSON(v any, s string) bool {
	list, _ := v.([]any)
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
