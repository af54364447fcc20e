package authserver

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/safetext"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/internal/web"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/upstream"
)

// Cookies of the gateway's own pages. Over https they carry the __Host-
// prefix, Secure and SameSite=Lax (DEP-4); over loopback http browsers
// would drop a Secure cookie, so the plain names are used.
const (
	sessionCookie = "mcpgate_session"
	csrfCookie    = "mcpgate_csrf"
)

// secure reports whether issuer is an https origin: cookies then get
// Secure and the __Host- prefix.
func secure(issuer string) bool { return strings.HasPrefix(issuer, "https://") }

func cookieName(issuer, base string) string {
	if secure(issuer) {
		return "__Host-" + base
	}
	return base
}

func setCookie(w http.ResponseWriter, issuer, base, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name:     cookieName(issuer, base),
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   secure(issuer),
		SameSite: http.SameSiteLaxMode,
	})
}

// session returns the browser's login session, or nil. A login through a
// provider no longer configured counts for nothing, as the grants it made
// (renewUpstream ends them): the browser logs in again. So does a local
// account's login once the account is disabled or its groups changed: a
// disabling or a change ends the sessions it finds (SEC-93, SEC-130), but
// a login that checked the account just before it may store its session
// just after.
func (s *Server) session(r *http.Request, issuer string) *store.Session {
	c, err := r.Cookie(cookieName(issuer, sessionCookie))
	if err != nil || c.Value == "" || len(c.Value) > 128 {
		return nil
	}
	sess, err := s.store.GetSession(r.Context(), tokens.Hash(c.Value), s.now())
	if err != nil {
		return nil
	}
	con, ok := s.connectors[connectorID(sess.User)]
	if !ok {
		return nil
	}
	if check, ok := con.(upstream.SessionChecker); ok {
		valid, err := check.SessionValid(r.Context(), sess.User)
		if err != nil {
			s.log.Warn("session: checking the account failed; the browser is signed in to no one", "user", sess.User.ID, "err", err)
			return nil
		}
		if !valid {
			// Ended, so that enabling the account again does not revive it.
			if err := s.store.DeleteSession(r.Context(), sess.Hash); err != nil && !errors.Is(err, store.ErrNotFound) {
				s.log.Warn("session: delete the session of a disabled or changed account", "err", err)
			}
			return nil
		}
	}
	return sess
}

// startSession logs the browser in as user.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, issuer string, user identity.User) error {
	id := tokens.NewSecret()
	now := s.now()
	if err := s.store.CreateSession(r.Context(), &store.Session{
		Hash: tokens.Hash(id), User: user, CreatedAt: now, ExpiresAt: now.Add(sessionTTL),
	}); err != nil {
		return err
	}
	setCookie(w, issuer, sessionCookie, id, int(sessionTTL.Seconds()))
	if old := s.session(r, issuer); old != nil {
		// A sign-in again (SEC-144, prompt=login) replaces the browser's
		// session: the old one's cookie, wherever a copy went, signs no
		// one in.
		if err := s.store.DeleteSession(r.Context(), old.Hash); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Warn("login: delete the session it replaces", "err", err)
		}
	}
	return nil
}

// csrfToken returns the form token for purpose and binding (the auth
// request id or upstream state), tied to the browser's CSRF cookie. The
// cookie is created on first use and then kept, so that a second GET of
// the same page does not invalidate the first form.
func (s *Server) csrfToken(w http.ResponseWriter, r *http.Request, issuer, purpose, binding string) string {
	return s.csrfMAC(purpose, binding, browserSecret(w, r, issuer))
}

// browserSecret returns the browser's CSRF cookie, and sets a new one
// when it has none.
func browserSecret(w http.ResponseWriter, r *http.Request, issuer string) string {
	secret, ok := csrfSecret(r, issuer)
	if !ok {
		secret = tokens.NewSecret()
		setCookie(w, issuer, csrfCookie, secret, 0)
	}
	return secret
}

// csrfSecret returns the browser's CSRF cookie, if it has one of the
// length csrfToken makes.
func csrfSecret(r *http.Request, issuer string) (string, bool) {
	c, err := r.Cookie(cookieName(issuer, csrfCookie))
	if err != nil || len(c.Value) < 43 || len(c.Value) > 128 {
		return "", false
	}
	return c.Value, true
}

func (s *Server) csrfMAC(purpose, binding, secret string) string {
	m := hmac.New(sha256.New, s.opts.CSRFKey)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(binding))
	m.Write([]byte{0})
	m.Write([]byte(secret))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkCSRF verifies a submitted form token against the browser's cookie,
// in constant time.
func (s *Server) checkCSRF(r *http.Request, issuer, purpose, binding string) bool {
	secret, ok := csrfSecret(r, issuer)
	if !ok {
		return false
	}
	return tokens.Equal(r.PostForm.Get("csrf_token"), s.csrfMAC(purpose, binding, secret))
}

// On a loopback gateway over plain http, a page on another port of the
// same machine shares the gateway's cookies (browsers separate cookies by
// host, not port, and same-site rules ignore ports too): it can plant a
// CSRF cookie whose value it knows, and make the browser post the
// gateway's forms with every cookie attached. Over https the __Host-
// prefix and SameSite stop this; on http the gateway checks what a page
// cannot forge, the browser's own account of where a request comes from,
// and refuses a browser that carries two cookies of one of its names, the
// trace of a planted one beside its own (SEC-5). A planted cookie that is
// the browser's only one cannot be told from its own: see flow.go's
// fromConsentPage for the login link, and docs/security.md for what is
// left to the operator.

// fromOwnPage reports whether a browser says that r comes from a page of
// the issuer's origin (scheme, host and port): a present Origin must be
// it, a present Sec-Fetch-Site must be same-origin. Browsers send Origin
// with every POST; a request with neither header comes from a client that
// is no browser, which carries no victim's cookies (SEC-5).
func fromOwnPage(r *http.Request, issuer string) bool {
	if o := r.Header.Values("Origin"); len(o) > 0 {
		own, ok := originOf(issuer)
		if got, gok := originOf(o[0]); len(o) != 1 || !ok || !gok || got != own {
			return false
		}
	}
	if f := r.Header.Values("Sec-Fetch-Site"); len(f) > 0 && (len(f) != 1 || f[0] != "same-origin") {
		return false
	}
	return true
}

// originOf returns the serialized origin of an http(s) URL, with the
// default port made explicit so that "http://h" and "http://h:80" agree;
// "null" and anything without a host are no origin.
func originOf(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.User != nil {
		return "", false
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return u.Scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port), true
}

// plantedCookies returns the names of the CSRF and session cookies that r
// carries more than once: the browser sends its own and one set
// elsewhere, and which of them a handler would read is the planter's
// choice (SEC-5).
func plantedCookies(r *http.Request, issuer string) []string {
	var dup []string
	for _, name := range []string{cookieName(issuer, csrfCookie), cookieName(issuer, sessionCookie)} {
		if len(r.CookiesNamed(name)) > 1 {
			dup = append(dup, name)
		}
	}
	return dup
}

// expireCookies tells the browser to drop every cookie called one of
// names that it could have sent with r: one for each path that matches
// r's (RFC 6265 §5.1.4), since the planter chose the path. The browser's
// own goes too, so that the person's next try starts clean.
//
// The paths are those of the path as the browser matches it, escaped, and
// bounded (SEC-193): a browser ignores a Path attribute over
// maxCookiePath bytes, and the gateway's pages are at most
// maxCookieDepth segments deep. A path of 20,000 %2F, one segment to the
// router, made 466 MB of headers when each of its decoded prefixes had
// one.
func expireCookies(w http.ResponseWriter, r *http.Request, issuer string, names []string) {
	p := r.URL.EscapedPath()
	var paths []string
	if len(p) <= maxCookiePath {
		paths = append(paths, p)
	}
	for i, depth := 0, 0; i < len(p) && i < maxCookiePath && depth < maxCookieDepth; i++ {
		if p[i] == '/' {
			depth++
			paths = append(paths, p[:i+1])
			if i > 0 {
				paths = append(paths, p[:i])
			}
		}
	}
	slices.Sort(paths)
	for _, name := range names {
		for _, path := range slices.Compact(paths) {
			http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: path, MaxAge: -1,
				HttpOnly: true, Secure: secure(issuer), SameSite: http.SameSiteLaxMode})
		}
	}
}

const (
	maxCookiePath  = 1024 // RFC 6265bis §5.6: a longer attribute value is ignored
	maxCookieDepth = 8
)

// browserOnly guards a route of the gateway's own pages: a browser with a
// planted cookie is refused, and so is a form post from a page of another
// origin when post is true (SEC-5). A login link opened with two CSRF
// cookies is refused too rather than restarted at consent: the consent
// page would bind its form to the cookie sent first at the link's path,
// the planter's choice, and its post to /consent carries another set.
// Dropping both lets the person's next try start clean.
func (s *Server) browserOnly(post bool, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		issuer := s.site.Issuer(r)
		reason := ""
		if post && !fromOwnPage(r, issuer) {
			reason = "form posted from another origin"
		} else if dup := plantedCookies(r, issuer); dup != nil {
			reason = "two cookies of the same name"
			expireCookies(w, r, issuer, dup)
		}
		if reason != "" {
			s.log.Warn("browser request refused", "path", safetext.Clip(r.URL.Path, 512), "reason", reason)
			web.RenderError(w, s.log, http.StatusForbidden, "Request refused",
				"This request did not come from this server's own pages, or another site set a cookie for this server in this browser. Go back to the application and start again.")
			return
		}
		h(w, r)
	}
}
