package authserver

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/store"
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

// session returns the browser's login session, or nil.
func (s *Server) session(r *http.Request, issuer string) *store.Session {
	c, err := r.Cookie(cookieName(issuer, sessionCookie))
	if err != nil || c.Value == "" || len(c.Value) > 128 {
		return nil
	}
	sess, err := s.store.GetSession(r.Context(), tokens.Hash(c.Value), s.now())
	if err != nil {
		return nil
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
	return nil
}

// csrfToken returns the form token for purpose and binding (the auth
// request id or upstream state), tied to the browser's CSRF cookie. The
// cookie is created on first use and then kept, so that a second GET of
// the same page does not invalidate the first form.
func (s *Server) csrfToken(w http.ResponseWriter, r *http.Request, issuer, purpose, binding string) string {
	secret, ok := csrfSecret(r, issuer)
	if !ok {
		secret = tokens.NewSecret()
		setCookie(w, issuer, csrfCookie, secret, 0)
	}
	return s.csrfMAC(purpose, binding, secret)
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
