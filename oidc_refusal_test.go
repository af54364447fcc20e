package mcpgate_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/mcpgate/mcpgate/internal/oidctest"
	"github.com/mcpgate/mcpgate/store/sqlite"
	"github.com/mcpgate/mcpgate/upstream"
	"github.com/mcpgate/mcpgate/upstream/oidc"
)

// forger sits between the OIDC connector and a real provider's token
// endpoint and forges what that provider would never issue to this
// client, for the code exchange only:
//   - "aud": the code is redeemed as the provider's other client, so the
//     provider signs a real ID token whose aud is "other";
//   - "sig": the ID token's payload is altered (sub changed) and its
//     signature kept, as an attacker in the middle would;
//   - "hs256": the same claims signed with HS256 keyed by the client
//     secret, which an attacker who knows it could (algorithm confusion);
//   - "none": the same claims unsigned (alg none);
//   - "down": no answer, as a provider that cannot be reached;
//   - "500": an HTTP 500 with server_error, as a provider that fails.
type forger struct {
	mu   sync.Mutex
	mode string
}

func (f *forger) set(mode string) { f.mu.Lock(); f.mode = mode; f.mu.Unlock() }

func (f *forger) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	mode := f.mode
	f.mu.Unlock()
	if mode == "" || r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/token") {
		return http.DefaultTransport.RoundTrip(r)
	}
	switch mode {
	case "down":
		return nil, errors.New("forger: connection refused")
	case "500":
		body := `{"error":"server_error","error_description":"database unavailable"}`
		return &http.Response{StatusCode: http.StatusInternalServerError, Status: "500 Internal Server Error", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: r}, nil
	}
	if mode == "aud" {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, err
		}
		if form.Has("client_id") {
			form.Set("client_id", "other")
		}
		if form.Has("client_secret") {
			form.Set("client_secret", "other-secret")
		}
		enc := form.Encode()
		r = r.Clone(r.Context())
		r.Body, r.ContentLength = io.NopCloser(strings.NewReader(enc)), int64(len(enc))
		r.Header.Set("Content-Length", strconv.Itoa(len(enc)))
		if _, _, ok := r.BasicAuth(); ok {
			r.SetBasicAuth("other", "other-secret")
		}
		return http.DefaultTransport.RoundTrip(r)
	}
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	var tr map[string]any
	if err := json.Unmarshal(body, &tr); err != nil {
		return nil, err
	}
	parts := strings.Split(tr["id_token"].(string), ".")
	b64 := base64.RawURLEncoding.EncodeToString
	switch mode {
	case "sig":
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			return nil, err
		}
		var claims map[string]any
		if err := json.Unmarshal(payload, &claims); err != nil {
			return nil, err
		}
		claims["sub"] = "u-someone-else"
		payload, _ = json.Marshal(claims)
		parts[1] = b64(payload)
	case "hs256":
		parts[0] = b64([]byte(`{"alg":"HS256","kid":"oidctest-1","typ":"JWT"}`))
		m := hmac.New(sha256.New, []byte("op-secret"))
		m.Write([]byte(parts[0] + "." + parts[1]))
		parts[2] = b64(m.Sum(nil))
	case "none":
		parts[0], parts[2] = b64([]byte(`{"alg":"none","typ":"JWT"}`)), ""
	}
	tr["id_token"] = strings.Join(parts, ".")
	body, _ = json.Marshal(tr)
	resp.Body, resp.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	resp.Header.Del("Content-Length")
	return resp, nil
}

// storedRows counts, in the SQLite file, what a login leaves behind: the
// pending request, codes, grants, refresh tokens, consents, browser
// sessions and the provider's sessions.
func storedRows(t *testing.T, ctx context.Context, dbPath string) map[string]int {
	t.Helper()
	db := rawDB(t, dbPath)
	rows := map[string]int{}
	for _, table := range []string{"auth_requests", "codes", "grants", "refresh_tokens", "consents", "sessions", "upstream_sessions"} {
		var n int
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Fatalf("count %s: %v", table, err)
		}
		rows[table] = n
	}
	return rows
}

// Every refusal of a login through a real OpenID provider (oidc-provider)
// leaves nothing behind: no code, grant, consent, browser session or
// session at the provider stored, the pending request consumed (its state
// cannot be replayed), no session cookie in the browser. Each ends at a
// page that says what happened, with a link that takes the OAuth error to
// the client, the log saying why: the provider's own refusals (a wrong
// password, an error answered to the callback) say the provider did not
// sign the person in (access_denied); a provider that cannot be reached,
// fails at its token endpoint or answers temporarily_unavailable says to
// try again (temporarily_unavailable); the ID tokens it would never give
// this login (another client's, another login's nonce, a payload altered
// after signing) say the sign-in could not be verified (access_denied). A
// person the access rules keep out (outside access.groups, an email at the
// allowed domain that the provider has not verified) gets the page that
// says so. The logins let in afterwards show the counts see what a login
// stores.
func TestOIDCRefusalsStoreNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ln, base := loopback(t)
	callback := base + "/callback/oidc"
	op := oidctest.Start(t, oidctest.Options{
		Clients: []oidctest.Client{
			{ID: "mcpgate", Secret: "op-secret", RedirectURIs: []string{callback}},
			{ID: "other", Secret: "other-secret", RedirectURIs: []string{callback}},
		},
		Users: []oidctest.User{
			{Sub: "u-staff", Email: "sam@elsewhere.example", EmailVerified: true, Username: "sam", Groups: []string{"staff"}, Password: "sam-pw"},
			{Sub: "u-out", Email: "olly@elsewhere.example", EmailVerified: true, Username: "olly", Groups: []string{"devs"}, Password: "olly-pw"},
			{Sub: "u-unverified", Email: "uma@corp.example", EmailVerified: false, Username: "uma", Groups: []string{"devs"}},
			{Sub: "u-verified", Email: "vic@corp.example", EmailVerified: true, Username: "vic", Groups: []string{"devs"}},
		},
	})
	forge := &forger{}
	con, err := oidc.New(ctx, oidc.Config{Issuer: op.Issuer(), ClientID: "mcpgate", ClientSecret: "op-secret", DisplayName: "Corp SSO",
		HTTPClient: &http.Client{Transport: forge, Timeout: 30 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(t.TempDir(), "mcpgate.db")
	st, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	g := newGatewayOn(t, ln, func(c *mcpgateConfig) {
		c.Store = st
		c.Connectors = []upstream.Connector{con}
		c.Access = mcpgate.Access{Groups: []string{"staff"}, EmailDomains: []string{"corp.example"}}
	})
	client := g.register(nil)

	// login walks one authorization to the provider, lets edit change the
	// request the browser takes there, signs in as sub with password, lets
	// editBack change the provider's answer, and walks it back through the
	// gateway: it returns the authorization response at the client, or the
	// page the walk stopped at, with the body of the last response.
	login := func(a *authRequest, b *browser.Browser, sub, password string, edit, editBack func(url.Values)) (*url.URL, *browser.PageError, string) {
		t.Helper()
		last := recording(b)
		toProvider, err := b.Walk(ctx, a.URL(), op.Issuer()+"/")
		if err != nil {
			t.Fatalf("authorize at the gateway: %v", err)
		}
		if edit != nil {
			q := toProvider.Query()
			edit(q)
			toProvider.RawQuery = q.Encode()
		}
		back := op.LoginWithPassword(t, b.Client, toProvider.String(), sub, password)
		if !strings.HasPrefix(back.String(), callback+"?") {
			t.Fatalf("the provider sent the browser to %s, want the gateway's callback", back)
		}
		if editBack != nil {
			q := back.Query()
			editBack(q)
			back.RawQuery = q.Encode()
		}
		done, err := b.Walk(ctx, back.String(), a.Redirect)
		var pe *browser.PageError
		if errors.As(err, &pe) {
			last.mu.Lock()
			defer last.mu.Unlock()
			return nil, pe, last.body
		}
		if err != nil {
			t.Fatalf("callback at the gateway: %v", err)
		}
		return done, nil, ""
	}
	nothingStored := func(t *testing.T, b *browser.Browser) {
		t.Helper()
		for table, n := range storedRows(t, ctx, dbPath) {
			if n != 0 {
				t.Errorf("%d rows in %s after a refused login, want none", n, table)
			}
		}
		gwURL, _ := url.Parse(g.url)
		for _, c := range b.Client.Jar.Cookies(gwURL) {
			if c.Name == "mcpgate_session" {
				t.Errorf("the browser holds a session cookie after a refused login")
			}
		}
	}

	// A provider's error_description is shown to nobody but the log: it
	// is the provider's text, written for developers, and this one would
	// speak on the gateway's page.
	const spoof = `<b>Call +1-555-0100 to unlock your account</b>`
	for _, tc := range []struct {
		name, sub, password string
		edit, editBack      func(url.Values)
		forge               string
		log                 string // why, in the gateway's log
		page                signInFailure
	}{
		{name: "wrong password", sub: "u-staff", password: "not-sams-pw", log: "access denied by the user (wrong user or password)", page: declinedAt("Corp SSO")},
		// prompt=none without a session at the provider: it answers
		// login_required to the callback.
		{name: "provider error", sub: "u-staff", password: "sam-pw", edit: func(q url.Values) { q.Set("prompt", "none") }, log: "authorization failed: login_required", page: declinedAt("Corp SSO")},
		{name: "provider declines with a description", sub: "u-staff", password: "sam-pw",
			editBack: func(q url.Values) { q.Del("code"); q.Set("error", "access_denied"); q.Set("error_description", spoof) },
			log:      "access denied by the user", page: declinedAt("Corp SSO")},
		{name: "provider temporarily unavailable", sub: "u-staff", password: "sam-pw",
			editBack: func(q url.Values) {
				q.Del("code")
				q.Set("error", "temporarily_unavailable")
				q.Set("error_description", spoof)
			},
			log: "authorization failed: temporarily_unavailable", page: unreachable("Corp SSO")},
		{name: "token endpoint unreachable", sub: "u-staff", password: "sam-pw", forge: "down", log: "forger: connection refused", page: unreachable("Corp SSO")},
		{name: "token endpoint fails", sub: "u-staff", password: "sam-pw", forge: "500", log: "server_error: database unavailable", page: unreachable("Corp SSO")},
		{name: "wrong aud", sub: "u-staff", password: "sam-pw", edit: func(q url.Values) { q.Set("client_id", "other") }, forge: "aud", log: "audience", page: unverifiedAt("Corp SSO")},
		{name: "wrong nonce", sub: "u-staff", password: "sam-pw", edit: func(q url.Values) { q.Set("nonce", "nonce-of-another-login") }, log: "nonce does not match this login", page: unverifiedAt("Corp SSO")},
		{name: "wrong signature", sub: "u-staff", password: "sam-pw", forge: "sig", log: "failed to verify signature", page: unverifiedAt("Corp SSO")},
		{name: "HS256 with the client secret", sub: "u-staff", password: "sam-pw", forge: "hs256", log: `unexpected signature algorithm \"HS256\"`, page: unverifiedAt("Corp SSO")},
		{name: "alg none", sub: "u-staff", password: "sam-pw", forge: "none", log: `unexpected signature algorithm \"none\"`, page: unverifiedAt("Corp SSO")},
		// SEC-168: the groups scope left out of the sign-in URL, which the
		// browser carries: the provider grants the rest and sends no
		// groups claim, and vic was let in without devs.
		{name: "groups scope left out", sub: "u-verified", edit: func(q url.Values) {
			q.Set("scope", strings.Join(slices.DeleteFunc(strings.Fields(q.Get("scope")), func(s string) bool { return s == "groups" }), " "))
		}, log: "without groups, which the login asked for", page: unverifiedAt("Corp SSO")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forge.set(tc.forge)
			defer forge.set("")
			a := g.newAuth(client.ClientID)
			b := browser.New("", "")
			logged := len(g.logs.String())
			_, pe, body := login(a, b, tc.sub, tc.password, tc.edit, tc.editBack)
			tc.page.check(t, pe, body, a, g.url)
			if strings.Contains(body, "555-0100") {
				t.Errorf("the page shows the provider's error_description:\n%s", body)
			}
			if logs := g.logs.String()[logged:]; !strings.Contains(logs, `msg="upstream login failed" connector=oidc`) || !strings.Contains(logs, tc.log) {
				t.Errorf("the log does not say the login failed with %q:\n%s", tc.log, logs)
			}
			nothingStored(t, b)
		})
	}

	for _, tc := range []struct{ name, sub, password, account string }{
		{"outside access.groups", "u-out", "olly-pw", "olly"},
		{"unverified email at the allowed domain", "u-unverified", "", "uma"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := g.newAuth(client.ClientID)
			b := browser.New("", "")
			logged := len(g.logs.String())
			done, pe, body := login(a, b, tc.sub, tc.password, nil, nil)
			if pe == nil {
				t.Fatalf("the walk ended at %s; want the page that says the account may not enter", done)
			}
			want := "You signed in as " + tc.account + " (Corp SSO), and this account is not allowed to use this server. " +
				"To use another account, go back to the application and connect again."
			if pe.Status != http.StatusForbidden || !strings.Contains(pe.Text, "This account may not use this server") || !strings.Contains(pe.Text, want) {
				t.Fatalf("page %d %q; want 403 titled This account may not use this server, saying %q", pe.Status, pe.Text, want)
			}
			back, err := url.Parse(html.UnescapeString(between(body, `id="back" href="`, `"`)))
			if err != nil || !strings.HasPrefix(back.String(), a.Redirect+"?") {
				t.Fatalf("the page's link back %q (%v); want one to %s", back, err, a.Redirect)
			}
			if q := back.Query(); q.Get("error") != "access_denied" || q.Get("state") != a.State || q.Get("iss") != g.url || q.Has("code") {
				t.Fatalf("the link back gives the client %v; want access_denied with state and iss, no code", q)
			}
			if logs := g.logs.String()[logged:]; !strings.Contains(logs, `msg="access refused" user=oidc:`+tc.sub+" rule=access ") {
				t.Errorf("the log does not say rule access refused oidc:%s:\n%s", tc.sub, logs)
			}
			nothingStored(t, b)
		})
	}

	// Let in, by group and by a verified email at the domain: each login
	// stores its code, consent, browser session and provider session.
	for i, sub := range []string{"u-staff", "u-verified"} {
		a := g.newAuth(client.ClientID)
		b := browser.New("", "")
		done, pe, _ := login(a, b, sub, map[string]string{"u-staff": "sam-pw"}[sub], nil, nil)
		if pe != nil || done.Query().Get("code") == "" {
			t.Fatalf("%s: %v %v; want a code", sub, pe, done)
		}
		rows := storedRows(t, ctx, dbPath)
		for _, table := range []string{"codes", "consents", "sessions", "upstream_sessions"} {
			if rows[table] != i+1 {
				t.Errorf("after %d logins let in: %d rows in %s, want %d", i+1, rows[table], table, i+1)
			}
		}
	}
}
