package authserver

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/store"
)

// revoke implements token revocation (RFC 7009), POST /revoke. The client
// authenticates as at the token endpoint (§2.1). Revoking a refresh token
// or an access token ends the grant it belongs to: the whole refresh
// family, and every access token of the grant from this moment (§2.1
// allows both). The answer is 200 with an empty body whether or not
// anything was revoked (§2.2): a token that is unknown, invalid, expired
// or another client's is left alone, and the caller cannot tell.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	form, client, ok := s.clientRequest(w, r)
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
	grantID, owner, kind, err := s.tokenGrant(r, tok)
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
		s.opts.Revoked(grantID)
		if err := s.store.RevokeGrant(r.Context(), grantID, s.now()); err != nil && !errors.Is(err, store.ErrNotFound) {
			// §2.2.1: the client may retry; the access tokens are denied
			// in this process already.
			oauth.WriteJSON(w, r, s.log, oauth.AsError(err))
			return
		}
		s.log.Info("grant revoked by its client", "client_id", client.ID, "grant", grantID, "token", kind)
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(http.StatusOK)
}

// tokenGrant finds the grant a presented token belongs to and the client
// it was issued to, for revocation: an access token of this issuer, even
// past its expiry, or a refresh token the store knows, even rotated. An
// unknown or invalid token is grantID "" and no error; only a failing
// store is an error.
func (s *Server) tokenGrant(r *http.Request, tok string) (grantID, clientID, kind string, err error) {
	if strings.Contains(tok, ".") {
		c := s.accessToken(r, tok, true)
		if c == nil || c.GrantID == "" {
			return "", "", "", nil
		}
		return c.GrantID, c.ClientID, "access_token", nil
	}
	if len(tok) > 128 {
		return "", "", "", nil
	}
	_, g, err := s.store.GetRefresh(r.Context(), tokens.Hash(tok), s.now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "", "", "", nil
	case err != nil:
		return "", "", "", err
	}
	return g.ID, g.ClientID, "refresh_token", nil
}

// accessToken verifies tok as an access token this server minted for r's
// issuer and one of its resources: signature under the keyset, issuer,
// audience, and, unless expiredOK, expiry. It returns nil for anything
// else. The claims are not trusted before the signature verifies: the
// payload is only peeked at to pick the audience to check, and the expiry
// to verify at.
func (s *Server) accessToken(r *http.Request, tok string, expiredOK bool) *tokens.Claims {
	if len(tok) > tokens.MaxTokenSize {
		return nil
	}
	peek, ok := peekClaims(tok)
	if !ok {
		return nil
	}
	iss := s.site.Issuer(r)
	aud := ""
	for _, res := range s.opts.Resources {
		if slices.Contains(peek.Aud, iss+res.Path) {
			aud = iss + res.Path
			break
		}
	}
	if aud == "" {
		return nil
	}
	v := s.verifier
	if expiredOK && s.now().Unix() >= peek.Exp {
		// Verify as of the last second the token was valid: every check
		// but expiry is the same then, and a token whose signature does
		// not verify still fails. No cache: expired tokens are rare here.
		at := time.Unix(peek.Exp-1, 0)
		v = tokens.NewVerifier(s.keys, tokens.VerifierOptions{Now: func() time.Time { return at }, CacheSize: -1})
	}
	c, err := v.Verify(tok, iss, aud)
	if err != nil {
		return nil
	}
	return c
}

// peekedClaims are the claims read from an unverified payload.
type peekedClaims struct {
	Aud []string
	Exp int64
}

func peekClaims(tok string) (peekedClaims, bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return peekedClaims{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return peekedClaims{}, false
	}
	var w struct {
		Aud json.RawMessage `json:"aud"`
		Exp int64           `json:"exp"`
	}
	if json.Unmarshal(payload, &w) != nil || w.Exp <= 0 {
		return peekedClaims{}, false
	}
	var p peekedClaims
	p.Exp = w.Exp
	var one string
	if json.Unmarshal(w.Aud, &one) == nil {
		p.Aud = []string{one}
	} else if json.Unmarshal(w.Aud, &p.Aud) != nil {
		return peekedClaims{}, false
	}
	return p, true
}
