package authserver

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/cimd"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/internal/web"
	"github.com/mcpgate/mcpgate/store"
)

// authorize implements the authorization endpoint (OAuth 2.1 §4.1.1).
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		web.RenderError(w, s.log, http.StatusBadRequest, "Invalid request", "The authorization request could not be read.")
		return
	}
	q := r.Form
	ctx := r.Context()
	issuer := s.site.Issuer(r)

	// First the client and its redirect URI. Until both are verified an
	// error is a page, never a redirect (REDIR-2).
	clientID := q.Get("client_id")
	if clientID == "" || len(q["client_id"]) != 1 {
		web.RenderError(w, s.log, http.StatusBadRequest, "Invalid request", "The application did not say who it is (client_id is missing).")
		return
	}
	client, err := s.client(ctx, clientID)
	var docErr *cimd.Error
	if errors.As(err, &docErr) {
		// CIMD-9: the redirect URI cannot be verified: a page, no redirect.
		s.log.Info("authorize: client metadata document refused", "client_id", truncate(clientID, 200), "err", err.Error())
		web.RenderError(w, s.log, http.StatusBadRequest, "This application could not be verified",
			"Its client metadata document at "+truncate(clientID, 200)+" was refused: "+docErr.Reason+".")
		return
	}
	if err != nil {
		s.log.Error("authorize: load client", "client_id", clientID, "err", err)
		web.RenderError(w, s.log, http.StatusInternalServerError, "Something went wrong", "The request could not be processed. Try again later.")
		return
	}
	if client == nil {
		s.log.Info("authorize: unknown client", "client_id", truncate(clientID, 100), "reason", "not registered, deleted, or registered with another server")
		web.RenderError(w, s.log, http.StatusBadRequest, "Unknown application",
			"This application is not registered with this server. It must register again: remove the server from the application and add it back.")
		return
	}
	redirectURI := q.Get("redirect_uri")
	switch {
	case len(q["redirect_uri"]) > 1:
		redirectURI = "\x00" // never matches
	case redirectURI == "" && len(client.RedirectURIs) == 1:
		redirectURI = client.RedirectURIs[0]
	}
	if !oauth.MatchRedirectURI(client.RedirectURIs, redirectURI) { // REDIR-1, REDIR-4, DEP-5
		s.log.Info("authorize: redirect_uri not registered", "client_id", client.ID)
		web.RenderError(w, s.log, http.StatusBadRequest, "Invalid redirect address",
			"The address this application wants to send you back to is not one it registered. Nothing was sent to it.")
		return
	}

	// From here on errors go back to the client, with state and iss (ISS-1).
	state := q.Get("state")
	fail := func(e *oauth.Error) { oauth.WriteRedirect(w, r, s.log, redirectURI, state, issuer, e) }

	for _, p := range []string{"response_type", "code_challenge", "code_challenge_method", "scope", "state", "resource"} {
		if len(q[p]) > 1 {
			fail(oauth.Errorf(oauth.InvalidRequest, "%s must appear once", p))
			return
		}
	}
	if rt := q.Get("response_type"); rt != "code" {
		fail(oauth.Errorf(oauth.UnsupportedResponseType, "response_type must be code"))
		return
	}
	// PKCE-2: a challenge is required and only S256 is accepted; a missing
	// method means plain (RFC 7636 §4.3) and is refused like plain.
	challenge := q.Get("code_challenge")
	if challenge == "" {
		fail(oauth.Errorf(oauth.InvalidRequest, "code_challenge is required (PKCE with S256)"))
		return
	}
	if q.Get("code_challenge_method") != "S256" {
		fail(oauth.Errorf(oauth.InvalidRequest, "code_challenge_method must be S256"))
		return
	}
	if !tokens.ValidChallenge(challenge) {
		fail(oauth.Errorf(oauth.InvalidRequest, "code_challenge is not a valid S256 challenge"))
		return
	}
	res, resource, ok := s.resourceFor(issuer, q.Get("resource"))
	if !ok {
		fail(oauth.Errorf(oauth.InvalidTarget, "the resource is not served by this authorization server"))
		return
	}
	requested, ok := oauth.ParseScope(q.Get("scope"))
	if !ok {
		fail(oauth.Errorf(oauth.InvalidScope, "scope is not a valid scope string"))
		return
	}
	scopes := grantScopes(res, requested)

	req := &store.AuthRequest{
		ID:            tokens.NewID(),
		ClientID:      client.ID,
		RedirectURI:   redirectURI,
		State:         state,
		CodeChallenge: challenge,
		Resource:      resource,
		Scopes:        scopes,
		CreatedAt:     s.now(),
		ExpiresAt:     s.now().Add(requestTTL),
	}

	// A logged-in browser whose user already approved this client for these
	// scopes gets its code at once (DEP-2: consent is checked before any
	// upstream flow).
	sess := s.session(r, issuer)
	if sess != nil && q.Get("prompt") != "consent" {
		consent, err := s.store.GetConsent(ctx, sess.User.ID, client.ID)
		switch {
		case err == nil && oauth.ContainsAll(consent.Scopes, scopes):
			s.issueCode(w, r, issuer, req, sess.User)
			return
		case err != nil && !errors.Is(err, store.ErrNotFound):
			fail(oauth.AsError(err))
			return
		}
	}
	if q.Get("prompt") == "none" {
		fail(oauth.Errorf("consent_required", "the user must approve this application"))
		return
	}
	if err := s.store.CreateAuthRequest(ctx, req); err != nil {
		fail(oauth.AsError(err))
		return
	}
	s.renderConsent(w, r, issuer, client, req, sess)
}

// issueCode finishes a successful authorization: a single-use code bound to
// everything the request carried goes back to the client with state and iss.
func (s *Server) issueCode(w http.ResponseWriter, r *http.Request, issuer string, req *store.AuthRequest, user identity.User) {
	code := tokens.NewSecret()
	err := s.store.CreateCode(r.Context(), &store.Code{
		Hash:          tokens.Hash(code),
		ClientID:      req.ClientID,
		RedirectURI:   req.RedirectURI,
		CodeChallenge: req.CodeChallenge,
		Resource:      req.Resource,
		Scopes:        req.Scopes,
		User:          user,
		GrantID:       tokens.NewID(),
		ExpiresAt:     s.now().Add(codeTTL),
	})
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
