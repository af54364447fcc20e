package oauth

import (
	"flag"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\n got: %s\nwant: %s", name, got, want)
	}
}

func TestChallengeGolden(t *testing.T) {
	prm := "http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp"
	cases := map[string]Challenge{
		// PRM-3, PRM-5: no token presented: resource_metadata and scope, no error.
		"challenge-401-no-token.txt": {Scopes: []string{"mcp"}, ResourceMetadata: prm},
		// RFC 6750 §3.1: a presented but bad token gets error="invalid_token".
		"challenge-401-invalid-token.txt": {Error: InvalidToken, ErrorDescription: "the access token is invalid or expired", Scopes: []string{"mcp"}, ResourceMetadata: prm},
		// SCOPE-1, SCOPE-3: 403 names every scope needed, in one challenge.
		"challenge-403-insufficient-scope.txt": {Error: InsufficientScope, ErrorDescription: "the access token lacks a required scope", Scopes: []string{"mcp:read", "mcp:write"}, ResourceMetadata: prm},
	}
	for name, c := range cases {
		golden(t, name, c.String()+"\n")
	}
}

func TestChallengeQuoting(t *testing.T) {
	// PRM-10: values are quoted and escaped so parsers cannot be confused.
	got := Challenge{ErrorDescription: `a "quoted" \ value`}.String()
	if want := `Bearer error_description="a \"quoted\" \\ value"`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestWriteChallenge(t *testing.T) {
	w := httptest.NewRecorder()
	WriteChallenge(w, 403, Challenge{Error: InsufficientScope, Scopes: []string{"mcp"}})
	if w.Code != 403 || !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="insufficient_scope"`) {
		t.Fatalf("SCOPE-1: got %d %q, want 403 with error=\"insufficient_scope\"", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	if !strings.Contains(w.Body.String(), `"insufficient_scope"`) {
		t.Fatalf("body %s, want the error code insufficient_scope in it", w.Body)
	}
}
