package authserver

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/web"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/upstream"
)

func (s *Server) passwordConnector(r *http.Request) (upstream.PasswordConnector, bool) {
	pc, ok := s.connectors[r.PathValue("connector")].(upstream.PasswordConnector)
	return pc, ok
}

// loginForm shows the login form of a password connector, to the browser
// that consented only (SEC-1). The upstream state travels in the form; it
// is consumed only when the credentials are right.
func (s *Server) loginForm(w http.ResponseWriter, r *http.Request) {
	pc, ok := s.passwordConnector(r)
	state := r.URL.Query().Get("state")
	if !ok || state == "" || len(state) > 128 {
		web.RenderError(w, s.log, http.StatusBadRequest, "Invalid request", "This sign-in link is not valid. Go back to the application and start again.")
		return
	}
	issuer := s.site.Issuer(r)
	req, _, _ := s.flowRequest(w, r, issuer, pc.ID(), state, fromConsentPage(r))
	if req == nil {
		return
	}
	c, ok := s.loginClient(w, r, req)
	if !ok {
		return
	}
	s.renderLogin(w, r, issuer, http.StatusOK, pc, c, req, state, web.Login{})
}

// loginClient is requestClient, but for a page login, which has no
// client: nil and true.
func (s *Server) loginClient(w http.ResponseWriter, r *http.Request, req *store.AuthRequest) (*store.Client, bool) {
	if pageRequest(req) {
		return nil, true
	}
	c := s.requestClient(w, r, req)
	return c, c != nil
}

// renderLogin shows the login form, naming the application and where the
// code will go (SEC-3), or none for a page login (c nil); data carries
// what the person typed and the error.
func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, issuer string, status int, pc upstream.PasswordConnector, c *store.Client, req *store.AuthRequest, state string, data web.Login) {
	if c != nil {
		data.App = s.appDisplay(c, req)
	}
	data.FormAction = "/login/" + url.PathEscape(pc.ID())
	data.State = state
	data.CSRF = s.csrfToken(w, r, issuer, "login", state)
	web.Render(w, s.log, status, "login.html", data)
}

// loginSubmit checks the posted username and password, in the browser that
// consented only (SEC-1); login CSRF is refused too: the token is bound to
// this browser and this state.
func (s *Server) loginSubmit(w http.ResponseWriter, r *http.Request) {
	pc, ok := s.passwordConnector(r)
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if !ok || r.ParseForm() != nil {
		web.RenderError(w, s.log, http.StatusBadRequest, "Invalid request", "The form could not be read.")
		return
	}
	issuer := s.site.Issuer(r)
	state := r.PostForm.Get("state")
	if state == "" || len(state) > 128 {
		web.RenderError(w, s.log, http.StatusForbidden, "Request refused",
			"This form was not submitted from this browser's sign-in page. Go back to the application and start again.")
		return
	}
	// browserOnly checked that the post came from the login page (SEC-5).
	req, hash, kind := s.flowRequest(w, r, issuer, pc.ID(), state, true)
	if req == nil {
		return
	}
	if !s.checkCSRF(r, issuer, "login", state) {
		web.RenderError(w, s.log, http.StatusForbidden, "Request refused",
			"This form was not submitted from this browser's sign-in page. Go back to the application and start again.")
		return
	}
	c, ok := s.loginClient(w, r, req)
	if !ok {
		return
	}
	username := r.PostForm.Get("username")
	user, err := s.passwordLogin(r, issuer, pc, username, r.PostForm.Get("password"))
	if err != nil {
		msg, status := "Wrong username or password.", http.StatusUnauthorized
		if errors.Is(err, upstream.ErrThrottled) {
			// Else a person locked out by others' guesses reads that their
			// right password is wrong.
			msg = "Too many failed sign-ins under this name. Wait half a minute, then try again."
		}
		switch {
		case errors.Is(err, errAddressThrottled):
			s.log.Warn("login refused: too many failed sign-ins from the address", "connector", pc.ID(), "addr", s.clientAddr(r))
			noteOf(r.Context()).stop("refused", "too many failed sign-ins from this address; the person may try again in a minute")
			msg, status = "Too many failed sign-ins from your network. Wait a minute, then try again.", http.StatusTooManyRequests
		case !errors.Is(err, upstream.ErrInvalidCredentials):
			s.log.Error("login: connector failed", "connector", pc.ID(), "err", err)
			msg = "Signing in failed. Try again later."
			noteOf(r.Context()).stop(oauth.ServerError, "the sign-in at "+pc.ID()+" failed: "+err.Error())
		default:
			// The connector knows whether the name is an account; here it
			// may be a password typed into the wrong field (SEC-4).
			s.log.Info("login failed", "connector", pc.ID(), "username", upstream.LogName(username, false))
			noteOf(r.Context()).stop("refused", "wrong username or password at "+pc.ID()+"; the person may try again")
		}
		s.renderLogin(w, r, issuer, status, pc, c, req, state, web.Login{Username: username, Error: msg})
		return
	}
	s.rememberDevice(w, r, issuer, username)
	s.completeUpstream(w, r, issuer, pc.ID(), hash, kind, func() (identity.User, string, error) { return user, "", nil })
}

// completeUpstream consumes the upstream state (single-use, unexpired,
// issued for this connector: DEP-6) and finishes the login, a flow of
// kind. The caller has checked that this browser consented (SEC-1).
func (s *Server) completeUpstream(w http.ResponseWriter, r *http.Request, issuer, connector string, stateHash []byte, kind flowKind, providerLogin func() (identity.User, string, error)) {
	login := func() (identity.User, string, error) {
		user, token, err := providerLogin()
		return storableUser(user), token, err
	}
	req, err := s.store.TakeAuthRequestByUpstreamState(r.Context(), stateHash, s.now())
	note := noteOf(r.Context())
	switch {
	case err != nil && r.Context().Err() != nil:
		// The browser went away while the store was asked: nobody reads
		// an answer, and nothing is wrong with the store.
		s.log.Debug("upstream: the browser left during the sign-in", "err", err)
		return
	case err != nil && !errors.Is(err, store.ErrNotFound):
		s.log.Error("upstream: take request", "err", err)
		note.stop(oauth.ServerError, "the store could not be read (the gateway's log has the error)")
		web.RenderError(w, s.log, http.StatusServiceUnavailable, "Try again", "The sign-in request could not be read. Try again in a moment.")
		return
	case err != nil:
		note.stop("expired", "the sign-in request expired (it lives 10 minutes) or was already used: the person must start again from the application")
		web.RenderError(w, s.log, http.StatusBadRequest, "This sign-in request has expired or was already used",
			"Go back to the application and start connecting again.")
		return
	}
	if req.Connector != connector {
		web.RenderError(w, s.log, http.StatusBadRequest, "Invalid request", "This sign-in did not start with this provider.")
		return
	}
	if (kind == flowPage) != pageRequest(req) {
		web.RenderError(w, s.log, http.StatusBadRequest, "Invalid request", "This sign-in link is not valid. Start again.")
		return
	}
	if kind == flowPage {
		s.finishPage(w, r, issuer, connector, req, login)
		return
	}
	if s.requestClient(w, r, req) == nil { // SEC-6: before any redirect to it
		return
	}
	user, upstreamToken, err := login()
	if err != nil {
		s.log.Info("upstream login failed", "connector", connector, "err", err.Error())
		note.stop("", "the sign-in at "+connector+" failed: "+err.Error())
		s.loginFailed(w, issuer, connector, req, err)
		return
	}
	note.attemptOf(req.ID, req.ClientID, user.ID)
	if !s.groupsAdmitted(w, r, issuer, req, user) { // SEC-70, SEC-71
		return
	}
	s.finishLogin(w, r, issuer, user, upstreamToken, req, kind)
}
