package authserver

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/ratelimit"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/store"
)

// revoke implements token revocation (RFC 7009), POST /revoke. The client
// authenticates as at the token endpoint (§2.1). Revoking a refresh token
// or an access token ends the grant it belongs to: the whole refresh
// family, and every access token of the grant from this moment (§2.1
// allows both). The answer is 200 with an empty body whether or not
// anything was revoked (§2.2): a token that is unknown, invalid, expired
// or another client's is left alone, and the caller cannot tell. A store
// that cannot write is a 503 (§2.2.1), and the token is left valid.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	form, client, ok := s.clientRequest(w, r, ratelimit.EndpointRevoke)
	if !ok {
		return
	}
	tok := form.Get("token")
	if tok == "" {
		oauth.WriteJSON(w, r, s.log, oauth.Errorf(oauth.InvalidRequest, "token is required"))
		return
	}
	// token_type_hint is not needed: an access token is a JWT and a
	// refresh token never contains a dot, so each is looked up where it
	// can be, whatever the hint says (§2.1 lets the server search further).
	grantID, owner, kind, err := s.tokenGrant(r.Context(), s.site.Issuer(r), tok)
	noteRevocation(noteOf(r.Context()), client.ID, grantID, owner)
	if err != nil {
		oauth.WriteJSON(w, r, s.log, oauth.AsError(err))
		return
	}
	switch {
	case grantID == "":
		s.log.Info("revocation: unknown or invalid token", "client_id", client.ID)
	case !tokens.Equal(owner, client.ID):
		// §2.1: the server verifies the token was issued to this client;
		// it must not revoke another client's token.
		s.log.Warn("revocation: token of another client left alone", "client_id", client.ID, "owner", owner, "grant", grantID)
	default:
		// SEC-12: the store first, the denylist only once the store holds
		// the revocation, so that the two never disagree: a grant denied in
		// this process only would still refresh, and would come back at
		// the next start.
		if err := s.store.RevokeGrant(r.Context(), grantID, s.now()); err != nil && !errors.Is(err, store.ErrNotFound) {
			// §2.2.1: with a 503 the client must assume the token still
			// exists, which it does, and may retry.
			s.log.Error("revocation: store write failed; the token stays valid", "client_id", client.ID, "grant", grantID, "err", err.Error())
			w.Header().Set("Retry-After", "5")
			oauth.WriteJSON(w, r, s.log, &oauth.Error{Code: oauth.TemporarilyUnavailable,
				Description: "the token could not be revoked now and is still valid: retry later"})
			return
		}
		s.opts.Revoked(grantID)
		s.log.Info("grant revoked by its client", "client_id", client.ID, "grant", grantID, "token", kind)
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(http.StatusOK)
}

// noteRevocation tells the flow debugger whose step a revocation is: the
// grant's attempt when its own client asks; when another client does, that
// client's own step, refused (SEC-117): nothing of the grant changed, and a
// "revoke: ok" in its timeline would say otherwise, written by a client
// that is not its person's.
func noteRevocation(note *flowNote, clientID, grantID, owner string) {
	switch {
	case grantID == "":
		note.client(clientID)
	case tokens.Equal(owner, clientID):
		note.attemptOf(grantID, clientID, "")
	default:
		note.client(clientID)
		note.stop("refused", "client "+clientID+" asked to revoke a token issued to client "+owner+" (grant "+grantID+
			"): left alone (RFC 7009 §2.1); the token has reached a client it was not issued to")
	}
}

// tokenGrant finds the grant a presented token belongs to and the client
// it was issued to, for revocation: an access token of this issuer, even
// past its expiry, or a refresh token the store knows, even rotated. An
// unknown or invalid token is grantID "" and no error; only a failing
// store is an error.
func (s *Server) tokenGrant(ctx context.Context, issuer, tok string) (grantID, clientID, kind string, err error) {
	if strings.Contains(tok, ".") {
		c := s.accessToken(issuer, tok, true)
		if c == nil || c.GrantID == "" {
			return "", "", "", nil
		}
		return c.GrantID, c.ClientID, "access_token", nil
	}
	if len(tok) > 128 {
		return "", "", "", nil
	}
	_, g, err := s.store.GetRefresh(ctx, tokens.Hash(tok), s.now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "", "", "", nil
	case err != nil:
		return "", "", "", err
	}
	return g.ID, g.ClientID, "refresh_token", nil
}

// accessToken verifies tok as an access token this server minted for
// issuer and one of its resources: signature under the keyset, issuer,
// audience, and, unless expiredOK, expiry. It returns nil for anything
// else. The unverified claims are only peeked at to pick the audience to
// check, and, for an expired token, the time to verify it at: the last
// second it was valid, when every check but expiry is the same.
func (s *Server) accessToken(issuer, tok string, expiredOK bool) *tokens.Claims {
	audiences, exp, ok := tokens.PeekUnverified(tok)
	if !ok {
		return nil
	}
	aud := ""
	for _, res := range s.opts.Resources {
		if slices.Contains(audiences, issuer+res.Path) {
			aud = issuer + res.Path
			break
		}
	}
	if aud == "" {
		return nil
	}
	at := s.now()
	if expiredOK && !at.Before(exp) {
		at = exp.Add(-time.Second)
	}
	c, err := s.keys.Verify(tok, issuer, aud, at)
	if err != nil {
		return nil
	}
	return c
}
