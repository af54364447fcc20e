package authserver

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/cimd"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/ratelimit"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/internal/web"
	"github.com/mcpgate/mcpgate/store"
)

// authorize implements the authorization endpoint (OAuth 2.1 §4.1.1).
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	// A POSTed request is as small as one in a URL could be; without a
	// bound, net/http reads a form of 10 MB, whose state is then stored.
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		web.RenderError(w, s.log, http.StatusBadRequest, "Invalid request", "The authorization request could not be read.")
		return
	}
	issuer := s.site.Issuer(r)
	if _, ok := csrfSecret(r, issuer); !ok && r.Method == http.MethodPost {
		// A form posted from another site carries no SameSite=Lax cookie:
		// the cookie this page would set replaced the browser's own, and
		// every form of the gateway it had open failed. The same request
		// as a GET, which carries it, is asked for instead (SEC-197).
		web.SetSecurityHeaders(w.Header())
		http.Redirect(w, r, issuer+"/authorize?"+r.Form.Encode(), http.StatusSeeOther)
		return
	}
	note := noteOf(r.Context())
	if note != nil {
		note.params(r.Form, "redirect_uri", "resource", "scope", "prompt", "response_type")
		note.pkce(r.Form)
	}
	client, redirectURI, ok := s.verifiedRedirect(w, r)
	if !ok || s.overLimit(w, r, ratelimit.EndpointAuthorize, client) {
		return
	}
	// From here on errors go back to the client, with state and iss
	// (ISS-1), at once or through a page (REDIR-3).
	q := r.Form
	fail := func(e error) { s.refuseRequest(w, r, issuer, client, redirectURI, q.Get("state"), e) }
	req, oerr := s.authRequest(issuer, client, redirectURI, q)
	if oerr != nil {
		if oerr.Code == oauth.InvalidTarget {
			note.stop("", "resource "+q.Get("resource")+" is not served by this gateway; it serves: "+listed(s.servedResources(issuer)))
		}
		fail(oerr)
		return
	}
	note.attemptOf(req.ID, client.ID, "")

	// A logged-in browser whose user already approved this client for this
	// resource (SEC-134) and these scopes gets its code at once (DEP-2: consent is checked before any
	// upstream flow), or, logged in through a provider that is rechecked,
	// goes to log in there again for this grant (RT-3).
	ctx := r.Context()
	sess := s.session(r, issuer)
	note.user(userOf(sess).ID)
	if sess != nil && !hasPrompt(q, "consent") && !req.SignIn {
		consent, err := s.store.GetConsent(ctx, sess.User.ID, client.ID, req.Resource)
		switch {
		case err == nil && covers(consent, req, s.implies(issuer, req.Resource)):
			if con := s.rechecked(sess.User); con != nil {
				s.relogin(w, r, issuer, req, con, fail)
				return
			}
			if rule := s.refusal(sess.User, req.Resource); rule != "" && hasPrompt(q, "none") {
				// No page may be shown: the refusal goes to the client.
				s.log.Warn("access refused", "user", sess.User.ID, "rule", rule, "client_id", client.ID, "resource", req.Resource)
				note.stop("", refusalReason(sess.User, rule, req.Resource))
				fail(oauth.Errorf(oauth.AccessDenied, "this user is not allowed to use this resource"))
				return
			}
			s.issueCode(w, r, issuer, req, sess.User, "")
			return
		case err != nil && !errors.Is(err, store.ErrNotFound):
			fail(err)
			return
		}
	}
	if hasPrompt(q, "none") {
		// OpenID Connect Core §3.1.2.6: what no page may ask for.
		if sess == nil {
			fail(oauth.Errorf("login_required", "the user must sign in"))
		} else {
			fail(oauth.Errorf("consent_required", "the user must approve this application"))
		}
		return
	}
	if !s.mayStoreRequest(w, r) {
		fail(errTooManyRequests)
		return
	}
	if err := s.store.CreateAuthRequest(ctx, req); err != nil {
		fail(err)
		return
	}
	s.renderConsent(w, r, issuer, client, req, sess)
}

// An authorization request, stored for the consent page, costs its
// sender one request and the store a row for requestTTL (SEC-180): one
// address stores at most requestsPerMinute of them a minute (a person
// connecting an application stores one, a page login one), and a state,
// which the row holds, is at most maxStateLen bytes (clients send tens).
const (
	requestsPerMinute = 120
	maxStateLen       = 2048
)

var errTooManyRequests = &oauth.Error{Code: oauth.TemporarilyUnavailable, Status: http.StatusTooManyRequests,
	Description: "too many authorization requests from this address; try again in a minute"}

// mayStoreRequest takes one of the request's address's stored requests;
// when none is left it sets Retry-After and reports false.
func (s *Server) mayStoreRequest(w http.ResponseWriter, r *http.Request) bool {
	addr := s.clientAddr(r)
	if _, ok := s.requests.take(addr); ok {
		return true
	}
	s.log.Warn("authorization requests: over the address's budget", "addr", addr, "per_minute", requestsPerMinute)
	w.Header().Set("Retry-After", "60")
	return false
}

// refuseRequest answers an error that /authorize found before the person
// saw any page of the gateway. It goes to the client's verified redirect
// URI at once only where the gateway can trust it (REDIR-3): anywhere
// else, whoever registered a client and crafted the link could use the
// gateway to send people to a site of their choice (an open redirector,
// RFC 9700 §4.11.2). There the person sees the error and a link that
// names where it goes, and decides.
func (s *Server) refuseRequest(w http.ResponseWriter, r *http.Request, issuer string, client *store.Client, redirectURI, state string, err error) {
	if s.trustedRedirect(r, issuer, client, redirectURI) {
		oauth.WriteRedirect(w, r, s.log, redirectURI, state, issuer, err)
		return
	}
	e := oauth.Report(w, r, s.log, err)
	name := "An application"
	if client.Name != "" {
		name = "The application “" + client.Name + "”"
	}
	host, _ := redirectDisplay(redirectURI)
	data := web.Error{
		Title: "This request was refused",
		Message: name + " asked to connect, and this server refused the request: " + e.Description + ". " +
			"You were not sent back to it, because nobody approved it here. Follow the link only if you started connecting this application yourself, just now.",
		BackText: "Go back to " + host,
	}
	if back, err := oauth.ErrorRedirectURL(redirectURI, state, issuer, e); err == nil {
		data.Back = template.URL(back) // a verified redirect URI (REDIR-1)
	}
	web.Render(w, s.log, e.HTTPStatus(), "error.html", data)
}

// trustedRedirect reports whether an error may go to redirectURI without
// the person's say: the administrator registered the client, the URI
// leads back to the person's own computer (http on a loopback host), or
// the person signed in here approved this client before, for any
// resource, with this redirect URI (SEC-154).
// A private-use scheme is not trusted: registration refuses the schemes
// known to open a browser at a web address (SEC-151), but no list of them
// is complete.
func (s *Server) trustedRedirect(r *http.Request, issuer string, client *store.Client, redirectURI string) bool {
	if _, static := s.static[client.ID]; static {
		return true
	}
	if _, local := redirectDisplay(redirectURI); local {
		return true
	}
	sess := s.session(r, issuer)
	if sess == nil {
		return false
	}
	for _, res := range s.opts.Resources {
		c, err := s.store.GetConsent(r.Context(), sess.User.ID, client.ID, issuer+res.Path)
		if err == nil && oauth.MatchRedirectURI(c.RedirectURIs, redirectURI) {
			return true
		}
	}
	return false
}

// hasPrompt reports whether the request's prompt, a space-separated list
// (OpenID Connect Core §3.1.2.1), holds v: a client asking for consent
// among other values gets the consent page (SEC-78).
func hasPrompt(q url.Values, v string) bool {
	return slices.Contains(strings.Fields(q.Get("prompt")), v)
}

// verifiedRedirect finds the request's client and checks its redirect URI.
// Until both are verified an error is a page, never a redirect (REDIR-2);
// on failure it has written that page and ok is false.
func (s *Server) verifiedRedirect(w http.ResponseWriter, r *http.Request) (client *store.Client, redirectURI string, ok bool) {
	q := r.Form
	clientID := q.Get("client_id")
	if clientID == "" || len(q["client_id"]) != 1 {
		what := "client_id is missing"
		if len(q["client_id"]) > 1 {
			what = "client_id is given more than once"
		}
		web.RenderError(w, s.log, http.StatusBadRequest, "Invalid request", "The application did not say who it is ("+what+").")
		return nil, "", false
	}
	note := noteOf(r.Context())
	note.client(clientID)
	client, err := s.client(r.Context(), clientID)
	var docErr *cimd.Error
	switch {
	case errors.As(err, &docErr):
		// CIMD-9: the redirect URI cannot be verified: a page, no redirect.
		s.log.Info("authorize: client metadata document refused", "client_id", truncate(clientID, 200), "err", err.Error())
		note.documentRefused(clientID, docErr)
		web.RenderError(w, s.log, http.StatusBadRequest, "This application could not be verified",
			"Its client metadata document at "+truncate(clientID, 200)+" was refused: "+docErr.Reason+".")
		return nil, "", false
	case err != nil:
		s.log.Error("authorize: load client", "client_id", clientID, "err", err)
		web.RenderError(w, s.log, http.StatusInternalServerError, "Something went wrong", "The request could not be processed. Try again later.")
		return nil, "", false
	case client == nil:
		s.log.Info("authorize: unknown client", "client_id", truncate(clientID, 100), "reason", "not registered, deleted, or registered with another server")
		note.stop(oauth.InvalidClient, unknownClientReason(clientID))
		web.RenderError(w, s.log, http.StatusBadRequest, "Unknown application",
			"This application is not registered with this server. It must register again: remove the server from the application and add it back.")
		return nil, "", false
	}
	redirectURI = q.Get("redirect_uri")
	switch {
	case len(q["redirect_uri"]) > 1:
		redirectURI = "\x00" // never matches
	case redirectURI == "" && len(client.RedirectURIs) == 1:
		redirectURI = client.RedirectURIs[0]
	}
	if !oauth.MatchRedirectURI(client.RedirectURIs, redirectURI) { // REDIR-1, REDIR-4, DEP-5
		s.log.Info("authorize: redirect_uri not registered", "client_id", client.ID)
		note.stop(oauth.InvalidRedirectURI, redirectReason(q, client.RedirectURIs))
		web.RenderError(w, s.log, http.StatusBadRequest, "Invalid redirect address",
			"The address this application wants to send you back to is not one it registered. Nothing was sent to it.")
		return nil, "", false
	}
	if err := oauth.ValidateRedirectURI(redirectURI); err != nil {
		// Registered before a rule that now refuses it (SEC-120): the
		// pages would name a host the browser is not sent to.
		s.log.Info("authorize: registered redirect_uri no longer accepted", "client_id", client.ID, "err", err.Error())
		note.stop(oauth.InvalidRedirectURI, "the registered redirect URI is no longer accepted: "+err.Error())
		web.RenderError(w, s.log, http.StatusBadRequest, "Invalid redirect address",
			"The address this application registered to send you back to is no longer accepted. Nothing was sent to it. It must register again: remove the server from the application and add it back.")
		return nil, "", false
	}
	s.touch(r.Context(), client)
	return client, redirectURI, true
}

// authRequest checks the rest of an authorization request whose client
// and redirect URI are verified, and returns it with the scopes to grant.
func (s *Server) authRequest(issuer string, client *store.Client, redirectURI string, q url.Values) (*store.AuthRequest, *oauth.Error) {
	for _, p := range []string{"response_type", "code_challenge", "code_challenge_method", "scope", "state", "resource", "prompt"} {
		if len(q[p]) > 1 {
			return nil, oauth.Errorf(oauth.InvalidRequest, "%s must appear once", p)
		}
	}
	if hasPrompt(q, "none") && len(strings.Fields(q.Get("prompt"))) > 1 {
		// OpenID Connect Core §3.1.2.1: none forbids every page the
		// others ask for (SEC-78).
		return nil, oauth.Errorf(oauth.InvalidRequest, "prompt none cannot be combined with other values")
	}
	if rt := q.Get("response_type"); rt != "code" {
		return nil, oauth.Errorf(oauth.UnsupportedResponseType, "response_type must be code")
	}
	// PKCE-2: a challenge is required and only S256 is accepted; a missing
	// method means plain (RFC 7636 §4.3) and is refused like plain.
	challenge := q.Get("code_challenge")
	switch {
	case challenge == "":
		return nil, oauth.Errorf(oauth.InvalidRequest, "code_challenge is required (PKCE with S256)")
	case q.Get("code_challenge_method") != "S256":
		return nil, oauth.Errorf(oauth.InvalidRequest, "code_challenge_method must be S256")
	case !tokens.ValidChallenge(challenge):
		return nil, oauth.Errorf(oauth.InvalidRequest, "code_challenge is not a valid S256 challenge")
	}
	res, resource, ok := s.resourceFor(issuer, q.Get("resource"))
	if !ok {
		return nil, oauth.Errorf(oauth.InvalidTarget, "the resource is not served by this authorization server")
	}
	requested, ok := oauth.ParseScope(q.Get("scope"))
	if !ok {
		return nil, oauth.Errorf(oauth.InvalidScope, "scope is not a valid scope string")
	}
	if len(q.Get("state")) > maxStateLen {
		return nil, oauth.Errorf(oauth.InvalidRequest, "state is longer than %d bytes", maxStateLen)
	}
	now := s.now()
	return &store.AuthRequest{
		ID:            tokens.NewID(),
		ClientID:      client.ID,
		RedirectURI:   redirectURI,
		State:         q.Get("state"),
		CodeChallenge: challenge,
		Resource:      resource,
		Scopes:        grantScopes(res, requested),
		SignIn:        hasPrompt(q, "login"), // OpenID Connect Core §3.1.2.1 (SEC-162)
		CreatedAt:     now,
		ExpiresAt:     now.Add(requestTTL),
	}, nil
}

// issueCode finishes a successful authorization: a single-use code bound to
// everything the request carried goes back to the client with state and iss,
// unless the access rules keep the user out. upstreamToken, the provider's
// refresh token of the login just made ("" if none), is kept with the grant
// the code will create (RT-3).
func (s *Server) issueCode(w http.ResponseWriter, r *http.Request, issuer string, req *store.AuthRequest, user identity.User, upstreamToken string) {
	if !s.admitted(w, r, issuer, req, user) {
		return
	}
	// The grant takes the request's id, so that the flow debugger finds
	// its token and refresh steps in the attempt that began at /authorize.
	// Both are random ids that nobody holds as a secret, and a request
	// issues at most one code: it is taken from the store, or never
	// stored, by the step that issues it.
	code, grantID := tokens.NewSecret(), req.ID
	noteOf(r.Context()).attemptOf(req.ID, req.ClientID, user.ID)
	err := s.store.CreateCode(r.Context(), &store.Code{
		Hash:          tokens.Hash(code),
		ClientID:      req.ClientID,
		RedirectURI:   req.RedirectURI,
		CodeChallenge: req.CodeChallenge,
		Resource:      req.Resource,
		Scopes:        req.Scopes,
		User:          user,
		GrantID:       grantID,
		ExpiresAt:     s.now().Add(codeTTL),
	})
	if err == nil {
		// After the code: housekeeping deletes an upstream session that
		// has neither a grant nor a code to hang on. If this fails, the
		// code is never handed out and expires unused.
		err = s.keepUpstream(r.Context(), grantID, req.Connector, user, upstreamToken)
	}
	if err != nil {
		oauth.WriteRedirect(w, r, s.log, req.RedirectURI, req.State, issuer, err)
		return
	}
	s.log.Info("authorization code issued", "client_id", req.ClientID, "user", user.ID)
	params := url.Values{}
	params.Set("code", code)
	if req.State != "" {
		params.Set("state", req.State)
	}
	params.Set("iss", issuer)
	oauth.Redirect(w, req.RedirectURI, params)
}
