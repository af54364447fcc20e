package authserver

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/internal/web"
	"github.com/mcpgate/mcpgate/store"
)

// The gateway's own pages (the account page, the admin console) log a
// person in through the same connectors, login pages and browser session
// as an authorization request does: a page login is a stored
// AuthRequest without a client whose RedirectURI is the page to go back
// to, checked here to be one of those pages (SEC-107), and whose upstream
// state carries the kind flowPage in its MAC, so that an OAuth flow can
// never end as a page login nor a page login hand a code to anyone.

// flowPage began at /signin: the login starts a browser session and
// sends the browser back to the page it asked for; no client, no consent,
// no code.
const flowPage flowKind = "page"

// pageRequest reports whether req is a page login's.
func pageRequest(req *store.AuthRequest) bool { return req.ClientID == "" }

// pageRoots are the pages a page login may go back to: the account page
// and the admin console with its pages.
var pageRoots = []string{"/account", "/admin"}

// ReturnPath returns raw when it is a path of the gateway's own pages
// that a login may send the browser back to, else "/account". Only an
// absolute path under /account or /admin passes, without a scheme, a
// host, a backslash or a control character, so that the login is never an
// open redirect (SEC-107).
func ReturnPath(raw string) string {
	const fallback = "/account"
	if raw == "" || len(raw) > 1024 || !strings.HasPrefix(raw, "/") || strings.HasPrefix(raw, "//") ||
		strings.ContainsAny(raw, "\\#") || strings.ContainsFunc(raw, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fallback
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || u.RawPath != "" {
		return fallback
	}
	for _, root := range pageRoots {
		if u.Path == root || strings.HasPrefix(u.Path, root+"/") {
			if strings.Contains(u.Path, "/../") || strings.HasSuffix(u.Path, "/..") || strings.Contains(u.Path, "/./") {
				return fallback
			}
			return raw
		}
	}
	return fallback
}

// AdminSignInAge is how old a sign-in may be for the admin console
// (SEC-144): the groups that make an administrator are those of the
// login, and a provider's account taken out of an admin group would keep
// the console for its session's 12 hours. An older session is sent to
// sign in again, which gives a provider's account its groups of now.
const AdminSignInAge = time.Hour

// StaleForAdmin reports whether sess signed in too long ago for the admin
// console.
func StaleForAdmin(sess *store.Session, now time.Time) bool {
	return now.Sub(sess.CreatedAt) > AdminSignInAge
}

// adminPath reports whether path, one ReturnPath let through, is the
// admin console's.
func adminPath(path string) bool {
	return path == "/admin" || strings.HasPrefix(path, "/admin/") || strings.HasPrefix(path, "/admin?")
}

// SignInURL is where a page sends a browser without a session: /signin,
// which brings it back to path.
func SignInURL(path string) string {
	return "/signin?" + url.Values{"return": {ReturnPath(path)}}.Encode()
}

// PageSession returns the browser's login session, nil without one: the
// session an authorization request's login started is the same.
func (s *Server) PageSession(r *http.Request) *store.Session {
	return s.session(r, s.site.Issuer(r))
}

// sessionBinding binds a page's form tokens to the session, so that a
// token taken from one login's page is worth nothing in the next.
func sessionBinding(sess *store.Session) string {
	if sess == nil {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(sess.Hash)
}

// pageFormPurpose is the MAC purpose of the pages' form tokens: not a
// flowKind, whose names are the purposes of the flows' states, so that
// neither can ever stand for the other.
const pageFormPurpose = "page form"

// PageCSRF returns the form token of the gateway's own pages for the
// browser's session sess (SEC-108).
func (s *Server) PageCSRF(w http.ResponseWriter, r *http.Request, sess *store.Session) string {
	return s.csrfToken(w, r, s.site.Issuer(r), pageFormPurpose, sessionBinding(sess))
}

// CheckPageCSRF verifies the csrf_token of a parsed form against the
// browser's cookie and session, in constant time (SEC-108).
func (s *Server) CheckPageCSRF(r *http.Request, sess *store.Session) bool {
	return sess != nil && s.checkCSRF(r, s.site.Issuer(r), pageFormPurpose, sessionBinding(sess))
}

// GuardPage is browserOnly for the pages of other packages: a browser
// with a planted cookie is refused, and with post a form posted from a
// page of another origin (SEC-5).
func (s *Server) GuardPage(post bool, h http.HandlerFunc) http.HandlerFunc {
	return s.browserOnly(post, h)
}

// registerPages adds the page login routes.
func (s *Server) registerPages(mux *http.ServeMux) {
	mux.HandleFunc("GET /signin", s.browserOnly(false, s.signInPage))
	mux.HandleFunc("POST /signin", s.browserOnly(true, s.signIn))
	mux.HandleFunc("POST /signout", s.browserOnly(true, s.signOut))
}

// signInPage offers the connectors, each a form that starts a page
// login; a browser logged in already goes straight back.
func (s *Server) signInPage(w http.ResponseWriter, r *http.Request) {
	issuer := s.site.Issuer(r)
	back := ReturnPath(r.URL.Query().Get("return"))
	if sess := s.session(r, issuer); sess != nil && !(adminPath(back) && StaleForAdmin(sess, s.now())) {
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	}
	data := web.SignIn{Return: back, CSRF: s.csrfToken(w, r, issuer, "signin", back)}
	for _, con := range s.order {
		data.Connectors = append(data.Connectors, web.Choice{ID: con.ID(), Name: con.DisplayName()})
	}
	web.Render(w, s.log, http.StatusOK, "signin.html", data)
}

// signIn starts a page login with the chosen connector: a request
// without a client, bound to this browser like every login (SEC-1).
func (s *Server) signIn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if r.ParseForm() != nil {
		web.RenderError(w, s.log, http.StatusBadRequest, "Invalid request", "The form could not be read.")
		return
	}
	issuer := s.site.Issuer(r)
	back := ReturnPath(r.PostForm.Get("return"))
	if back != r.PostForm.Get("return") || !s.checkCSRF(r, issuer, "signin", back) {
		s.log.Warn("sign-in: CSRF check failed")
		web.RenderError(w, s.log, http.StatusForbidden, "Request refused",
			"This form was not submitted from this server's sign-in page. Open the page you wanted again.")
		return
	}
	con, ok := s.connectors[r.PostForm.Get("connector")]
	if !ok {
		web.RenderError(w, s.log, http.StatusBadRequest, "Invalid request", "Unknown sign-in method.")
		return
	}
	if !s.mayStoreRequest(w, r) {
		web.RenderError(w, s.log, http.StatusTooManyRequests, "Too many sign-ins", "Too many sign-ins were started from this address. Try again in a minute.")
		return
	}
	now := s.now()
	req := &store.AuthRequest{ID: tokens.NewID(), RedirectURI: back, CreatedAt: now, ExpiresAt: now.Add(requestTTL)}
	if err := s.store.CreateAuthRequest(r.Context(), req); err != nil {
		s.log.Error("sign-in: create request", "err", err)
		web.RenderError(w, s.log, http.StatusServiceUnavailable, "Signing in failed", "Try again later.")
		return
	}
	s.sendToLogin(w, r, issuer, req, con, flowPage)
}

// signOut ends the browser's login: the stored session is deleted, so
// that its cookie, wherever a copy went, logs no one in, and the cookie is
// dropped.
func (s *Server) signOut(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if r.ParseForm() != nil {
		web.RenderError(w, s.log, http.StatusBadRequest, "Invalid request", "The form could not be read.")
		return
	}
	sess := s.PageSession(r)
	if !s.CheckPageCSRF(r, sess) {
		web.RenderError(w, s.log, http.StatusForbidden, "Request refused",
			"This form was not submitted from this server's own pages. Open the page again.")
		return
	}
	if err := s.store.DeleteSession(r.Context(), sess.Hash); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Error("sign out: delete session", "err", err)
		web.RenderError(w, s.log, http.StatusServiceUnavailable, "You are still signed in", "Signing out failed. Try again later.")
		return
	}
	setCookie(w, s.site.Issuer(r), sessionCookie, "", -1)
	s.log.Info("user signed out", "user", sess.User.ID)
	http.Redirect(w, r, SignInURL("/account"), http.StatusSeeOther)
}

// finishPage completes a page login once the connector vouched for the
// person: the access rules and the groups' bound apply as at any login
// (SEC-70), then the browser is logged in and sent back to its page.
func (s *Server) finishPage(w http.ResponseWriter, r *http.Request, issuer, connector string, req *store.AuthRequest, login func() (identity.User, string, error)) {
	user, _, err := login()
	if err != nil {
		s.log.Info("page login failed", "connector", connector, "err", err.Error())
		web.RenderError(w, s.log, http.StatusForbidden, "You are not signed in",
			"The sign-in did not succeed. Open the page you wanted again to start over.")
		return
	}
	if rule := s.refusal(user, ""); rule != "" {
		s.log.Warn("access refused", "user", user.ID, "rule", rule, "page", req.RedirectURI)
		web.RenderError(w, s.log, http.StatusForbidden, "This account may not use this server",
			"You signed in as "+displayName(user)+" ("+s.providerName(user)+"), and this account is not allowed to use this server.")
		return
	}
	if err := s.startSession(w, r, issuer, user); err != nil {
		s.log.Error("page login: start session", "err", err)
		web.RenderError(w, s.log, http.StatusServiceUnavailable, "Signing in failed", "Try again later.")
		return
	}
	s.log.Info("user logged in", "user", user.ID, "page", req.RedirectURI)
	http.Redirect(w, r, ReturnPath(req.RedirectURI), http.StatusSeeOther)
}
