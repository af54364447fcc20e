package githubtest_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/upstream/github/githubtest"
)

const (
	id       = "client-id"
	secret   = "client-secret"
	callback = "http://app.example/cb"
)

var mona = githubtest.User{
	ID: 1, Login: "mona", Name: "Mona Lisa",
	Emails: []githubtest.Email{{Email: "mona@example.com", Primary: true, Verified: true}},
}

func newServer(t *testing.T) *githubtest.Server {
	s := githubtest.NewServer(t, id, secret)
	s.AddUser(mona)
	return s
}

func noRedirect(s *githubtest.Server) *http.Client {
	c := s.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

// authorize runs GET /login/oauth/authorize and returns the status and the
// redirect's query.
func authorize(t *testing.T, s *githubtest.Server, params url.Values) (int, *url.URL) {
	t.Helper()
	resp, err := noRedirect(s).Get(s.AuthURL() + "?" + params.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	return resp.StatusCode, loc
}

func code(t *testing.T, s *githubtest.Server, extra url.Values) string {
	t.Helper()
	p := url.Values{"client_id": {id}, "redirect_uri": {callback}, "state": {"st"}, "scope": {"read:user user:email"}}
	for k, v := range extra {
		p[k] = v
	}
	status, loc := authorize(t, s, p)
	if status != http.StatusFound || loc.Query().Get("code") == "" || loc.Query().Get("state") != "st" {
		t.Fatalf("authorize = %d %v, want 302 with a code and state st", status, loc)
	}
	return loc.Query().Get("code")
}

func exchange(t *testing.T, s *githubtest.Server, form url.Values, accept string, basic bool) (http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.TokenURL(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if basic {
		req.SetBasicAuth(id, secret)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token endpoint answered %s; GitHub answers 200 even for errors", resp.Status)
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.Header, string(b)
}

func TestTokenFormats(t *testing.T) {
	s := newServer(t)
	form := func() url.Values {
		return url.Values{"client_id": {id}, "client_secret": {secret}, "code": {code(t, s, nil)}, "redirect_uri": {callback}}
	}

	h, body := exchange(t, s, form(), "", false)
	if !strings.HasPrefix(h.Get("Content-Type"), "application/x-www-form-urlencoded") {
		t.Errorf("default Content-Type = %q, want application/x-www-form-urlencoded", h.Get("Content-Type"))
	}
	v, _ := url.ParseQuery(body)
	if !strings.HasPrefix(v.Get("access_token"), "gho_") || v.Get("token_type") != "bearer" || v.Get("scope") != "read:user,user:email" {
		t.Errorf("form response = %q, want a gho_ bearer token with scope read:user,user:email", body)
	}

	h, body = exchange(t, s, form(), "application/json", false)
	var j map[string]string
	if err := json.Unmarshal([]byte(body), &j); err != nil || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		t.Fatalf("JSON response %q (%v), Content-Type %q; want a JSON object as application/json", body, err, h.Get("Content-Type"))
	}
	if !strings.HasPrefix(j["access_token"], "gho_") || j["scope"] != "read:user,user:email" {
		t.Errorf("JSON response = %q, want a gho_ token with scope read:user,user:email", body)
	}

	_, body = exchange(t, s, form(), "application/xml", false)
	if !strings.HasPrefix(body, "<OAuth><access_token>gho_") {
		t.Errorf("XML response = %q, want <OAuth><access_token>gho_…", body)
	}

	// Client credentials in Basic auth instead of the body.
	f := form()
	f.Del("client_id")
	f.Del("client_secret")
	_, body = exchange(t, s, f, "application/json", true)
	if !strings.Contains(body, `"access_token"`) {
		t.Errorf("Basic-authenticated exchange = %q, want an access_token", body)
	}
}

func TestTokenErrors(t *testing.T) {
	s := newServer(t)
	c := code(t, s, nil)
	_, body := exchange(t, s, url.Values{"client_id": {id}, "client_secret": {"wrong"}, "code": {c}}, "application/json", false)
	if !strings.Contains(body, `"error":"incorrect_client_credentials"`) {
		t.Errorf("wrong secret: %s, want incorrect_client_credentials", body)
	}
	// A failed client authentication does not use the code up.
	good := url.Values{"client_id": {id}, "client_secret": {secret}, "code": {c}}
	if _, body := exchange(t, s, good, "application/json", false); !strings.Contains(body, "access_token") {
		t.Fatalf("exchange after a wrong secret: %s, want an access_token", body)
	}
	// Single use.
	_, body = exchange(t, s, good, "", false)
	if v, _ := url.ParseQuery(body); v.Get("error") != "bad_verification_code" {
		t.Errorf("second use of a code: %s, want bad_verification_code", body)
	}
	// redirect_uri must match the one sent to authorize.
	c = code(t, s, nil)
	_, body = exchange(t, s, url.Values{"client_id": {id}, "client_secret": {secret}, "code": {c}, "redirect_uri": {callback + "/x"}}, "application/json", false)
	if !strings.Contains(body, "redirect_uri_mismatch") {
		t.Errorf("other redirect_uri: %s, want redirect_uri_mismatch", body)
	}
	// Codes expire after ten minutes.
	c = code(t, s, nil)
	s.Advance(10*time.Minute + time.Second)
	_, body = exchange(t, s, url.Values{"client_id": {id}, "client_secret": {secret}, "code": {c}}, "application/json", false)
	if !strings.Contains(body, "bad_verification_code") {
		t.Errorf("expired code: %s, want bad_verification_code", body)
	}
}

func TestPKCE(t *testing.T) {
	s := newServer(t)
	verifier := strings.Repeat("v", 43)
	sum := sha256.Sum256([]byte(verifier))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])
	pkce := url.Values{"code_challenge": {challenge}, "code_challenge_method": {"S256"}}

	for _, v := range []string{"", strings.Repeat("w", 43)} {
		c := code(t, s, pkce)
		_, body := exchange(t, s, url.Values{"client_id": {id}, "client_secret": {secret}, "code": {c}, "code_verifier": {v}}, "application/json", false)
		if !strings.Contains(body, "bad_verification_code") {
			t.Errorf("verifier %q: %s, want bad_verification_code", v, body)
		}
	}
	c := code(t, s, pkce)
	_, body := exchange(t, s, url.Values{"client_id": {id}, "client_secret": {secret}, "code": {c}, "code_verifier": {verifier}}, "application/json", false)
	if !strings.Contains(body, "access_token") {
		t.Errorf("right verifier: %s, want an access_token", body)
	}

	// Only S256, and only with a well-formed challenge.
	for _, p := range []url.Values{
		{"code_challenge": {challenge}, "code_challenge_method": {"plain"}},
		{"code_challenge": {challenge}},
		{"code_challenge_method": {"S256"}},
		{"code_challenge": {"short"}, "code_challenge_method": {"S256"}},
	} {
		p.Set("client_id", id)
		p.Set("redirect_uri", callback)
		p.Set("state", "st")
		if status, _ := authorize(t, s, p); status != http.StatusBadRequest {
			t.Errorf("authorize with %v = %d, want 400", p, status)
		}
	}
}

func TestAuthorizeErrors(t *testing.T) {
	s := newServer(t)
	s.SetCallbackURL(callback)
	if status, _ := authorize(t, s, url.Values{"client_id": {"other"}, "state": {"st"}}); status != http.StatusNotFound {
		t.Errorf("unknown client_id = %d, want 404", status)
	}
	status, loc := authorize(t, s, url.Values{"client_id": {id}, "redirect_uri": {"http://evil.example/cb"}, "state": {"st"}})
	if status != http.StatusFound || !strings.HasPrefix(loc.String(), callback+"?") || loc.Query().Get("error") != "redirect_uri_mismatch" {
		t.Errorf("foreign redirect_uri = %d %v, want redirect_uri_mismatch at the registered callback", status, loc)
	}
	// Omitted redirect_uri: the registered callback.
	status, loc = authorize(t, s, url.Values{"client_id": {id}, "state": {"st"}})
	if status != http.StatusFound || !strings.HasPrefix(loc.String(), callback+"?") || loc.Query().Get("code") == "" {
		t.Errorf("no redirect_uri = %d %v, want 302 with a code to the registered callback", status, loc)
	}
	s.SetDeny(true)
	_, loc = authorize(t, s, url.Values{"client_id": {id}, "redirect_uri": {callback}, "state": {"st"}})
	if loc.Query().Get("error") != "access_denied" || loc.Query().Get("state") != "st" || loc.Query().Get("code") != "" {
		t.Errorf("denied = %v, want access_denied with state st and no code", loc)
	}
}

// The examples of GitHub's "Redirect URLs" documentation.
func TestRedirectMatches(t *testing.T) {
	const cb = "http://example.com/path"
	for _, tt := range []struct {
		cb, redirect string
		ok           bool
	}{
		{cb, "http://example.com/path", true},
		{cb, "http://example.com/path/subdir/other", true},
		{cb, "http://oauth.example.com/path", true},
		{cb, "http://oauth.example.com/path/subdir/other", true},
		{cb, "http://example.com/bar", false},
		{cb, "http://example.com/", false},
		{cb, "http://example.com:8080/path", false},
		{cb, "http://oauth.example.com:8080/path", false},
		{cb, "http://example.org", false},
		{cb, "http://example.com/pathological", false},
		{cb, "https://example.com/path", false},
		{"http://127.0.0.1/path", "http://127.0.0.1:1234/path", true},
		{"http://localhost/path", "http://localhost:1234/path", true},
	} {
		if got := githubtest.RedirectMatches(tt.cb, tt.redirect); got != tt.ok {
			t.Errorf("RedirectMatches(%q, %q) = %v, want %v", tt.cb, tt.redirect, got, tt.ok)
		}
	}
}

func api(t *testing.T, s *githubtest.Server, path, auth string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.APIURL()+path, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestAPI(t *testing.T) {
	s := newServer(t)
	tok := s.IssueToken(1, "read:user", "user:email")

	for _, auth := range []string{"Bearer " + tok, "token " + tok} {
		status, _, body := api(t, s, "/user", auth)
		var u map[string]any
		json.Unmarshal([]byte(body), &u)
		if status != 200 || u["login"] != "mona" || u["id"] != float64(1) || u["html_url"] != "https://github.com/mona" {
			t.Errorf("GET /user with %q = %d %s, want 200 for mona (id 1)", strings.Fields(auth)[0], status, body)
		}
	}
	if status, _, body := api(t, s, "/user", ""); status != 401 || !strings.Contains(body, "Requires authentication") {
		t.Errorf("no credentials = %d %s, want 401 Requires authentication", status, body)
	}
	if status, _, body := api(t, s, "/user", "Bearer gho_nope"); status != 401 || !strings.Contains(body, `"message":"Bad credentials"`) {
		t.Errorf("bad token = %d %s, want 401 Bad credentials", status, body)
	}
	s.RevokeTokens()
	if status, _, _ := api(t, s, "/user", "Bearer "+tok); status != 401 {
		t.Errorf("revoked token = %d, want 401", status)
	}

	// /user/emails needs user:email.
	narrow := s.IssueToken(1, "read:user")
	if status, _, _ := api(t, s, "/user/emails", "Bearer "+narrow); status != 404 {
		t.Errorf("/user/emails without user:email = %d, want 404", status)
	}
}

func TestEmailsPagination(t *testing.T) {
	s := githubtest.NewServer(t, id, secret)
	u := githubtest.User{ID: 2, Login: "many"}
	for i := range 35 {
		u.Emails = append(u.Emails, githubtest.Email{Email: strings.Repeat("x", i+1) + "@example.com", Primary: i == 34, Verified: true})
	}
	s.AddUser(u)
	tok := s.IssueToken(2, "user")
	status, h, body := api(t, s, "/user/emails", "Bearer "+tok)
	var page []map[string]any
	json.Unmarshal([]byte(body), &page)
	if status != 200 || len(page) != 30 || !strings.Contains(h.Get("Link"), `rel="next"`) {
		t.Fatalf("first page = %d, %d entries, Link %q; want 200, 30 entries and a next link", status, len(page), h.Get("Link"))
	}
	if page[0]["visibility"] != nil {
		t.Errorf("visibility of a non-primary address = %v, want null", page[0]["visibility"])
	}
	_, h, body = api(t, s, "/user/emails?page=2", "Bearer "+tok)
	json.Unmarshal([]byte(body), &page)
	if len(page) != 5 || page[4]["primary"] != true || page[4]["visibility"] != "private" || h.Get("Link") != "" {
		t.Errorf("second page = %s, Link %q; want the last 5, the primary private one last, and no Link", body, h.Get("Link"))
	}
	_, _, body = api(t, s, "/user/emails?per_page=100", "Bearer "+tok)
	json.Unmarshal([]byte(body), &page)
	if len(page) != 35 {
		t.Errorf("per_page=100 gave %d entries, want 35", len(page))
	}
}
