package mcpgate_test

import (
	"context"
	"testing"
)

// SEC-162 (OpenID Connect Core §3.1.2.1): prompt=login asks the person to
// sign in again. A browser signed in as alice, whose client she approved,
// gets the consent page instead of a code, and its form sends her to sign
// in, where she may choose another account; the code is that account's,
// and the browser's session becomes that account's.
func TestSEC162_PromptLoginSignsInAgain(t *testing.T) {
	var seen string
	g := newGateway(t, whoami(&seen))
	if err := g.local.SetUser(context.Background(), "bob", hashed(bobPassword)); err != nil {
		t.Fatal(err)
	}
	c := g.register(nil)
	_, b := g.login(g.newAuth(c.ClientID)) // alice, approved, signed in

	// Without prompt=login, the signed-in browser gets alice's code at once.
	b.Username, b.Password = "bob", bobPassword
	a := g.newAuth(c.ClientID)
	code, _, _, err := b.Authorize(context.Background(), a.URL(), a.Redirect)
	if err != nil {
		t.Fatal(err)
	}
	_, tok := g.exchange(a, code)
	if r, _ := g.mcpInitialize(g.url, tok.AccessToken); r.StatusCode != 204 || seen != "local:"+testUser {
		t.Fatalf("without prompt=login: %d as %q, want the signed-in %s", r.StatusCode, seen, testUser)
	}

	a = g.newAuth(c.ClientID)
	code, _, _, err = b.Authorize(context.Background(), a.URL()+"&prompt=login", a.Redirect)
	if err != nil {
		t.Fatalf("prompt=login: %v, want a code after a sign-in", err)
	}
	_, tok = g.exchange(a, code)
	if r, _ := g.mcpInitialize(g.url, tok.AccessToken); r.StatusCode != 204 || seen != "local:bob" {
		t.Fatalf("prompt=login, signed in as bob: %d as %q, want local:bob", r.StatusCode, seen)
	}

	// The browser is bob's now: without prompt, a code at once, bob's
	// (he approved the client when he signed in).
	a = g.newAuth(c.ClientID)
	b.Username, b.Password = "nobody", "wrong-password"
	code, _, _, err = b.Authorize(context.Background(), a.URL(), a.Redirect)
	if err != nil {
		t.Fatal(err)
	}
	_, tok = g.exchange(a, code)
	if r, _ := g.mcpInitialize(g.url, tok.AccessToken); r.StatusCode != 204 || seen != "local:bob" {
		t.Errorf("after the sign-in again: %d as %q, want local:bob's session", r.StatusCode, seen)
	}
}
