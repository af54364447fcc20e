package browser

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"

	"golang.org/x/net/html"
)

const (
	defaultMaxSteps = 20
	maxBodyBytes    = 4 << 20 // a login or consent page is a few KiB
	maxTextRunes    = 300     // of a page's visible text in errors
)

// Browser walks an authorization flow: redirects, consent and login forms, cookies.
// Its zero value works (a fresh cookie jar, decision "allow", 20 steps); New also sets
// the credentials. A Browser is not safe for concurrent use: walks share its cookies.
type Browser struct {
	// Client sends every request. Its Jar keeps cookies across steps, which the
	// consent form's CSRF check needs, and across walks, like a real browser's session.
	// Walk follows redirects itself, whatever CheckRedirect says. Nil means a client
	// with a fresh cookie jar, created on first use.
	Client *http.Client
	// Username and Password fill the login form's "username" and "password" inputs
	// (and any other input of type password).
	Username, Password string
	// Decision is what the consent form submits as "decision": "allow" (the default
	// when empty) or "deny".
	Decision string
	// Fields are further controls' values, by name, as a person would choose
	// them: "connector" picks a sign-in method on the consent page.
	Fields map[string]string
	// MaxSteps bounds the HTTP requests one Walk sends; zero means 20.
	MaxSteps int
}

// New returns a Browser that logs in as username with password and allows consent.
func New(username, password string) *Browser {
	return &Browser{
		Client:   newClient(),
		Username: username,
		Password: password,
		Decision: "allow",
		MaxSteps: defaultMaxSteps,
	}
}

func newClient() *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil { // cookiejar.New fails only on bad options
		panic(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: noFollow}
}

func noFollow(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// PageError reports a response the walk could not get past: an error page or other
// non-200 answer, a page without a form, a form it could not submit, or a form that
// came back unchanged after submitting it (a rejected login).
type PageError struct {
	Reason string // what went wrong, e.g. "page has no form"
	URL    string // the page's URL
	Status int    // its HTTP status
	Text   string // its visible text (the error message first, when it marks one), at most 300 characters
}

func (e *PageError) Error() string {
	return fmt.Sprintf("browser: %s: HTTP %d %s at %s: %q", e.Reason, e.Status, http.StatusText(e.Status), stripQuery(e.URL), e.Text)
}

// request is the next step of a walk.
type request struct {
	method string
	url    *url.URL
	body   []byte // urlencoded form, POST only
	origin string // Origin header of a form submission, as a browser sends it
}

// Walk starts at authURL and follows 30x redirects and HTML forms until a redirect to a
// URL that starts with redirectPrefix, which it returns without requesting it (an empty
// prefix stops at the first redirect). It fails
// with a *PageError on a page it cannot get past, and with an error naming the step on
// a transport error or when MaxSteps requests reach no such redirect.
func (b *Browser) Walk(ctx context.Context, authURL, redirectPrefix string) (*url.URL, error) {
	if b.Client == nil {
		b.Client = newClient()
	}
	client := *b.Client
	client.CheckRedirect = noFollow
	maxSteps := b.MaxSteps
	if maxSteps <= 0 {
		maxSteps = defaultMaxSteps
	}
	start, err := url.Parse(authURL)
	if err != nil {
		return nil, fmt.Errorf("browser: authorization URL: %w", err)
	}

	next := &request{method: http.MethodGet, url: start}
	lastForm := "" // fingerprint of the previous form page
	for step := 1; step <= maxSteps; step++ {
		resp, body, err := send(ctx, &client, next)
		if err != nil {
			return nil, fmt.Errorf("browser: step %d: %s %s: %w", step, next.method, stripQuery(next.url.String()), err)
		}
		page := resp.Request.URL
		switch {
		case isRedirect(resp.StatusCode):
			loc := resp.Header.Get("Location")
			if loc == "" {
				return nil, pageErr("redirect without Location", page, resp, body)
			}
			target, err := page.Parse(loc)
			if err != nil {
				return nil, pageErr(fmt.Sprintf("bad Location %q", loc), page, resp, body)
			}
			if strings.HasPrefix(target.String(), redirectPrefix) {
				return target, nil
			}
			next = redirected(next, resp.StatusCode, target)

		case resp.StatusCode == http.StatusOK && isHTML(resp.Header, body):
			doc, err := html.Parse(bytes.NewReader(body))
			if err != nil { // the HTML5 parser accepts anything; this is a read error
				return nil, pageErr("unparsable HTML", page, resp, body)
			}
			f := chooseForm(doc)
			if f == nil {
				return nil, &PageError{Reason: "page has no form", URL: page.String(), Status: resp.StatusCode, Text: pageText(doc)}
			}
			// A form that comes back just as it was after submitting it (same form,
			// same visible text, so the same error message) will not change its mind:
			// the credentials are wrong, or the CSRF check keeps failing.
			fp := f.fingerprint(page, doc)
			if fp == lastForm {
				return nil, &PageError{Reason: "form came back unchanged after submitting it", URL: page.String(), Status: resp.StatusCode, Text: pageText(doc)}
			}
			lastForm = fp
			next, err = f.submit(page, b.fill)
			if err != nil {
				return nil, &PageError{Reason: err.Error(), URL: page.String(), Status: resp.StatusCode, Text: pageText(doc)}
			}

		case resp.StatusCode >= 400:
			return nil, pageErr("error page", page, resp, body)
		default:
			return nil, pageErr("unexpected response", page, resp, body)
		}
	}
	return nil, fmt.Errorf("browser: no redirect to %s within %d steps (next would be %s %s)", redirectPrefix, maxSteps, next.method, stripQuery(next.url.String()))
}

// fill is what the person types and clicks: the value for a named control.
func (b *Browser) fill(name, typ string) (string, bool) {
	switch {
	case name == "username":
		return b.Username, true
	case name == "password" || typ == "password":
		return b.Password, true
	case name == "decision":
		return b.decision(), true
	}
	v, ok := b.Fields[name]
	return v, ok
}

func (b *Browser) decision() string {
	if b.Decision == "" {
		return "allow"
	}
	return b.Decision
}

func send(ctx context.Context, c *http.Client, r *request) (*http.Response, []byte, error) {
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url.String(), body)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8")
	req.Header.Set("User-Agent", "mcpgate-e2e-browser")
	if r.body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if r.origin != "" {
		req.Header.Set("Origin", r.origin)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
	if err != nil {
		return nil, nil, fmt.Errorf("read body: %w", err)
	}
	return resp, b, nil
}

func isRedirect(status int) bool {
	switch status {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// redirected is the request a browser sends after a redirect: 307 and 308 repeat the
// method and body; 301, 302 and 303 turn into a GET.
func redirected(prev *request, status int, target *url.URL) *request {
	if status == http.StatusTemporaryRedirect || status == http.StatusPermanentRedirect {
		return &request{method: prev.method, url: target, body: prev.body, origin: prev.origin}
	}
	return &request{method: http.MethodGet, url: target}
}

func isHTML(h http.Header, body []byte) bool {
	ct := h.Get("Content-Type")
	if ct == "" {
		ct = http.DetectContentType(body)
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "text/html" || mt == "application/xhtml+xml")
}

// pageErr describes a response that is not a form page, with its text: visible text of
// HTML, the body itself otherwise (a JSON error, say).
func pageErr(reason string, page *url.URL, resp *http.Response, body []byte) *PageError {
	text := ""
	if isHTML(resp.Header, body) {
		if doc, err := html.Parse(bytes.NewReader(body)); err == nil {
			text = pageText(doc)
		}
	} else {
		text = truncate(strings.Join(strings.Fields(string(body)), " "))
	}
	return &PageError{Reason: reason, URL: page.String(), Status: resp.StatusCode, Text: text}
}

func stripQuery(s string) string {
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		return s[:i]
	}
	return s
}

// AuthorizationError is an error response the authorization server sent to the
// redirect URI (RFC 6749 §4.1.2.1), such as access_denied after a "deny".
type AuthorizationError struct {
	Code        string // "error"
	Description string // "error_description", may be empty
	URI         string // "error_uri", may be empty
	State       string
	Issuer      string // "iss" (RFC 9207), may be empty
}

func (e *AuthorizationError) Error() string {
	if e.Description == "" {
		return "browser: authorization error: " + e.Code
	}
	return fmt.Sprintf("browser: authorization error: %s: %s", e.Code, e.Description)
}

// Authorize walks from authURL to the redirect and reads the authorization response
// (RFC 6749 §4.1.2): code, state and, if present, iss (RFC 9207). An error response
// comes back as an *AuthorizationError; a response without exactly one code is an error.
// State and iss are returned with an *AuthorizationError too.
func (b *Browser) Authorize(ctx context.Context, authURL, redirectPrefix string) (code, state, iss string, err error) {
	u, err := b.Walk(ctx, authURL, redirectPrefix)
	if err != nil {
		return "", "", "", err
	}
	q := u.Query()
	state, iss = q.Get("state"), q.Get("iss")
	if e := q.Get("error"); e != "" {
		return "", state, iss, &AuthorizationError{
			Code: e, Description: q.Get("error_description"), URI: q.Get("error_uri"),
			State: state, Issuer: iss,
		}
	}
	switch codes := q["code"]; {
	case len(codes) != 1:
		return "", state, iss, fmt.Errorf("browser: redirect %s carries %d code parameters, want 1", stripQuery(u.String()), len(codes))
	case codes[0] == "":
		return "", state, iss, errors.New("browser: redirect carries an empty code")
	}
	return q.Get("code"), state, iss, nil
}

// FollowAuthorization is New(username, password).Authorize(ctx, authURL, redirectPrefix):
// one walk with a fresh cookie jar that logs in and allows consent.
func FollowAuthorization(ctx context.Context, authURL, redirectPrefix, username, password string) (code, state, iss string, err error) {
	return New(username, password).Authorize(ctx, authURL, redirectPrefix)
}
