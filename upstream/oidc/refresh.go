package oidc

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/upstream"
)

var _ upstream.RefreshingConnector = (*Connector)(nil)

// tokenKey carries, from HandleCallbackSession into HandleCallback, where
// to put the provider's token response: HandleCallback stays the one path
// that checks a login, and its signature stays the CallbackConnector's.
type tokenKey struct{}

func keepToken(ctx context.Context, tok *oauth2.Token) {
	if p, ok := ctx.Value(tokenKey{}).(**oauth2.Token); ok {
		*p = tok
	}
}

// TokenIssuer implements upstream.RefreshingConnector: the issuer as
// configured (for Entra's common or organizations endpoints, which issuer
// the tokens name depends on the tenant).
func (c *Connector) TokenIssuer() (issuer, clientID string) {
	return c.configuredIssuer, c.oauth.ClientID
}

// HandleCallbackSession implements upstream.RefreshingConnector.
func (c *Connector) HandleCallbackSession(ctx context.Context, callbackURL string, r *http.Request) (identity.User, string, error) {
	var tok *oauth2.Token
	user, err := c.HandleCallback(context.WithValue(ctx, tokenKey{}, &tok), callbackURL, r)
	if err != nil || tok == nil {
		return user, "", err
	}
	return user, tok.RefreshToken, nil
}

// Refresh implements upstream.RefreshingConnector (OpenID Connect Core
// §12). The refreshed ID token is verified as at login, hosted domain and
// tenant included, but for the nonce, which §12.2 does not require a
// refresh's ID token to carry; without one, the claims come from userinfo
// alone, and the restrictions stay as the login's ID token decided them:
// userinfo is not signed, and only an ID token decides them.
func (c *Connector) Refresh(ctx context.Context, refreshToken string) (identity.User, string, error) {
	if refreshToken == "" {
		return identity.User{}, "", fmt.Errorf("%s: no refresh token: %w", c.name, upstream.ErrSessionEnded)
	}
	ctx = oidc.ClientContext(ctx, c.client)
	// No access token: the source refreshes at once. It keeps the old
	// refresh token when the provider does not rotate it.
	tok, err := c.oauth.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
			return identity.User{}, "", fmt.Errorf("%s: refresh: %w (%s)", c.name, upstream.ErrSessionEnded, upstream.Clip(re.ErrorDescription))
		}
		return identity.User{}, "", fmt.Errorf("%s: refresh: %w", c.name, upstream.TokenError(err))
	}
	claims := map[string]any{}
	sub := ""
	if raw, _ := tok.Extra("id_token").(string); raw != "" {
		idt, err := c.verify(ctx, raw)
		if err != nil {
			return identity.User{}, "", fmt.Errorf("%s: refreshed ID token: %w", c.name, err)
		}
		if err := idt.Claims(&claims); err != nil {
			return identity.User{}, "", fmt.Errorf("%s: refreshed ID token claims: %w", c.name, err)
		}
		// SEC-60: the person left the hosted domain or tenant the login
		// was restricted to: the session ends as at a refusal.
		if err := c.checkRestrictions(idt.Issuer, claims); err != nil {
			return identity.User{}, "", fmt.Errorf("%s: refreshed ID token: %w: %w", c.name, upstream.ErrSessionEnded, err)
		}
		sub = idt.Subject
	} else {
		ui, err := c.userinfo(ctx, tok)
		if err != nil {
			return identity.User{}, "", fmt.Errorf("%s: userinfo after refresh: %w", c.name, err)
		}
		if err := ui.Claims(&claims); err != nil {
			return identity.User{}, "", fmt.Errorf("%s: userinfo claims: %w", c.name, err)
		}
		sub = ui.Subject
	}
	if sub == "" {
		return identity.User{}, "", fmt.Errorf("%s: refresh without sub", c.name)
	}
	if c.needUserinfo(claims) && tok.Extra("id_token") != nil {
		if err := c.mergeUserinfo(ctx, tok, sub, claims); err != nil {
			return identity.User{}, "", err
		}
	}
	if err := c.checkGrantedScopes(tok, claims); err != nil {
		return identity.User{}, "", fmt.Errorf("%s: refresh: %w: %w", c.name, upstream.ErrSessionEnded, err)
	}
	user, err := c.user(claims)
	return user, tok.RefreshToken, err
}
