package authserver

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/store"
)

var errBadRefresh = oauth.Errorf(oauth.InvalidGrant, "the refresh token is invalid, expired, revoked or already used")

// refresh implements the refresh_token grant (OAuth 2.1 §4.3) with
// rotation and reuse detection (RT-1): each refresh token works once; a
// rotated token presented again revokes its whole family.
func (s *Server) refresh(r *http.Request, client *store.Client, form url.Values) (*TokenResponse, *oauth.Error) {
	ctx := r.Context()
	old := form.Get("refresh_token")
	if old == "" || len(old) > 128 {
		return nil, oauth.Errorf(oauth.InvalidRequest, "refresh_token is required")
	}
	requested, ok := oauth.ParseScope(form.Get("scope"))
	if !ok {
		return nil, oauth.Errorf(oauth.InvalidScope, "scope is not a valid scope string")
	}
	var resource string
	if raw := form.Get("resource"); raw != "" {
		_, canon, ok := s.resourceFor(r, raw)
		if !ok {
			return nil, oauth.Errorf(oauth.InvalidTarget, "the resource is not served by this authorization server")
		}
		resource = canon
	}
	now := s.now()
	newToken := tokens.NewSecret()
	next := &store.RefreshToken{Hash: tokens.Hash(newToken), CreatedAt: now, ExpiresAt: now.Add(s.opts.RefreshTokenTTL)}
	grant, prev, err := s.store.RotateRefresh(ctx, tokens.Hash(old), next, nil, now, 0)
	switch {
	case errors.Is(err, store.ErrRefreshReused):
		s.log.Warn("refresh token reused: family revoked", "client_id", client.ID, "grant", grant.ID)
		s.opts.Revoked(grant.ID)
		return nil, errBadRefresh
	case errors.Is(err, store.ErrNotFound):
		return nil, errBadRefresh
	case err != nil:
		return nil, oauth.AsError(err)
	}
	if !tokens.Equal(grant.ClientID, client.ID) {
		// A refresh token in the hands of another client was stolen: the
		// family is done.
		s.log.Warn("refresh token presented by another client: family revoked", "client_id", client.ID, "grant", grant.ID)
		_ = s.store.RevokeGrant(ctx, grant.ID, now)
		s.opts.Revoked(grant.ID)
		return nil, errBadRefresh
	}
	if resource != "" && resource != grant.Resource {
		return nil, oauth.Errorf(oauth.InvalidTarget, "the refresh token was not issued for this resource")
	}
	// The access token's scope may narrow, never widen (RFC 6749 §6); the
	// new refresh token keeps the old one's scope, as §6 requires.
	scopes := prev.Scopes
	if len(requested) > 0 {
		requested = withoutOfflineAccess(requested)
		if !oauth.ContainsAll(grant.Scopes, requested) {
			return nil, oauth.Errorf(oauth.InvalidScope, "the requested scope exceeds what was granted")
		}
		if len(requested) > 0 {
			scopes = requested
		}
	}
	at, exp, err := s.mint(r, grant.ID, client.ID, grant.Resource, grant.User, scopes)
	if err != nil {
		return nil, oauth.AsError(err)
	}
	s.log.Info("tokens issued", "grant_type", "refresh_token", "client_id", client.ID, "user", grant.User.ID, "grant", grant.ID, "generation", next.Generation)
	return &TokenResponse{AccessToken: at, TokenType: "Bearer", ExpiresIn: exp, RefreshToken: newToken, Scope: oauth.JoinScope(scopes)}, nil
}

func withoutOfflineAccess(scopes []string) []string {
	out := scopes[:0:0]
	for _, s := range scopes {
		if s != "offline_access" {
			out = append(out, s)
		}
	}
	return out
}
