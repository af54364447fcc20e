package authserver

import (
	"context"
	"errors"
	"net/url"

	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/store"
)

// errBadGrant is the one answer for every failed code exchange, so that a
// caller learns nothing about which binding failed.
var errBadGrant = oauth.Errorf(oauth.InvalidGrant, "the authorization code is invalid, expired or already used, or does not match this client, redirect URI, PKCE verifier or resource")

// exchangeCode implements the authorization_code grant (OAuth 2.1 §4.1.3).
func (s *Server) exchangeCode(ctx context.Context, issuer string, client *store.Client, form url.Values) (*TokenResponse, *oauth.Error) {
	code, verifier := form.Get("code"), form.Get("code_verifier")
	if code == "" || len(code) > 128 {
		return nil, oauth.Errorf(oauth.InvalidRequest, "code is required")
	}
	if verifier == "" {
		return nil, oauth.Errorf(oauth.InvalidRequest, "code_verifier is required (PKCE)")
	}
	var resource string
	if raw := form.Get("resource"); raw != "" {
		_, canon, ok := s.resourceFor(issuer, raw)
		if !ok {
			return nil, oauth.Errorf(oauth.InvalidTarget, "the resource is not served by this authorization server")
		}
		resource = canon
	}
	c, err := s.store.ConsumeCode(ctx, tokens.Hash(code), s.now())
	switch {
	case errors.Is(err, store.ErrCodeReused):
		// PKCE-3: a replayed code revokes what it issued.
		s.log.Warn("authorization code replayed: revoking its grant", "client_id", c.ClientID, "grant", c.GrantID)
		if rerr := s.store.RevokeGrant(ctx, c.GrantID, s.now()); rerr != nil && !errors.Is(rerr, store.ErrNotFound) {
			s.log.Error("revoke grant of replayed code", "err", rerr)
		}
		s.opts.Revoked(c.GrantID)
		return nil, errBadGrant
	case errors.Is(err, store.ErrNotFound):
		return nil, errBadGrant
	case err != nil:
		return nil, oauth.AsError(err)
	}

	// Every binding is checked, each in constant time, before deciding.
	redirect := form.Get("redirect_uri")
	if redirect == "" && len(client.RedirectURIs) == 1 {
		redirect = client.RedirectURIs[0]
	}
	okClient := tokens.Equal(c.ClientID, client.ID)
	okRedirect := tokens.Equal(c.RedirectURI, redirect)
	okPKCE := tokens.ValidVerifier(verifier) && tokens.Equal(tokens.S256(verifier), c.CodeChallenge) // PKCE-2
	okResource := resource == "" || tokens.Equal(resource, c.Resource)
	if !(okClient && okRedirect && okPKCE && okResource) {
		s.log.Info("code exchange refused", "client_id", client.ID, "client_ok", okClient, "redirect_ok", okRedirect, "pkce_ok", okPKCE, "resource_ok", okResource)
		return nil, errBadGrant
	}

	now := s.now()
	scopes := withoutOfflineAccess(c.Scopes)
	grant := &store.Grant{ID: c.GrantID, ClientID: client.ID, User: c.User, Resource: c.Resource, Scopes: scopes, CreatedAt: now}
	resp := &TokenResponse{TokenType: "Bearer", Scope: oauth.JoinScope(scopes)}
	var rt *store.RefreshToken
	if wantsRefresh(client, c.Scopes) {
		resp.RefreshToken = tokens.NewSecret()
		rt = &store.RefreshToken{Hash: tokens.Hash(resp.RefreshToken), GrantID: grant.ID, Generation: 1, Scopes: scopes, CreatedAt: now, ExpiresAt: now.Add(s.opts.RefreshTokenTTL)}
	}
	if err := s.store.CreateGrant(ctx, grant, rt); err != nil {
		return nil, oauth.AsError(err)
	}
	resp.AccessToken, resp.ExpiresIn, err = s.mint(issuer, grant.ID, client.ID, grant.Resource, grant.User, grant.Scopes)
	if err != nil {
		return nil, oauth.AsError(err)
	}
	s.log.Info("tokens issued", "grant_type", "authorization_code", "client_id", client.ID, "user", grant.User.ID, "grant", grant.ID)
	return resp, nil
}
