package authserver

import (
	"context"
	"errors"
	"net/url"
	"time"

	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/store"
)

// errBadGrant is the one answer for every failed code exchange, so that a
// caller learns nothing about which binding failed.
var errBadGrant = oauth.Errorf(oauth.InvalidGrant, "the authorization code is invalid, expired or already used, or does not match this client, redirect URI, PKCE verifier or resource")

// exchangeCode implements the authorization_code grant (OAuth 2.1 §4.1.3).
func (s *Server) exchangeCode(ctx context.Context, issuer string, client *store.Client, form url.Values) (*TokenResponse, *oauth.Error) {
	note := noteOf(ctx)
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
			note.stop("", "resource "+raw+" is not served by this gateway; it serves: "+listed(s.servedResources(issuer)))
			return nil, oauth.Errorf(oauth.InvalidTarget, "the resource is not served by this authorization server")
		}
		resource = canon
	}
	// The store spends the code only for its PKCE verifier (SEC-176):
	// whoever intercepted a code, without the verifier, cannot burn it
	// before the client redeems it. An invalid verifier matches no code.
	challenge := ""
	if tokens.ValidVerifier(verifier) {
		challenge = tokens.S256(verifier)
	}
	c, err := s.store.ConsumeCode(ctx, tokens.Hash(code), challenge, s.now())
	switch {
	case errors.Is(err, store.ErrCodeReused) && !bindingsOf(c, client, "", challenge, "").possessed():
		// SEC-185: without the verifier, or from another client, the
		// replay is not the code's client finding it spent by a thief:
		// it is a thief, or a stray, and ending the grant would hand
		// whoever saw the code a way to end each new sign-in.
		s.log.Warn("authorization code replayed without its verifier or by another client: refused, its grant kept", "client_id", client.ID, "grant", c.GrantID)
		note.attemptOf(c.GrantID, client.ID, c.User.ID)
		note.stop("", "authorization code used a second time, without its PKCE verifier or by another client: refused; the grant it created stays")
		return nil, errBadGrant
	case errors.Is(err, store.ErrCodeReused):
		// PKCE-3: a replayed code revokes what it issued.
		s.log.Warn("authorization code replayed: revoking its grant", "client_id", c.ClientID, "grant", c.GrantID)
		note.attemptOf(c.GrantID, client.ID, c.User.ID)
		note.stop("", "authorization code used a second time (replayed): the grant it created, "+c.GrantID+", is revoked and its tokens refused (PKCE-3)")
		s.endReplayed(ctx, c)
		return nil, errBadGrant
	case errors.Is(err, store.ErrNotFound):
		note.stop("", "authorization code expired or unknown: a code lives 60 s and is used once; it was redeemed too late, or never issued by this gateway (or its store was reset since)")
		return nil, errBadGrant
	case err != nil && !errors.Is(err, store.ErrCodeMismatch):
		return nil, oauth.AsError(err)
	}
	note.attemptOf(c.GrantID, client.ID, c.User.ID)
	if b := bindingsOf(c, client, form.Get("redirect_uri"), challenge, resource); !b.all() {
		s.log.Info("code exchange refused", "client_id", client.ID, "client_ok", b.client, "redirect_ok", b.redirect, "pkce_ok", b.pkce, "resource_ok", b.resource)
		note.stop("", codeMismatch(c, client.ID, b))
		if b.client && b.redirect && b.pkce {
			// Its holder, naming another resource the gateway serves: RFC
			// 8707 §2.2's error, which says what to change.
			return nil, oauth.Errorf(oauth.InvalidTarget, "the authorization code was not issued for this resource, and is spent: authorize again naming the resource")
		}
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
	if err := s.store.CreateGrant(ctx, grant, rt); errors.Is(err, store.ErrConflict) {
		// The grant was stored first, revoked: by a replay of the code
		// (endReplayed), or by the person revoking the application
		// meanwhile (DeleteConsent, SEC-155).
		s.log.Warn("authorization code's grant ended during its redemption (the code replayed, or the application revoked): nothing issued", "client_id", client.ID, "grant", grant.ID)
		return nil, errBadGrant
	} else if errors.Is(err, store.ErrAccountDisabled) {
		// Disabled while this code was on its way (SEC-93).
		s.log.Warn("authorization code of an account disabled since: nothing issued", "client_id", client.ID, "user", grant.User.ID)
		return nil, errBadGrant
	} else if err != nil {
		return nil, oauth.AsError(err)
	}
	resp.AccessToken, resp.ExpiresIn, err = s.mint(issuer, grant.ID, client.ID, grant.Resource, grant.User, grant.Scopes)
	if err != nil {
		return nil, oauth.AsError(err)
	}
	s.log.Info("tokens issued", "grant_type", "authorization_code", "client_id", client.ID, "user", grant.User.ID, "grant", grant.ID)
	return resp, nil
}

// codeBindings says which of a code's bindings its exchange holds.
type codeBindings struct {
	client, redirect, pkce, resource bool
	redirectURI, resourceURI         string // as the exchange gave them
}

func (b codeBindings) all() bool { return b.client && b.redirect && b.pkce && b.resource }

// possessed reports whether the request holds what only the code's
// client holds: its id and the code's PKCE verifier.
func (b codeBindings) possessed() bool { return b.client && b.pkce }

// bindingsOf checks every binding of c, each in constant time, before the
// caller decides: the client, the redirect URI (which a client of one may
// leave out), the challenge of the verifier ("" for an invalid one,
// PKCE-2), and the resource when the exchange names one.
func bindingsOf(c *store.Code, client *store.Client, redirect, challenge, resource string) codeBindings {
	if redirect == "" && len(client.RedirectURIs) == 1 {
		redirect = client.RedirectURIs[0]
	}
	return codeBindings{
		client:      tokens.Equal(c.ClientID, client.ID),
		redirect:    tokens.Equal(c.RedirectURI, redirect),
		pkce:        challenge != "" && tokens.Equal(challenge, c.CodeChallenge),
		resource:    resource == "" || tokens.Equal(resource, c.Resource),
		redirectURI: redirect,
		resourceURI: resource,
	}
}

// endReplayed revokes the grant of a replayed code (PKCE-3), in the store,
// so that it stays revoked across a restart. The code's first redemption
// may still be between spending the code and storing the grant: then
// there is nothing to revoke yet, and the grant is stored here, revoked,
// so that the first redemption's CreateGrant conflicts and issues nothing.
// If that CreateGrant lands between the two steps here, the grant exists
// by the time of the second revocation.
func (s *Server) endReplayed(ctx context.Context, c *store.Code) {
	s.opts.Revoked(c.GrantID)
	s.revokeUntilStored(ctx, c.GrantID, "replayed code", func(ctx context.Context) error {
		now := s.now()
		err := s.store.RevokeGrant(ctx, c.GrantID, now)
		if errors.Is(err, store.ErrNotFound) {
			ended := &store.Grant{ID: c.GrantID, ClientID: c.ClientID, User: c.User, Resource: c.Resource,
				Scopes: withoutOfflineAccess(c.Scopes), CreatedAt: now, RevokedAt: now}
			err = s.store.CreateGrant(ctx, ended, nil)
			if errors.Is(err, store.ErrConflict) {
				err = s.store.RevokeGrant(ctx, c.GrantID, now)
			}
		}
		return err
	})
}

// revokeRetryFor is how long a revocation the store refused is tried
// again, ever less often up to revokeRetryMax apart.
const (
	revokeRetryFor = time.Hour
	revokeRetryMax = 30 * time.Second
)

// revokeUntilStored runs revoke, a revocation of grantID in the store
// that this process already denies in memory, and when the store refuses
// it, runs it again in the background until it is stored (SEC-12): the
// other replicas, and this one after a restart or once its denylist entry
// lapses, know of it only from the store.
func (s *Server) revokeUntilStored(ctx context.Context, grantID, why string, revoke func(context.Context) error) {
	err := revoke(ctx)
	if err == nil {
		return
	}
	s.log.Error("revoking a grant failed; trying again in the background", "grant", grantID, "why", why, "err", err)
	go func() {
		ctx := context.WithoutCancel(ctx)
		wait, giveUp := time.Second, time.Now().Add(revokeRetryFor)
		for time.Now().Before(giveUp) {
			time.Sleep(wait)
			if err = revoke(ctx); err == nil {
				s.log.Info("revoked the grant once the store took it", "grant", grantID, "why", why)
				return
			}
			wait = min(2*wait, revokeRetryMax)
		}
		s.log.Error("revoking a grant failed for an hour; revoke it with mcpgate grants revoke", "grant", grantID, "why", why, "err", err)
	}()
}
