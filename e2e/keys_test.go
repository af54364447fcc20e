package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runBinary runs `mcpgate args…` to its end and returns its exit status,
// stdout and stderr.
func runBinary(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return runBinaryWith(t, nil, "", args...)
}

// headerKid reads the kid of a JWS's header.
func headerKid(t *testing.T, tok string) string {
	t.Helper()
	head, _, _ := strings.Cut(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	json.Unmarshal(raw, &h)
	return h.Kid
}

func publishedKids(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// The binary, end to end: `mcpgate keys new-secret` makes a key file that
// serve reads with --secret-key-file; `mcpgate keys rotate` with the same
// settings makes a new signing key that the running gateway signs with
// within its 15 s reload while the old key's tokens keep working and both
// keys are published; another key file is refused by rotate and by serve,
// each with the message that says what to do.
func TestBinaryKeysRotate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	code, out, errOut := runBinary(t, "keys", "new-secret")
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(out))
	if code != 0 || err != nil || len(key) != 32 || !strings.HasSuffix(out, "\n") {
		t.Fatalf("keys new-secret: %d %q %s, want 32 bytes in standard base64 and a newline", code, out, errOut)
	}
	keyText := strings.TrimSpace(out)
	keyFile := filepath.Join(t.TempDir(), "secret.key")
	if err := os.WriteFile(keyFile, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	settings := []string{"--data-dir", dir, "--secret-key-file", keyFile}
	port := freePort(t)
	p := startBinary(t, port, append(settings, "--local-user", user+":"+password)...)
	if _, err := os.Stat(filepath.Join(dir, "secret.key")); err == nil {
		t.Fatal("serve created DATA-DIR/secret.key although --secret-key-file was given")
	}

	h, _ := oauthClient(t)
	whoami(t, ctx, mcpStreamable{p.base + "/mcp", h}.transport())
	ts, _ := h.TokenSource(ctx)
	first, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	oldKid := headerKid(t, first.AccessToken)
	clientID := clientIDOf(t, first.AccessToken)

	code, out, errOut = runBinary(t, append([]string{"keys", "rotate"}, settings...)...)
	if code != 0 || !strings.Contains(out, "New signing key ") {
		t.Fatalf("keys rotate: %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	newKid := strings.Fields(strings.TrimPrefix(out, "New signing key "))[0]
	newKid = strings.TrimSuffix(newKid, ".")
	if newKid == oldKid {
		t.Fatalf("rotate kept the kid %s", oldKid)
	}
	// The gateway publishes the new key within its reload (15 s) and
	// signs with it from 110 s after the rotation, with a reload's delay
	// (SEC-179).
	rt := first.RefreshToken
	// Published first: within 30 s the JWKS holds the new key, while the
	// tokens are still the old one's (it signs 110 s on: a wide margin).
	for published := time.Now().Add(30 * time.Second); !strings.Contains(publishedKids(t, p.base), newKid); time.Sleep(500 * time.Millisecond) {
		if time.Now().After(published) {
			t.Fatalf("the JWKS lacks the new key %s 30 s after the rotation", newKid)
		}
	}
	if status, m := refresh(t, p.base, clientID, rt); status != 200 || headerKid(t, m["access_token"].(string)) != oldKid {
		t.Fatalf("refresh once the new key is published: %d, want 200 and a token of the old key %s, the new one not signing yet", status, oldKid)
	} else {
		rt = m["refresh_token"].(string)
	}
	deadline := time.Now().Add(3 * time.Minute)
	var at string
	for {
		status, m := refresh(t, p.base, clientID, rt)
		if status != 200 {
			t.Fatalf("refresh: %d %v", status, m)
		}
		rt, at = m["refresh_token"].(string), m["access_token"].(string)
		if headerKid(t, at) == newKid {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still signing with %s, want %s", headerKid(t, at), newKid)
		}
		time.Sleep(500 * time.Millisecond)
	}
	whoami(t, ctx, staticTransport(p.base+"/mcp", at))
	whoami(t, ctx, staticTransport(p.base+"/mcp", first.AccessToken)) // the old key's token still verifies
	if jwks := publishedKids(t, p.base); !strings.Contains(jwks, oldKid) || !strings.Contains(jwks, newKid) {
		t.Fatalf("JWKS %s, want both %s and %s", jwks, oldKid, newKid)
	}

	other := filepath.Join(t.TempDir(), "other.key")
	_, otherKey, _ := runBinary(t, "keys", "new-secret")
	os.WriteFile(other, []byte(otherKey), 0o600)
	wrong := []string{"--data-dir", dir, "--secret-key-file", other}
	code, _, errOut = runBinary(t, append([]string{"keys", "rotate"}, wrong...)...)
	if code != 1 || !strings.Contains(errOut, "the secret key is not the one this store's data was sealed with") {
		t.Fatalf("keys rotate with another key: %d %s, want 1 and the mismatch", code, errOut)
	}
	code, _, errOut = runBinary(t, append([]string{"serve", "--listen", "127.0.0.1:0"}, wrong...)...)
	if code != 1 || !strings.Contains(errOut, "the secret key is not the one this store's data was sealed with") ||
		!strings.Contains(errOut, "--secret-key-file") {
		t.Fatalf("serve with another key: %d %s, want 1 and the mismatch naming --secret-key-file", code, errOut)
	}
	code, _, errOut = runBinary(t, "serve", "--listen", "127.0.0.1:0", "--data-dir", dir, "--secret-key-file", filepath.Join(dir, "missing.key"))
	if code != 1 || !strings.Contains(errOut, "mcpgate keys new-secret") {
		t.Fatalf("serve with a missing key file: %d %s, want 1 and how to make one", code, errOut)
	}
	p.stop(t)
	if strings.Contains(p.Stderr()+p.Stdout(), keyText) {
		t.Fatal("the secret key reached the log")
	}
}
