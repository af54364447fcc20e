package authserver

import (
	"errors"
	"net/http"
	"strings"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/upstream"
)

// A grant of a provider that is rechecked (RT-3) stands on the provider's
// refresh token, kept with that grant alone: providers rotate refresh
// tokens, so two grants cannot share one. The gateway's browser session
// therefore issues no grant for such a user, whose groups it holds as
// they were at login: each authorization goes to the provider again, whose
// own session normally sends the browser straight back, and the grant
// gets that login's refresh token and identity, checked by the access
// rules as the provider describes the user now. The browser session only
// remembers who approved what (DEP-2) and names the user on the consent
// page.

// rechecked returns the connector user logged in with when its grants are
// rechecked at the provider (OpenID providers, GitHub: SEC-68), or nil:
// local accounts, or the recheck turned off, whose sessions issue grants
// as before.
func (s *Server) rechecked(user identity.User) upstream.RefreshingConnector {
	if s.opts.UpstreamRecheck <= 0 {
		return nil
	}
	rc, _ := s.connectors[connectorID(user)].(upstream.RefreshingConnector)
	return rc
}

// connectorID is the ID of the connector user logged in with: the prefix
// of their ID, which names the connector as it names the user.
func connectorID(user identity.User) string {
	id, _, _ := strings.Cut(user.ID, ":")
	return id
}

// relogin sends a browser logged in through con, whose user approved req's
// client before (DEP-2), to log in at con again for this grant (RT-3).
// prompt=none forbids the pages the provider may need (its own session may
// be over): login_required goes to the client, which may ask again with
// a prompt.
func (s *Server) relogin(w http.ResponseWriter, r *http.Request, issuer string, req *store.AuthRequest, con upstream.Connector, fail func(error)) {
	if hasPrompt(r.Form, "none") {
		fail(oauth.Errorf("login_required", "the user must sign in with the identity provider again"))
		return
	}
	if !s.mayStoreRequest(w, r) {
		fail(errTooManyRequests)
		return
	}
	if err := s.store.CreateAuthRequest(r.Context(), req); err != nil {
		fail(err)
		return
	}
	s.sendToLogin(w, r, issuer, req, con, flowRelogin)
}

// finishRelogin completes a relogin flow of kind for user, whom the
// provider vouched for and the access rules let in. The consent it stands
// on was given before, by the user logged in then, or (flowReconsent) on
// the consent page that named the browser's user, and is recorded now if
// that user came back. A provider may send back another user (the person
// switched accounts there): the consent given under the other name is not
// theirs, and they get the consent page rather than a code unless they
// approved the client before; a consent is recorded only when they allow
// (SEC-2, SEC-75). The browser's session follows the provider's user.
func (s *Server) finishRelogin(w http.ResponseWriter, r *http.Request, issuer string, user identity.User, upstreamToken string, req *store.AuthRequest, kind flowKind) {
	sess := s.session(r, issuer)
	allowed := kind == flowReconsent && sess != nil && sess.User.ID == user.ID
	if sess == nil || sess.User.ID != user.ID {
		if err := s.startSession(w, r, issuer, user); err != nil {
			oauth.WriteRedirect(w, r, s.log, req.RedirectURI, req.State, issuer, err)
			return
		}
	}
	if allowed {
		if err := s.rememberConsent(r, user, req); err != nil {
			oauth.WriteRedirect(w, r, s.log, req.RedirectURI, req.State, issuer, err)
			return
		}
		s.log.Info("user allowed and logged in again at the provider for a new grant", "user", user.ID, "client_id", req.ClientID)
		s.issueCode(w, r, issuer, req, user, upstreamToken)
		return
	}
	consent, err := s.store.GetConsent(r.Context(), user.ID, req.ClientID, req.Resource)
	switch {
	case err == nil && covers(consent, req, s.implies(issuer, req.Resource)):
		s.log.Info("user logged in again at the provider for a new grant", "user", user.ID, "client_id", req.ClientID)
		s.issueCode(w, r, issuer, req, user, upstreamToken)
	case err != nil && !errors.Is(err, store.ErrNotFound):
		oauth.WriteRedirect(w, r, s.log, req.RedirectURI, req.State, issuer, err)
	default:
		s.log.Info("another user came back from the provider: asking for their consent", "user", user.ID, "client_id", req.ClientID)
		s.askConsent(w, r, issuer, req, user)
	}
}

// askConsent shows user the consent page of a new request for what req
// asked: req itself is spent.
func (s *Server) askConsent(w http.ResponseWriter, r *http.Request, issuer string, req *store.AuthRequest, user identity.User) {
	c := s.requestClient(w, r, req)
	if c == nil {
		return
	}
	now := s.now()
	next := *req
	next.ID, next.Connector, next.UpstreamStateHash = tokens.NewID(), "", nil
	next.CreatedAt, next.ExpiresAt = now, now.Add(requestTTL)
	if err := s.store.CreateAuthRequest(r.Context(), &next); err != nil {
		oauth.WriteRedirect(w, r, s.log, req.RedirectURI, req.State, issuer, err)
		return
	}
	s.renderConsent(w, r, issuer, c, &next, &store.Session{User: user})
}
