package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/mcpgate/mcpgate/e2e/cdp"
	"github.com/mcpgate/mcpgate/internal/oidctest"
)

// twoProviders starts two OpenID providers, corp-a and corp-b, each with
// the user u-1 (password pw-a at corp-a, pw-b at corp-b), and the binary
// configured with both through the file's oidc_providers; with flags, the
// flags' provider oidc is corp-a's issuer as well.
func twoProviders(t *testing.T, flags bool) (p *process, a, b *oidctest.Provider) {
	t.Helper()
	port := freePort(t)
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	a = oidctest.Start(t, oidctest.Options{
		Clients: []oidctest.Client{{ID: "mcpgate-a", Secret: "a-s3cret", RedirectURIs: []string{base + "/callback/corp-a", base + "/callback/oidc"}}},
		Users:   []oidctest.User{{Sub: "u-1", Email: "ann@a.example", EmailVerified: true, Username: "ann", Groups: []string{"a-devs"}, Password: "pw-a"}},
	})
	b = oidctest.Start(t, oidctest.Options{
		Clients: []oidctest.Client{{ID: "mcpgate-b", RedirectURIs: []string{base + "/callback/corp-b"}}},
		Users:   []oidctest.User{{Sub: "u-1", Email: "bob@b.example", EmailVerified: true, Username: "bob", Groups: []string{"b-ops"}, Password: "pw-b"}},
	})
	dir := t.TempDir()
	secret := filepath.Join(dir, "corp-a.secret")
	if err := os.WriteFile(secret, []byte("a-s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "mcpgate.yaml")
	yaml := fmt.Sprintf(`oidc_providers:
  - name: corp-a
    display_name: Corp A
    issuer: %s
    client_id: mcpgate-a
    client_secret_file: %s
  - name: corp-b
    display_name: Corp B
    issuer: %s
    client_id: mcpgate-b
`, a.Issuer(), secret, b.Issuer())
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--config", file, "--data-dir", filepath.Join(dir, "data")}
	if flags {
		args = append(args, "--oidc-issuer", a.Issuer(), "--oidc-client-id", "mcpgate-a", "--oidc-client-secret", "a-s3cret")
	}
	return startBinary(t, port, args...), a, b
}

// Several providers at once, over plain HTTP: the flags' oidc and the
// file's corp-a and corp-b (corp-a at the same issuer as oidc), each chosen
// on the consent page in turn, sign in the same sub u-1, and whoami shows
// three different users, oidc:u-1, corp-a:u-1 and corp-b:u-1, each with its
// own provider's claims: one provider's user is never another's.
func TestBinaryOIDCSeveralProviders(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p, a, b := twoProviders(t, true)
	defer p.stop(t)
	for _, tc := range []struct {
		connector string
		op        *oidctest.Provider
		email     string
	}{
		{"corp-b", b, "bob@b.example"},
		{"corp-a", a, "ann@a.example"},
		{"oidc", a, "ann@a.example"},
	} {
		redirect := "http://127.0.0.1:1/oidc-multi/cb"
		authz := newChromiumAuthz(p.base, chromiumRegister(t, p.base, "oidc-multi", redirect), redirect)
		br := browser.New("", "")
		br.Fields = map[string]string{"connector": tc.connector}
		toProvider, err := br.Walk(ctx, authz.url(), tc.op.Issuer()+"/")
		if err != nil {
			t.Fatalf("%s: authorize at mcpgate: %v\n%s", tc.connector, err, p.Stderr())
		}
		if toProvider.Query().Get("redirect_uri") != p.base+"/callback/"+tc.connector {
			t.Fatalf("%s: sent to the provider with %s; want the callback /callback/%s", tc.connector, toProvider, tc.connector)
		}
		back := tc.op.Login(t, br.Client, toProvider.String(), "u-1")
		done, err := br.Walk(ctx, back.String(), redirect)
		if err != nil {
			t.Fatalf("%s: callback at mcpgate: %v\n%s", tc.connector, err, p.Stderr())
		}
		u, _ := whoami(t, ctx, staticTransport(p.base+"/mcp", authz.exchange(t, authz.check(t, done.String()))))["user"].(map[string]any)
		if u["sub"] != tc.connector+":u-1" || u["upstream"] != tc.connector || u["email"] != tc.email {
			t.Fatalf("chose %s: whoami user %v; want sub %s:u-1 with %s", tc.connector, u, tc.connector, tc.email)
		}
	}
	if strings.Contains(p.settledStderr(t), "a-s3cret") {
		t.Fatal("a client secret reached the log")
	}
}

// A real Chromium at a gateway with two providers from the file: the
// consent page lists both by display name, the person picks the second,
// signs in at that provider's own login form, and Chromium is sent to the
// client's redirect URI with a code that is corp-b:u-1's.
func TestChromiumChoosesProvider(t *testing.T) {
	path := chromiumPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, _, opB := twoProviders(t, false)
	defer p.stop(t)
	cb := fmt.Sprintf("http://127.0.0.1:%d/callback", freePort(t))
	authz := newChromiumAuthz(p.base, chromiumRegister(t, p.base, "Chooser Client", cb), cb)

	br, err := cdp.Launch(ctx, path)
	if err != nil {
		t.Fatalf("launching Chromium (%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := br.Close(); err != nil {
			t.Errorf("closing Chromium: %v", err)
		}
	})
	callback := br.ExpectRequest(cb)
	defer callback.Stop()
	if err := br.Navigate(ctx, authz.url()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, br, `document.querySelector("select[name=connector]")`)
	var options []string
	if err := br.Eval(ctx, `Array.from(document.querySelectorAll("select[name=connector] option")).map(o => o.value + "=" + o.text)`, &options); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(options, ","); got != "corp-a=Corp A,corp-b=Corp B" {
		t.Fatalf("the consent page offers %q; want corp-a=Corp A,corp-b=Corp B", got)
	}
	click(t, ctx, br, `(() => {
	document.querySelector("select[name=connector]").value = "corp-b";
	return document.querySelector("button[name=decision][value=allow]");
})()`)

	waitFor(t, ctx, br, `location.origin === `+jsString(strings.TrimSuffix(opB.Issuer(), "/"))+` && document.querySelector("input[name=password]")`)
	click(t, ctx, br, `(() => {
	const form = document.querySelector("input[name=password]").form;
	form.querySelector("input[name=username]").value = "u-1";
	form.querySelector("input[name=password]").value = "pw-b";
	return form.querySelector("button[type=submit]");
})()`)
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	req, err := callback.Wait(wctx)
	if err != nil {
		t.Fatalf("Chromium never requested the redirect URI: %v\n%s", err, p.Stderr())
	}
	if req.RedirectedBy == nil || req.RedirectedBy.Status != http.StatusFound || !strings.HasPrefix(req.RedirectedBy.URL, p.base+"/callback/corp-b") {
		t.Fatalf("the redirect URI was not reached by a 302 from mcpgate's /callback/corp-b: %+v", req.RedirectedBy)
	}
	token := authz.exchange(t, authz.check(t, req.URL))
	u, _ := whoami(t, ctx, staticTransport(p.base+"/mcp", token))["user"].(map[string]any)
	if u["sub"] != "corp-b:u-1" || u["email"] != "bob@b.example" {
		t.Fatalf("whoami user %v; want corp-b:u-1 with bob@b.example", u)
	}
}
