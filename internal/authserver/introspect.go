package authserver

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/ratelimit"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/store"
)

// Introspection is the RFC 7662 §2.2 response. Only Active is present for a
// token that is not active. Field order is the RFC's.
type Introspection struct {
	Active    bool   `json:"active"`
	Scope     string `json:"scope,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	Username  string `json:"username,omitempty"`
	TokenType string `json:"token_type,omitempty"` // "Bearer" or "refresh_token"
	Exp       int64  `json:"exp,omitempty"`
	Iat       int64  `json:"iat,omitempty"`
	Sub       string `json:"sub,omitempty"`
	Aud       string `json:"aud,omitempty"`
	Iss       string `json:"iss,omitempty"`
	Jti       string `json:"jti,omitempty"`
}

var inactive = &Introspection{}

// introspect implements token introspection (RFC 7662), POST /introspect,
// for confidential clients only (§2.1 requires authorization; a public
// client's client_id proves nothing): anyone else gets 401 invalid_client.
//
// An access token is active when it verifies (signature, this issuer, a
// served resource, not expired) and its grant is not revoked. A refresh
// token is active when the store knows it, it has not expired, it has not
// been rotated (a rotated token only ever gets a retry answered within the
// grace window; it is no longer a credential of its own) and its grant is
// not revoked. Looking a refresh token up only reads it: introspection
// never rotates a token nor trips reuse detection.
//
// SEC-10: an active token is described only to the client it was issued
// to, and an access token also to the resource servers the operator lists
// (Options.Introspectors); §2.1 leaves to the server which tokens a caller
// may ask about. Anything else, another client's token included, is
// {"active":false}, the answer for a token that does not exist, so that
// the caller learns nothing (§2.2 asks not to say why).
func (s *Server) introspect(w http.ResponseWriter, r *http.Request) {
	form, client, ok := s.clientRequest(w, r, ratelimit.EndpointIntrospect)
	if !ok {
		return
	}
	if client.Public() {
		oauth.WriteJSON(w, r, s.log, &oauth.Error{Code: oauth.InvalidClient, Description: "introspection is for confidential clients: authenticate with a client secret"})
		return
	}
	tok := form.Get("token")
	if tok == "" {
		oauth.WriteJSON(w, r, s.log, oauth.Errorf(oauth.InvalidRequest, "token is required"))
		return
	}
	var (
		resp *Introspection
		err  error
	)
	access := strings.Contains(tok, ".")
	if access {
		resp, err = s.introspectAccess(r.Context(), s.site.Issuer(r), tok)
	} else {
		resp, err = s.introspectRefresh(r.Context(), tok)
	}
	if err != nil {
		oauth.WriteJSON(w, r, s.log, oauth.AsError(err))
		return
	}
	if resp.Active && !tokens.Equal(resp.ClientID, client.ID) && !(access && s.introspectors[client.ID]) {
		s.log.Warn("introspection: token of another client not described", "client_id", client.ID, "owner", resp.ClientID, "token_type", resp.TokenType)
		resp = inactive
	}
	s.log.Info("token introspected", "client_id", client.ID, "active", resp.Active, "token_type", resp.TokenType)
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) introspectAccess(ctx context.Context, issuer, tok string) (*Introspection, error) {
	c := s.accessToken(issuer, tok, false)
	if c == nil {
		return inactive, nil
	}
	if revoked, err := s.grantRevoked(ctx, c.GrantID); err != nil || revoked {
		return inactive, err
	}
	return &Introspection{
		Active:    true,
		Scope:     oauth.JoinScope(c.Scopes),
		ClientID:  c.ClientID,
		Username:  c.User.Username,
		TokenType: "Bearer",
		Exp:       c.ExpiresAt.Unix(),
		Iat:       c.IssuedAt.Unix(),
		Sub:       c.Subject,
		Aud:       c.Audience,
		Iss:       c.Issuer,
		Jti:       c.ID,
	}, nil
}

// grantRevoked asks the denylist, then the store, which also knows grants
// revoked by another process.
func (s *Server) grantRevoked(ctx context.Context, grantID string) (bool, error) {
	if grantID == "" || s.opts.Denied(grantID) {
		return true, nil
	}
	g, err := s.store.GetGrant(ctx, grantID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return true, nil
	case err != nil:
		return false, err
	}
	return !g.RevokedAt.IsZero(), nil
}

func (s *Server) introspectRefresh(ctx context.Context, tok string) (*Introspection, error) {
	if len(tok) > 128 {
		return inactive, nil
	}
	rt, g, err := s.store.GetRefresh(ctx, tokens.Hash(tok), s.now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return inactive, nil
	case err != nil:
		return nil, err
	case !rt.RotatedAt.IsZero() || !g.RevokedAt.IsZero() || s.opts.Denied(g.ID):
		// Denied: revoked here, its store write not yet taken (SEC-12),
		// as /token and the access tokens' introspection read it.
		return inactive, nil
	}
	resp := &Introspection{
		Active:    true,
		Scope:     oauth.JoinScope(rt.Scopes),
		ClientID:  g.ClientID,
		TokenType: "refresh_token",
		Sub:       g.User.ID,
	}
	if !rt.ExpiresAt.IsZero() {
		resp.Exp = rt.ExpiresAt.Unix()
	}
	return resp, nil
}
