package authserver

import (
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/mcpgate/mcpgate/internal/assertion"
	"github.com/mcpgate/mcpgate/internal/cimd"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/store"
)

// usesAssertion reports whether a request authenticates its client with a
// JWT assertion (RFC 7521 §4.2).
func usesAssertion(form url.Values) bool {
	return form.Has("client_assertion") || form.Has("client_assertion_type")
}

// authenticateAssertion identifies a private_key_jwt client by the JWT it
// signed (RFC 7523 §2.2, §3; SEC-128), and returns the assertion verified,
// for countAssertion. client_id may be absent (RFC 7521 §4.2): the
// assertion's iss names the client, and is trusted only once its signature
// verifies with that client's keys.
func (s *Server) authenticateAssertion(r *http.Request, form url.Values) (*store.Client, *assertion.Verified, *oauth.Error) {
	note := noteOf(r.Context())
	refuse := func(why string) *oauth.Error {
		note.stop("", why)
		return &oauth.Error{Code: oauth.InvalidClient, Description: why}
	}
	token, typ := form.Get("client_assertion"), form.Get("client_assertion_type")
	// RFC 6749 §5.2: a parameter missing is invalid_request; another
	// type of assertion is a method not supported, invalid_client.
	switch {
	case typ == "":
		return nil, nil, oauth.Errorf(oauth.InvalidRequest, "client_assertion_type is required with client_assertion")
	case typ != assertion.Type:
		return nil, nil, refuse("client_assertion_type must be " + assertion.Type)
	case token == "":
		return nil, nil, oauth.Errorf(oauth.InvalidRequest, "client_assertion is required with client_assertion_type")
	}
	iss, err := assertion.Issuer(token)
	if err != nil {
		return nil, nil, refuse(err.Error())
	}
	id := form.Get("client_id")
	if id == "" {
		id = iss
	}
	if id == "" {
		// Nothing names the client but the assertion, which must then
		// (RFC 7523 §3): it is an invalid one (RFC 7521 §4.2.1).
		return nil, nil, refuse("the client assertion has no iss: it must be the client_id")
	}
	client, oerr := s.knownClient(r, id)
	if oerr != nil {
		return nil, nil, oerr
	}
	if client.TokenEndpointAuthMethod != assertion.Method || s.opts.CIMD == nil {
		return nil, nil, refuse("this client does not authenticate with a client assertion")
	}
	issuer := s.site.Issuer(r)
	want := assertion.Expected{
		ClientID:  client.ID,
		Audiences: []string{issuer, issuer + "/token", issuer + r.URL.Path},
		Alg:       client.SigningAlg,
		Now:       s.now(),
	}
	v, err := s.verifyAssertion(r, client, token, want)
	if err != nil {
		if docErr, ok := errors.AsType[*cimd.Error](err); ok {
			s.log.Info("client key set refused", "client_id", truncate(client.ID, 200), "err", err.Error())
			return nil, nil, refuse("the client's keys could not be read: " + docErr.Reason)
		}
		return nil, nil, refuse(err.Error())
	}
	return client, v, nil
}

// countAssertion accepts client's verified assertion v once, wherever it
// is presented: its use is counted in the store, which every replica adds
// to (SEC-129).
func (s *Server) countAssertion(r *http.Request, client *store.Client, v *assertion.Verified) *oauth.Error {
	note := noteOf(r.Context())
	key, until := assertion.Use(client.ID, v)
	switch n, err := s.store.AddRateHit(r.Context(), key, time.Unix(0, 0), until); {
	case err != nil:
		// Uncounted, the assertion could be used again.
		note.stop(oauth.ServerError, "the store could not count the client assertion's use (the gateway's log has the error)")
		return oauth.AsError(err)
	case n > 1:
		note.stop("", assertion.ErrReplayed.Error())
		return &oauth.Error{Code: oauth.InvalidClient, Description: assertion.ErrReplayed.Error()}
	}
	return nil
}

// verifyAssertion checks token with the client's keys, and once more with
// a new copy of a jwks_uri set when no cached key verified it: the client
// may have rotated its keys.
func (s *Server) verifyAssertion(r *http.Request, client *store.Client, token string, want assertion.Expected) (*assertion.Verified, error) {
	keys, err := s.opts.CIMD.Keys(r.Context(), client, false)
	if err != nil {
		return nil, err
	}
	v, err := assertion.Verify(token, keys, want)
	if !errors.Is(err, assertion.ErrNoKey) || client.JWKSURI == "" {
		return v, err
	}
	again, ferr := s.opts.CIMD.Keys(r.Context(), client, true)
	switch {
	case ferr != nil:
		return nil, ferr
	case again == keys:
		return v, err // the same set, not fetched again: no use checking twice
	}
	return assertion.Verify(token, again, want)
}
