package githubtest

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// APIVersion is the only X-GitHub-Api-Version the fake accepts; requests
// without the header get it too, as on GitHub.
const APIVersion = "2022-11-28"

// codeLifetime is how long an authorization code lives on GitHub.
const codeLifetime = 10 * time.Minute

// Email is one address of a user, as GET /user/emails lists it.
type Email struct {
	Email    string
	Primary  bool
	Verified bool
}

// User is an account on the fake.
type User struct {
	ID    int64
	Login string
	// Name is the profile name; empty is sent as null, like GitHub does
	// for accounts that never set one.
	Name string
	// PublicEmail is the profile's public address ("email" in GET /user),
	// empty for null. GitHub does not say whether it is verified.
	PublicEmail string
	// AvatarURL defaults to https://avatars.githubusercontent.com/u/{id}?v=4.
	AvatarURL string
	Emails    []Email
	// Orgs are the logins of the organizations the user belongs to (GET
	// /user/orgs); Teams the teams (GET /user/teams). Both need the token
	// to carry read:org (or user, or admin:org).
	Orgs  []string
	Teams []Team
	// Unauthorized are those of Orgs that enforce SAML single sign-on
	// which the user's tokens are not authorized for (no SAML session when
	// they authorized the app): GitHub leaves them, and their teams, out
	// of the lists and says so in X-GitHub-SSO.
	Unauthorized []string
}

// Team is a team the user is on: its organization's login and its slug.
type Team struct {
	Org  string
	Slug string
}

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	// URL is the fake's base URL: it serves both github.com's paths and
	// api.github.com's, so AuthURL, TokenURL and APIURL all point here.
	URL          string
	ClientID     string
	ClientSecret string

	srv *httptest.Server

	mu          sync.Mutex
	callbackURL string
	offset      time.Duration // added to time.Now, see Advance
	users       map[int64]*User
	current     int64
	deny        bool
	codes       map[string]*authCode
	tokens      map[string]*accessToken
	issued      []string
}

type authCode struct {
	clientID    string
	redirectURI string // as sent to authorize; "" when omitted
	challenge   string // PKCE S256 challenge; "" when none
	scopes      []string
	userID      int64
	expires     time.Time
	used        bool
}

type accessToken struct {
	userID int64
	scopes []string
}

// NewServer starts a fake with one registered OAuth app and stops it when
// the test ends.
func NewServer(t testing.TB, clientID, clientSecret string) *Server {
	s := &Server{
		ClientID:     clientID,
		ClientSecret: clientSecret,
		users:        make(map[int64]*User),
		codes:        make(map[string]*authCode),
		tokens:       make(map[string]*accessToken),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login/oauth/authorize", s.authorize)
	mux.HandleFunc("POST /login/oauth/access_token", s.accessToken)
	mux.HandleFunc("GET /user", s.user)
	mux.HandleFunc("GET /user/emails", s.emails)
	mux.HandleFunc("GET /user/orgs", s.orgs)
	mux.HandleFunc("GET /user/teams", s.teams)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, http.StatusNotFound, "Not Found", "https://docs.github.com/rest")
	})
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// AuthURL is the fake's https://github.com/login/oauth/authorize.
func (s *Server) AuthURL() string { return s.URL + "/login/oauth/authorize" }

// TokenURL is the fake's https://github.com/login/oauth/access_token.
func (s *Server) TokenURL() string { return s.URL + "/login/oauth/access_token" }

// APIURL is the fake's https://api.github.com.
func (s *Server) APIURL() string { return s.URL }

// Client returns an HTTP client for the fake.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Close stops the fake early; NewServer already arranged for it at cleanup.
func (s *Server) Close() { s.srv.Close() }

// AddUser adds or replaces an account. The first account added becomes the
// current user.
func (s *Server) AddUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u.Emails = slices.Clone(u.Emails)
	s.users[u.ID] = &u
	if s.current == 0 {
		s.current = u.ID
	}
}

// SetCurrentUser makes id the account signed in at the fake's github.com:
// the one that approves the next authorization requests.
func (s *Server) SetCurrentUser(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.current = id
}

// SetCallbackURL registers the app's callback URL. redirect_uri must then
// match it as GitHub requires: same host or a sub-domain of it, same port
// (any port for a loopback callback), and the same path or a path below it.
// With no callback URL registered, any absolute http(s) redirect_uri is
// accepted.
func (s *Server) SetCallbackURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.callbackURL = u
}

// SetDeny makes the current user cancel (true) or approve (false) the
// following authorization requests.
func (s *Server) SetDeny(deny bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deny = deny
}

// Advance moves the fake's clock, for expiring codes.
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offset += d
}

// IssueToken mints an access token for a user, as if the flow had run with
// scopes (a personal access token, in effect).
func (s *Server) IssueToken(userID int64, scopes ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issueLocked(userID, scopes)
}

// Tokens returns every access token the fake issued, revoked or not, so a
// test can check that none leaked into an error message or a log.
func (s *Server) Tokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.issued)
}

// RevokeTokens invalidates every access token issued so far.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

func (s *Server) now() time.Time { return time.Now().Add(s.offset) }

func (s *Server) issueLocked(userID int64, scopes []string) string {
	tok := "gho_" + randomString(36)
	s.tokens[tok] = &accessToken{userID: userID, scopes: slices.Clone(scopes)}
	s.issued = append(s.issued, tok)
	return tok
}

// authorize is GET /login/oauth/authorize: validate, then sign in and
// approve as the current user, and redirect back with a code.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()

	if q.Get("client_id") != s.ClientID {
		// GitHub shows a 404 page for an unknown application.
		http.Error(w, "404: the OAuth application with this client_id was not found", http.StatusNotFound)
		return
	}
	state := q.Get("state")
	redirect := q.Get("redirect_uri")
	switch {
	case redirect == "" && s.callbackURL == "":
		http.Error(w, "githubtest: no redirect_uri and no callback URL registered", http.StatusBadRequest)
		return
	case s.callbackURL != "" && redirect != "" && !RedirectMatches(s.callbackURL, redirect):
		// As documented: back to the registered callback URL, with the error.
		redirectWith(w, r, s.callbackURL, url.Values{
			"error":             {"redirect_uri_mismatch"},
			"error_description": {"The redirect_uri MUST match the registered callback URL for this application."},
			"error_uri":         {"https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#redirect-uri-mismatch"},
			"state":             {state},
		})
		return
	case s.callbackURL == "" && !absoluteHTTP(redirect):
		http.Error(w, "githubtest: redirect_uri is not an absolute http(s) URL", http.StatusBadRequest)
		return
	}
	target := redirect
	if target == "" {
		target = s.callbackURL
	}
	if state == "" {
		http.Error(w, "githubtest: state is missing (GitHub allows that; mcpgate must never omit it)", http.StatusBadRequest)
		return
	}

	// PKCE (RFC 7636): GitHub accepts only S256, and both parameters together.
	challenge, method := q.Get("code_challenge"), q.Get("code_challenge_method")
	if challenge != "" || method != "" {
		if method != "S256" {
			http.Error(w, "code_challenge_method must be S256", http.StatusBadRequest)
			return
		}
		if !validChallenge(challenge) {
			http.Error(w, "code_challenge must be a 43 character base64url SHA-256 hash", http.StatusBadRequest)
			return
		}
	}

	user := s.users[s.current]
	if user == nil {
		http.Error(w, "githubtest: no current user to sign in as (AddUser first)", http.StatusBadRequest)
		return
	}
	if s.deny {
		redirectWith(w, r, target, url.Values{
			"error":             {"access_denied"},
			"error_description": {"The user has denied your application access."},
			"error_uri":         {"https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#access-denied"},
			"state":             {state},
		})
		return
	}

	code := randomHex(10) // GitHub's codes are 20 hex characters
	s.codes[code] = &authCode{
		clientID:    s.ClientID,
		redirectURI: redirect,
		challenge:   challenge,
		scopes:      parseScopes(q.Get("scope")),
		userID:      user.ID,
		expires:     s.now().Add(codeLifetime),
	}
	redirectWith(w, r, target, url.Values{"code": {code}, "state": {state}})
}

// accessToken is POST /login/oauth/access_token.
func (s *Server) accessToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form body", http.StatusBadRequest)
		return
	}
	clientID, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if id, sec, ok := r.BasicAuth(); ok {
		// RFC 6749 §2.3.1: both are form-encoded before Basic encoding.
		id, err1 := url.QueryUnescape(id)
		sec, err2 := url.QueryUnescape(sec)
		if err1 == nil && err2 == nil {
			clientID, secret = id, sec
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if clientID != s.ClientID || subtle.ConstantTimeCompare([]byte(secret), []byte(s.ClientSecret)) != 1 {
		writeTokenError(w, r, "incorrect_client_credentials", "The client_id and/or client_secret passed are incorrect.", "#incorrect-client-credentials")
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != "" && gt != "authorization_code" {
		writeTokenError(w, r, "unsupported_grant_type", "The grant type is not supported.", "")
		return
	}
	code := s.codes[r.PostForm.Get("code")]
	if code == nil || code.used || code.clientID != clientID || !s.now().Before(code.expires) {
		writeTokenError(w, r, "bad_verification_code", "The code passed is incorrect or expired.", "#bad-verification-code")
		return
	}
	code.used = true // single-use, whatever happens next
	if redirect := r.PostForm.Get("redirect_uri"); redirect != "" && redirect != code.redirectURI {
		writeTokenError(w, r, "redirect_uri_mismatch", "The redirect_uri MUST match the registered callback URL for this application.", "#redirect-uri-mismatch2")
		return
	}
	if code.challenge != "" {
		// GitHub documents no error of its own for a failed PKCE check; the
		// fake answers as for a bad code.
		v := r.PostForm.Get("code_verifier")
		sum := sha256.Sum256([]byte(v))
		if v == "" || subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(code.challenge)) != 1 {
			writeTokenError(w, r, "bad_verification_code", "The code passed is incorrect or expired.", "#bad-verification-code")
			return
		}
	}
	tok := s.issueLocked(code.userID, code.scopes)
	writeTokenResponse(w, r, [][2]string{
		{"access_token", tok},
		{"token_type", "bearer"},
		{"scope", strings.Join(code.scopes, ",")},
	})
}

// authenticate checks the API request's credentials, answering 401 itself
// when they are missing or wrong.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (*User, *accessToken, bool) {
	if v := r.Header.Get("X-GitHub-Api-Version"); v != "" && v != APIVersion {
		writeAPIError(w, http.StatusBadRequest, fmt.Sprintf("API version %s is not supported.", v), "https://docs.github.com/rest/about-the-rest-api/api-versions")
		return nil, nil, false
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		writeAPIError(w, http.StatusUnauthorized, "Requires authentication", "https://docs.github.com/rest")
		return nil, nil, false
	}
	scheme, cred, _ := strings.Cut(h, " ")
	cred = strings.TrimSpace(cred)
	s.mu.Lock()
	defer s.mu.Unlock()
	tok := s.tokens[cred]
	if (!strings.EqualFold(scheme, "bearer") && !strings.EqualFold(scheme, "token")) || tok == nil || s.users[tok.userID] == nil {
		writeAPIError(w, http.StatusUnauthorized, "Bad credentials", "https://docs.github.com/rest")
		return nil, nil, false
	}
	u := *s.users[tok.userID]
	u.Emails = slices.Clone(u.Emails)
	u.Orgs = slices.Clone(u.Orgs)
	u.Teams = slices.Clone(u.Teams)
	t := *tok
	w.Header().Set("X-OAuth-Scopes", strings.Join(tok.scopes, ", "))
	w.Header().Set("X-GitHub-Api-Version-Selected", APIVersion)
	return &u, &t, true
}

// user is GET /user.
func (s *Server) user(w http.ResponseWriter, r *http.Request) {
	u, _, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	w.Header().Set("X-Accepted-OAuth-Scopes", "")
	avatar := u.AvatarURL
	if avatar == "" {
		avatar = fmt.Sprintf("https://avatars.githubusercontent.com/u/%d?v=4", u.ID)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"login":                     u.Login,
		"id":                        u.ID,
		"node_id":                   base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "04:User%d", u.ID)),
		"avatar_url":                avatar,
		"gravatar_id":               "",
		"url":                       s.URL + "/users/" + u.Login,
		"html_url":                  "https://github.com/" + u.Login,
		"type":                      "User",
		"user_view_type":            "private",
		"site_admin":                false,
		"name":                      nullable(u.Name),
		"company":                   nil,
		"blog":                      "",
		"location":                  nil,
		"email":                     nullable(u.PublicEmail),
		"hireable":                  nil,
		"bio":                       nil,
		"twitter_username":          nil,
		"notification_email":        nullable(u.PublicEmail),
		"public_repos":              0,
		"public_gists":              0,
		"followers":                 0,
		"following":                 0,
		"created_at":                "2011-01-25T18:44:36Z",
		"updated_at":                "2025-01-01T00:00:00Z",
		"private_gists":             0,
		"total_private_repos":       0,
		"owned_private_repos":       0,
		"two_factor_authentication": true,
	})
}

// emails is GET /user/emails: it needs the user:email or user scope, and
// pages with per_page (default 30, at most 100) and page.
func (s *Server) emails(w http.ResponseWriter, r *http.Request) {
	u, tok, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	w.Header().Set("X-Accepted-OAuth-Scopes", "user, user:email")
	if !slices.Contains(tok.scopes, "user:email") && !slices.Contains(tok.scopes, "user") {
		// GitHub hides what a token may not see behind a 404.
		writeAPIError(w, http.StatusNotFound, "Not Found", "https://docs.github.com/rest/users/emails#list-email-addresses-for-the-authenticated-user")
		return
	}
	perPage, page := 30, 1
	if v, err := strconv.Atoi(r.URL.Query().Get("per_page")); err == nil && v > 0 {
		perPage = min(v, 100)
	}
	if v, err := strconv.Atoi(r.URL.Query().Get("page")); err == nil && v > 0 {
		page = v
	}
	type email struct {
		Email      string  `json:"email"`
		Primary    bool    `json:"primary"`
		Verified   bool    `json:"verified"`
		Visibility *string `json:"visibility"`
	}
	out := []email{}
	for i := (page - 1) * perPage; i < len(u.Emails) && i < page*perPage; i++ {
		e := u.Emails[i]
		var vis *string
		if e.Primary {
			v := "private"
			if e.Email == u.PublicEmail {
				v = "public"
			}
			vis = &v
		}
		out = append(out, email{e.Email, e.Primary, e.Verified, vis})
	}
	if last := (len(u.Emails) + perPage - 1) / perPage; page < last {
		link := func(p int) string {
			return fmt.Sprintf("<%s/user/emails?per_page=%d&page=%d>", s.URL, perPage, p)
		}
		w.Header().Set("Link", link(page+1)+`; rel="next", `+link(last)+`; rel="last"`)
	}
	writeJSON(w, http.StatusOK, out)
}

// orgs is GET /user/orgs, paged like emails. GitHub lists only public
// memberships to a token without read:org; the fake answers 403 instead,
// so that a connector asking for groups without the scope fails visibly.
func (s *Server) orgs(w http.ResponseWriter, r *http.Request) {
	u, _, ok := s.orgScope(w, r, "https://docs.github.com/rest/orgs/orgs#list-organizations-for-the-authenticated-user")
	if !ok {
		return
	}
	out := []any{}
	for i, o := range u.Orgs {
		if !slices.Contains(u.Unauthorized, o) {
			out = append(out, map[string]any{"login": o, "id": orgID(i), "url": s.URL + "/orgs/" + o, "description": nil})
		}
	}
	ssoPartial(w, u)
	s.page(w, r, "/user/orgs", out)
}

// teams is GET /user/teams, paged like emails.
func (s *Server) teams(w http.ResponseWriter, r *http.Request) {
	u, _, ok := s.orgScope(w, r, "https://docs.github.com/rest/teams/teams#list-teams-for-the-authenticated-user")
	if !ok {
		return
	}
	out := []any{}
	for i, t := range u.Teams {
		if !slices.Contains(u.Unauthorized, t.Org) {
			out = append(out, map[string]any{
				"id": 2000 + i, "slug": t.Slug, "name": t.Slug, "privacy": "closed",
				"organization": map[string]any{"login": t.Org, "url": s.URL + "/orgs/" + t.Org},
			})
		}
	}
	ssoPartial(w, u)
	s.page(w, r, "/user/teams", out)
}

func orgID(i int) int { return 1000 + i }

// ssoPartial says, as GitHub does, that a list leaves out the
// organizations of u that the token is not authorized for by SAML single
// sign-on: X-GitHub-SSO: partial-results; organizations=ID,ID.
func ssoPartial(w http.ResponseWriter, u *User) {
	var ids []string
	for i, o := range u.Orgs {
		if slices.Contains(u.Unauthorized, o) {
			ids = append(ids, strconv.Itoa(orgID(i)))
		}
	}
	if ids != nil {
		w.Header().Set("X-GitHub-SSO", "partial-results; organizations="+strings.Join(ids, ","))
	}
}

// orgScope authenticates a request that needs read:org, user or admin:org.
func (s *Server) orgScope(w http.ResponseWriter, r *http.Request, doc string) (*User, *accessToken, bool) {
	u, tok, ok := s.authenticate(w, r)
	if !ok {
		return nil, nil, false
	}
	w.Header().Set("X-Accepted-OAuth-Scopes", "admin:org, read:org, repo, user, write:org")
	if !slices.Contains(tok.scopes, "read:org") && !slices.Contains(tok.scopes, "user") && !slices.Contains(tok.scopes, "admin:org") {
		writeAPIError(w, http.StatusForbidden, "You need at least read:org scope or user scope to list your organizations.", doc)
		return nil, nil, false
	}
	return u, tok, true
}

// page writes the page of items that per_page (default 30, at most 100)
// and page select, with GitHub's Link header when more pages follow.
func (s *Server) page(w http.ResponseWriter, r *http.Request, path string, items []any) {
	perPage, page := 30, 1
	if v, err := strconv.Atoi(r.URL.Query().Get("per_page")); err == nil && v > 0 {
		perPage = min(v, 100)
	}
	if v, err := strconv.Atoi(r.URL.Query().Get("page")); err == nil && v > 0 {
		page = v
	}
	out := []any{}
	for i := (page - 1) * perPage; i < len(items) && i < page*perPage; i++ {
		out = append(out, items[i])
	}
	if last := (len(items) + perPage - 1) / perPage; page < last {
		link := func(p int) string { return fmt.Sprintf("<%s%s?per_page=%d&page=%d>", s.URL, path, perPage, p) }
		w.Header().Set("Link", link(page+1)+`; rel="next", `+link(last)+`; rel="last"`)
	}
	writeJSON(w, http.StatusOK, out)
}

// RedirectMatches reports whether GitHub accepts redirect for an app whose
// callback URL is callback: same scheme; same host or a sub-domain of it;
// same port, unless the callback is a loopback URL; and the callback's path
// or a path below it.
func RedirectMatches(callback, redirect string) bool {
	cb, err1 := url.Parse(callback)
	rd, err2 := url.Parse(redirect)
	if err1 != nil || err2 != nil || !rd.IsAbs() || rd.Fragment != "" {
		return false
	}
	if !strings.EqualFold(cb.Scheme, rd.Scheme) {
		return false
	}
	ch, rh := strings.ToLower(cb.Hostname()), strings.ToLower(rd.Hostname())
	if rh != ch && !strings.HasSuffix(rh, "."+ch) {
		return false
	}
	if !isLoopback(ch) && cb.Port() != rd.Port() {
		return false
	}
	cp, rp := cb.EscapedPath(), rd.EscapedPath()
	if cp == "" {
		cp = "/"
	}
	if rp == "" {
		rp = "/"
	}
	return rp == cp || strings.HasPrefix(rp, strings.TrimSuffix(cp, "/")+"/")
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func absoluteHTTP(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func validChallenge(c string) bool {
	if len(c) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(c)
	return err == nil
}

// parseScopes splits the authorize request's scope, which GitHub takes
// space- or comma-delimited, dropping duplicates.
func parseScopes(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' }) {
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// redirectWith answers 302 to target with params added to its query.
func redirectWith(w http.ResponseWriter, r *http.Request, target string, params url.Values) {
	u, err := url.Parse(target)
	if err != nil {
		http.Error(w, "githubtest: bad redirect target", http.StatusBadRequest)
		return
	}
	q := u.Query()
	for k, vs := range params {
		for _, v := range vs {
			if v != "" {
				q.Add(k, v)
			}
		}
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// writeTokenError answers a token request error the GitHub way: HTTP 200.
func writeTokenError(w http.ResponseWriter, r *http.Request, code, desc, anchor string) {
	fields := [][2]string{{"error", code}, {"error_description", desc}}
	if anchor != "" {
		fields = append(fields, [2]string{"error_uri", "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/" + anchor})
	}
	writeTokenResponse(w, r, fields)
}

// writeTokenResponse encodes fields in the format the Accept header asks
// for: JSON, XML, or else form-encoded.
func writeTokenResponse(w http.ResponseWriter, r *http.Request, fields [][2]string) {
	accept := r.Header.Get("Accept")
	switch {
	case strings.Contains(accept, "application/json"):
		m := make(map[string]string, len(fields))
		for _, f := range fields {
			m[f[0]] = f[1]
		}
		writeJSON(w, http.StatusOK, m)
	case strings.Contains(accept, "application/xml"):
		w.Header().Set("Content-Type", "application/xml; charset=utf-8")
		var b strings.Builder
		b.WriteString("<OAuth>")
		for _, f := range fields {
			b.WriteString("<" + f[0] + ">")
			xml.EscapeText(&b, []byte(f[1]))
			b.WriteString("</" + f[0] + ">")
		}
		b.WriteString("</OAuth>")
		w.Write([]byte(b.String()))
	default:
		w.Header().Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		var parts []string
		for _, f := range fields {
			parts = append(parts, url.QueryEscape(f[0])+"="+url.QueryEscape(f[1]))
		}
		w.Write([]byte(strings.Join(parts, "&")))
	}
}

func writeAPIError(w http.ResponseWriter, status int, msg, doc string) {
	writeJSON(w, status, map[string]string{
		"message":           msg,
		"documentation_url": doc,
		"status":            strconv.Itoa(status),
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = base62[int(b[i])%len(base62)]
	}
	return string(b)
}
