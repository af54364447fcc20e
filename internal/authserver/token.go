package authserver

import (
	"errors"
	"net/http"
	"net/url"
	"slices"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/assertion"
	"github.com/mcpgate/mcpgate/internal/cimd"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/ratelimit"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/store"
)

// TokenResponse is the RFC 6749 §5.1 success body.
type TokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

// token implements the token endpoint. Every answer is no-store (TOK-6).
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	form, client, ok := s.clientRequest(w, r, ratelimit.EndpointToken)
	noteOf(r.Context()).params(r.PostForm, "grant_type", "redirect_uri", "resource", "scope")
	if !ok {
		return
	}
	issuer := s.site.Issuer(r)
	var resp *TokenResponse
	var oerr *oauth.Error
	switch gt := form.Get("grant_type"); gt {
	case "authorization_code":
		resp, oerr = s.exchangeCode(r.Context(), issuer, client, form)
	case "refresh_token":
		resp, oerr = s.refresh(r.Context(), issuer, client, form)
	case "":
		oerr = oauth.Errorf(oauth.InvalidRequest, "grant_type is required")
	default:
		oerr = oauth.Errorf(oauth.UnsupportedGrantType, "grant_type must be authorization_code or refresh_token")
	}
	if oerr != nil {
		oauth.WriteJSON(w, r, s.log, oerr)
		return
	}
	s.touch(r.Context(), client)
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, resp)
}

// clientRequest reads the form of a token, revocation or introspection
// request, authenticates its client and holds it to the rate limits of
// endpoint; on failure it has answered (a JSON error, or 429) and ok is
// false. A client assertion's use is counted last (SEC-129), a write to
// the store that a client over its limit does not make.
func (s *Server) clientRequest(w http.ResponseWriter, r *http.Request, endpoint string) (form url.Values, client *store.Client, ok bool) {
	form, oerr := parsePostForm(w, r)
	var signed *assertion.Verified
	if oerr == nil {
		client, signed, oerr = s.authenticateClient(r, form)
	}
	if oerr != nil {
		oauth.WriteJSON(w, r, s.log, oerr)
		return nil, nil, false
	}
	if s.overLimit(w, r, endpoint, client) {
		return nil, nil, false
	}
	if signed != nil {
		if oerr := s.countAssertion(r, client, signed); oerr != nil {
			oauth.WriteJSON(w, r, s.log, oerr)
			return nil, nil, false
		}
	}
	return form, client, true
}

// parsePostForm reads the form body of the token, revocation and
// introspection endpoints, where every parameter appears at most once
// (RFC 6749 §3.2).
func parsePostForm(w http.ResponseWriter, r *http.Request) (url.Values, *oauth.Error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		if _, big := errors.AsType[*http.MaxBytesError](err); big {
			return nil, oauth.Errorf(oauth.InvalidRequest, "the body is over %d bytes", maxFormBody)
		}
		return nil, oauth.Errorf(oauth.InvalidRequest, "the body must be an application/x-www-form-urlencoded form")
	}
	for k, vs := range r.PostForm {
		if len(vs) > 1 {
			return nil, oauth.Errorf(oauth.InvalidRequest, "parameter %s must appear once", truncate(k, 40))
		}
	}
	return r.PostForm, nil
}

// authenticateClient identifies the client (RFC 6749 §2.3, §3.2.1): HTTP
// Basic or client_secret_post for confidential clients with a secret, a
// signed JWT for private_key_jwt clients (RFC 7523 §2.2), client_id alone
// for public ones. Secrets are compared as hashes in constant time. A
// client that signed an assertion comes with it, verified but not yet
// counted (countAssertion).
func (s *Server) authenticateClient(r *http.Request, form url.Values) (*store.Client, *assertion.Verified, *oauth.Error) {
	invalid := &oauth.Error{Code: oauth.InvalidClient, Description: "client authentication failed"}
	id, secret, basic := r.BasicAuth()
	oneMethod := oauth.Errorf(oauth.InvalidRequest, "use one client authentication method")
	switch {
	case usesAssertion(form):
		if basic || oauth.AttemptedBasic(r) || form.Has("client_secret") {
			return nil, nil, oneMethod
		}
		return s.authenticateAssertion(r, form)
	case basic:
		var err1, err2 error
		id, err1 = url.QueryUnescape(id) // RFC 6749 §2.3.1 form-encodes both
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil || id == "" {
			return nil, nil, invalid // RFC 6749 §5.2: Basic tried and failed
		}
		if form.Get("client_secret") != "" || (form.Get("client_id") != "" && form.Get("client_id") != id) {
			return nil, nil, oneMethod
		}
	case oauth.AttemptedBasic(r):
		return nil, nil, invalid // not valid Basic: the body does not stand in for it
	default:
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	if id == "" {
		return nil, nil, oauth.Errorf(oauth.InvalidRequest, "client_id is required")
	}
	client, oerr := s.knownClient(r, id)
	if oerr != nil {
		return nil, nil, oerr
	}
	note := noteOf(r.Context())
	switch {
	case client.Public():
		return client, nil, nil
	case client.TokenEndpointAuthMethod == assertion.Method:
		note.stop("", "this client authenticates with a signed client assertion (private_key_jwt) and the request has none")
		return nil, nil, &oauth.Error{Code: oauth.InvalidClient, Description: "this client authenticates with a client assertion (private_key_jwt)"}
	case secret == "" || !tokens.Equal(string(tokens.Hash(secret)), string(client.SecretHash)):
		note.stop("", "the client secret is missing or wrong for this confidential client")
		return nil, nil, invalid
	}
	return client, nil, nil
}

// knownClient finds the client id names for an endpoint where it
// authenticates, or answers why it cannot: invalid_client for an unknown
// client or a refused metadata document.
func (s *Server) knownClient(r *http.Request, id string) (*store.Client, *oauth.Error) {
	note := noteOf(r.Context())
	note.client(id)
	client, err := s.client(r.Context(), id)
	var docErr *cimd.Error
	if errors.As(err, &docErr) {
		s.log.Info("token: client metadata document refused", "client_id", truncate(id, 200), "err", err.Error())
		note.documentRefused(id, docErr)
		return nil, &oauth.Error{Code: oauth.InvalidClient, Description: "the client metadata document was refused: " + docErr.Reason}
	}
	if err != nil {
		return nil, oauth.AsError(err)
	}
	if client == nil {
		s.log.Info("token: unknown client", "client_id", truncate(id, 100))
		note.stop("", unknownClientReason(id))
		return nil, &oauth.Error{Code: oauth.InvalidClient, Description: "unknown client: register again"}
	}
	return client, nil
}

// mint issues the access token for a grant, with the scopes given.
func (s *Server) mint(issuer, grantID, clientID, resource string, user identity.User, scopes []string) (string, int64, error) {
	now := s.now()
	ttl := s.opts.AccessTokenTTL
	at, err := s.keys.Mint(&tokens.Claims{
		Issuer:    issuer,
		Subject:   user.ID,
		Audience:  resource, // RES-3: the token names its one resource
		ClientID:  clientID,
		Scopes:    scopes,
		IssuedAt:  now,
		ExpiresAt: now.Add(ttl),
		ID:        tokens.NewID(),
		GrantID:   grantID,
		User:      user,
	})
	return at, int64(ttl.Seconds()), err
}

// wantsRefresh: a refresh token is issued when the client may use the
// refresh_token grant or asked for offline_access (RT-2).
func wantsRefresh(c *store.Client, requested []string) bool {
	return slices.Contains(c.GrantTypes, "refresh_token") || slices.Contains(requested, "offline_access")
}
