package authserver

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/appname"
	"github.com/mcpgate/mcpgate/internal/cimd"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/web"
	"github.com/mcpgate/mcpgate/store"
)

const maxFormBody = 16 << 10

// renderConsent shows the consent page (DEP-3): the client's name, where
// the code will go, the scopes, and a CSRF-protected form.
func (s *Server) renderConsent(w http.ResponseWriter, r *http.Request, issuer string, c *store.Client, req *store.AuthRequest, sess *store.Session) {
	s.consentPage(w, r, issuer, c, req, sess, false)
}

// consentPage is renderConsent; elsewhere says that the request was
// approved in another browser whose login link was opened in this one
// (SEC-1), and the page warns about it. A request whose client asked the
// person to sign in again (prompt=login, SEC-162) offers the ways to sign
// in whoever is signed in here, and its form sends the person to sign in.
func (s *Server) consentPage(w http.ResponseWriter, r *http.Request, issuer string, c *store.Client, req *store.AuthRequest, sess *store.Session, elsewhere bool) {
	if req.SignIn {
		sess = nil
	}
	data := web.Consent{
		App:        s.appDisplay(c, req),
		Elsewhere:  elsewhere,
		SignIn:     req.SignIn,
		Scopes:     req.Scopes,
		Resource:   req.Resource,
		RequestID:  req.ID,
		CSRF:       s.csrfToken(w, r, issuer, "consent", req.ID),
		FormAction: "/consent",
	}
	if sess != nil {
		data.User = displayName(sess.User)
	} else {
		for _, con := range s.order {
			data.Connectors = append(data.Connectors, web.Choice{ID: con.ID(), Name: con.DisplayName()})
		}
		data.ShowConnectors = len(data.Connectors) > 1
	}
	web.Render(w, s.log, http.StatusOK, "consent.html", data)
}

// appDisplay is what the consent and login pages say about the client of
// req (DEP-3, SEC-3), and who registered it (SEC-126).
func (s *Server) appDisplay(c *store.Client, req *store.AuthRequest) web.App {
	name := c.Name
	if name == "" {
		name = "An unnamed application"
	}
	redirectHost, localOnly := redirectDisplay(req.RedirectURI)
	var clientHost string
	if cimd.IsClientIDURL(c.ID) {
		if u, err := url.Parse(c.ID); err == nil {
			clientHost = u.Host // CIMD-12: who publishes the document
		}
	}
	_, static := s.static[c.ID]
	return web.App{ClientName: name, ClientID: c.ID, ClientHost: clientHost, RedirectHost: redirectHost, LocalhostOnly: localOnly,
		Preregistered: static, SelfRegistered: !static && clientHost == "",
		Namesake: !static && s.staticNames.Taken(c.Name), MixedScripts: !static && appname.MixedScripts(c.Name)}
}

// redirectDisplay names where the browser will be sent: the host of an
// http(s) redirect URI, or the scheme of a native app's private-use URI;
// and whether that is this computer (an http loopback URI), which the
// pages warn about (CIMD-11). Both describe this request's redirect URI,
// where the code goes, not the client's list (SEC-6).
func redirectDisplay(redirectURI string) (string, bool) {
	u, err := url.Parse(redirectURI)
	if err != nil {
		return "an unknown address", false
	}
	host := u.Host
	if u.Scheme != "http" && u.Scheme != "https" {
		host = u.Scheme + ": (an application on this computer)"
	}
	return host, u.Scheme == "http" && oauth.IsLoopbackHost(u.Hostname())
}

// requestClient loads the client of a stored request and checks that the
// request's redirect URI is still one the client lists: a metadata
// document can change after /authorize, and every later step sends the
// code, or an error, only where the client's current record allows
// (REDIR-1, SEC-6). On failure it answers with a page, never a redirect
// (REDIR-2), and returns nil.
func (s *Server) requestClient(w http.ResponseWriter, r *http.Request, req *store.AuthRequest) *store.Client {
	c, err := s.client(r.Context(), req.ClientID)
	if err != nil || c == nil {
		s.log.Info("client of a request gone", "client_id", truncate(req.ClientID, 200), "err", err)
		web.RenderError(w, s.log, http.StatusBadRequest, "This sign-in request can no longer be used",
			"Go back to the application and start connecting again.")
		return nil
	}
	if !oauth.MatchRedirectURI(c.RedirectURIs, req.RedirectURI) {
		s.log.Warn("redirect_uri of a request no longer registered", "client_id", truncate(req.ClientID, 200))
		web.RenderError(w, s.log, http.StatusBadRequest, "This sign-in request can no longer be used",
			"The application no longer lists the address it asked to send you back to, so nothing was sent there. Go back to the application and start again.")
		return nil
	}
	return c
}

// userOf is the user of a browser session, the zero User without one.
func userOf(sess *store.Session) identity.User {
	if sess == nil {
		return identity.User{}
	}
	return sess.User
}

func displayName(u identity.User) string {
	if u.Username != "" {
		return u.Username
	}
	if u.Name != "" {
		return u.Name
	}
	return u.ID
}

// consent handles the consent form: deny sends access_denied to the
// client; allow either finishes at once (logged-in browser) or, only now,
// creates the single-use upstream state, bound to this browser (SEC-1),
// and sends the person to log in (DEP-6, DEP-7): a browser logged in
// through a provider that is rechecked goes to log in there again, for
// this grant (RT-3).
func (s *Server) consent(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	issuer := s.site.Issuer(r)
	note := noteOf(ctx)
	req := s.consentRequest(w, r, issuer)
	if req == nil {
		return
	}
	switch r.PostForm.Get("decision") {
	case "deny":
		if s.store.DeleteAuthRequest(ctx, req.ID) != nil {
			web.RenderError(w, s.log, http.StatusBadRequest, "This sign-in request was already used", "Go back to the application and start again.")
			return
		}
		s.log.Info("consent denied", "client_id", req.ClientID)
		note.stop("", "the person denied the application on the consent page")
		oauth.WriteRedirect(w, r, s.log, req.RedirectURI, req.State, issuer, oauth.Errorf(oauth.AccessDenied, "the user denied the request"))
		return
	case "allow":
	default:
		web.RenderError(w, s.log, http.StatusBadRequest, "Invalid request", "The form did not say whether to allow or deny.")
		return
	}

	sess := s.session(r, issuer)
	if req.SignIn {
		// prompt=login (SEC-162): the person signs in again, as whoever
		// they choose, whoever is signed in here.
		sess = nil
	}
	note.user(userOf(sess).ID)
	if con := s.rechecked(userOf(sess)); con != nil {
		// The grant needs a login of its own at the provider, which
		// decides who comes back (RT-3); the consent is recorded then, as
		// the person who allowed may prove to be someone else there
		// (SEC-2, SEC-75).
		s.sendToLogin(w, r, issuer, req, con, flowReconsent)
		return
	}
	if sess != nil {
		if err := s.store.DeleteAuthRequest(ctx, req.ID); err != nil {
			web.RenderError(w, s.log, http.StatusBadRequest, "This sign-in request was already used", "Go back to the application and start again.")
			return
		}
		if !s.admitted(w, r, issuer, req, sess.User) {
			return
		}
		if err := s.rememberConsent(r, sess.User, req); err != nil {
			oauth.WriteRedirect(w, r, s.log, req.RedirectURI, req.State, issuer, err)
			return
		}
		s.issueCode(w, r, issuer, req, sess.User, "")
		return
	}

	con := s.order[0]
	if chosen := r.PostForm.Get("connector"); chosen != "" {
		c, ok := s.connectors[chosen]
		if !ok {
			web.RenderError(w, s.log, http.StatusBadRequest, "Invalid request", "Unknown sign-in method.")
			return
		}
		con = c
	}
	s.sendToLogin(w, r, issuer, req, con, flowLogin)
}

// consentRequest reads the consent form and returns the authorization
// request it answers, once the form is known to come from this browser's
// consent page and the request's client still stands; otherwise it
// answers the browser itself and returns nil.
func (s *Server) consentRequest(w http.ResponseWriter, r *http.Request, issuer string) *store.AuthRequest {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		web.RenderError(w, s.log, http.StatusBadRequest, "Invalid request", "The form could not be read.")
		return nil
	}
	ctx := r.Context()
	id := r.PostForm.Get("request_id")
	note := noteOf(ctx)
	if id == "" {
		note.stop(oauth.InvalidRequest, "the consent form came without its authorization request (request_id): it was not posted from the gateway's consent page")
		web.RenderError(w, s.log, http.StatusBadRequest, "Invalid request", "The form came without its sign-in request. Go back to the application and start connecting again.")
		return nil
	}
	req, err := s.store.GetAuthRequest(ctx, id, s.now())
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.log.Error("consent: load request", "err", err)
			note.stop(oauth.ServerError, "the store could not be read (the gateway's log has the error)")
			web.RenderError(w, s.log, http.StatusServiceUnavailable, "Try again",
				"The sign-in request could not be read. Try again in a moment.")
			return nil
		}
		note.stop("expired", "the authorization request expired (it lives 10 minutes) or was already used: the person must start again from the application")
		web.RenderError(w, s.log, http.StatusBadRequest, "This sign-in request has expired",
			"Go back to the application and start connecting again.")
		return nil
	}
	note.attemptOf(req.ID, req.ClientID, "")
	if !s.checkCSRF(r, issuer, "consent", req.ID) {
		s.log.Warn("consent: CSRF check failed", "client_id", req.ClientID)
		note.stop("refused", "the consent form was not posted from this browser's consent page (CSRF check failed)")
		web.RenderError(w, s.log, http.StatusForbidden, "Request refused",
			"This form was not submitted from this browser's consent page. Go back to the application and start again.")
		return nil
	}
	if s.requestClient(w, r, req) == nil {
		return nil
	}
	return req
}

func callbackURL(issuer, connector string) string {
	return issuer + "/callback/" + url.PathEscape(connector)
}

// maxConsentRedirects bounds the redirect URIs one approval remembers: a
// client that changes its own (a metadata document) cannot grow it.
const maxConsentRedirects = 16

// rememberConsent stores the user's approval of the client for the
// request's resource (DEP-2, SEC-134) and redirect URI (SEC-154),
// widening an earlier approval of it rather than replacing it. Only the
// consent post of a logged-in browser and finishLogin call it (SEC-2).
func (s *Server) rememberConsent(r *http.Request, user identity.User, req *store.AuthRequest) error {
	scopes := append([]string(nil), req.Scopes...)
	redirects := []string{req.RedirectURI}
	if old, err := s.store.GetConsent(r.Context(), user.ID, req.ClientID, req.Resource); err == nil {
		for _, sc := range old.Scopes {
			if !oauth.ContainsAll(scopes, []string{sc}) {
				scopes = append(scopes, sc)
			}
		}
		for _, u := range old.RedirectURIs {
			if len(redirects) < maxConsentRedirects && !oauth.MatchRedirectURI(redirects, u) {
				redirects = append(redirects, u)
			}
		}
	}
	return s.store.PutConsent(r.Context(), &store.Consent{UserID: user.ID, ClientID: req.ClientID, Resource: req.Resource,
		Scopes: scopes, RedirectURIs: redirects, CreatedAt: s.now()})
}

// covers reports whether an approval covers req: its scopes, a broader
// one approved counting as the narrower ones it implies in the
// resource's hierarchy (SCOPE-5), and its redirect URI, which the consent
// page named. A client may list more redirect URIs than the one the
// person saw, or add one later (a metadata document is the client's to
// change): a code for any other goes through the consent page again,
// which names it (SEC-154).
func covers(c *store.Consent, req *store.AuthRequest, implies oauth.Hierarchy) bool {
	return implies.Satisfies(c.Scopes, req.Scopes) && oauth.MatchRedirectURI(c.RedirectURIs, req.RedirectURI)
}

// finishLogin completes a flow once the upstream vouched for user and
// the access rules let them in: the browser is logged in, the consent is
// remembered, the code is issued.
// Callers have checked that this browser is the one that clicked Allow
// (SEC-1), so the consent recorded is that of the user who gave it, now
// known (SEC-2). A relogin flow (RT-3) began with a consent given before,
// or with one given on the page that named the browser's user, which
// finishRelogin records only for that user (SEC-75).
func (s *Server) finishLogin(w http.ResponseWriter, r *http.Request, issuer string, user identity.User, upstreamToken string, req *store.AuthRequest, kind flowKind) {
	if !s.admitted(w, r, issuer, req, user) {
		return
	}
	if kind != flowLogin {
		s.finishRelogin(w, r, issuer, user, upstreamToken, req, kind)
		return
	}
	if err := s.startSession(w, r, issuer, user); err != nil {
		oauth.WriteRedirect(w, r, s.log, req.RedirectURI, req.State, issuer, err)
		return
	}
	if err := s.rememberConsent(r, user, req); err != nil {
		oauth.WriteRedirect(w, r, s.log, req.RedirectURI, req.State, issuer, err)
		return
	}
	s.log.Info("user logged in", "user", user.ID, "client_id", req.ClientID)
	s.issueCode(w, r, issuer, req, user, upstreamToken)
}
