package cimd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/internal/assertion"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/store"
)

const maxRedirectURIs = 20 // as for DCR

// document holds the members of a client metadata document that mcpgate
// reads.
type document struct {
	id, name, method, appType, scope, clientURI, logoURI string
	jwksURI, signingAlg                                  string
	jwks                                                 json.RawMessage
	redirects, grants, responses                         []string
}

// parseDocument validates a fetched document for clientID (CIMD-3, CIMD-4,
// CIMD-8 and the RFC 7591 rules DCR applies) and returns it as a public
// client. Every failure is an *Error whose Reason names the problem.
func parseDocument(clientID string, body []byte, now time.Time) (*store.Client, error) {
	m, err := decodeObject(body)
	if err != nil {
		return nil, err
	}
	var d document
	for _, f := range []struct {
		key string
		dst any
	}{
		{"client_id", &d.id}, {"client_name", &d.name}, {"token_endpoint_auth_method", &d.method},
		{"application_type", &d.appType}, {"scope", &d.scope}, {"client_uri", &d.clientURI},
		{"logo_uri", &d.logoURI}, {"redirect_uris", &d.redirects}, {"grant_types", &d.grants},
		{"response_types", &d.responses}, {"jwks_uri", &d.jwksURI},
		{"token_endpoint_auth_signing_alg", &d.signingAlg},
	} {
		if err := member(m, f.key, f.dst); err != nil {
			return nil, err
		}
	}
	for _, check := range []func() error{
		func() error { return d.checkIdentity(clientID, m) },
		func() error { return d.checkKeys(m) },
		d.checkNameAndRedirects,
		d.checkGrants,
		d.checkRest,
	} {
		if err := check(); err != nil {
			return nil, err
		}
	}
	c := &store.Client{
		ID:                      clientID,
		Name:                    d.name,
		RedirectURIs:            d.redirects,
		GrantTypes:              d.grants,
		ResponseTypes:           d.responses,
		TokenEndpointAuthMethod: d.method,
		ApplicationType:         d.appType,
		Scope:                   d.scope,
		ClientURI:               d.clientURI,
		LogoURI:                 d.logoURI,
		CreatedAt:               now,
	}
	if d.method == assertion.Method {
		c.JWKSURI, c.JWKS, c.SigningAlg = d.jwksURI, d.jwks, d.signingAlg
	}
	return c, nil
}

// checkIdentity checks that the document is the one of clientID (CIMD-3:
// simple string comparison, no normalization) and names no shared secret
// (CIMD-8: there is no way to share one with a metadata document).
func (d *document) checkIdentity(clientID string, m map[string]json.RawMessage) error {
	if d.id == "" {
		return invalid("the document has no client_id")
	}
	if d.id != clientID {
		return invalid("the document's client_id does not match its URL exactly")
	}
	if _, ok := m["client_secret"]; ok {
		return invalid("the document contains a client_secret; client metadata documents cannot use shared secrets")
	}
	if _, ok := m["client_secret_expires_at"]; ok {
		return invalid("the document contains client_secret_expires_at; client metadata documents cannot use shared secrets")
	}
	switch {
	case d.method == "" || d.method == "none":
		d.method = "none"
		return nil
	case strings.HasPrefix(d.method, "client_secret_"):
		return invalid(fmt.Sprintf("token_endpoint_auth_method %s uses a shared secret, which client metadata documents cannot use", quote(d.method)))
	case d.method == assertion.Method: // a confidential client signs with its own keys (CIMD-8; SEC-128)
		return nil
	}
	return invalid(fmt.Sprintf("token_endpoint_auth_method %s is not supported; use none or private_key_jwt", quote(d.method)))
}

// checkKeys: a private_key_jwt client names its keys, by jwks_uri (an
// https URL with the client_id's rules, fetched under the same SSRF rules)
// or as jwks, not both (RFC 7591 §2); a signing algorithm it names must be
// one mcpgate verifies. The keys of a public client are not read.
func (d *document) checkKeys(m map[string]json.RawMessage) error {
	if d.method != assertion.Method {
		return nil
	}
	if raw, ok := m["jwks"]; ok && string(raw) != "null" {
		d.jwks = raw
	}
	switch {
	case d.jwksURI != "" && d.jwks != nil:
		return invalid("the document has both jwks_uri and jwks; a client names its keys one way (RFC 7591 §2)")
	case d.jwksURI == "" && d.jwks == nil:
		return invalid("a private_key_jwt client must name its keys with jwks_uri or jwks")
	case d.signingAlg != "" && !assertion.Supported(d.signingAlg):
		return invalid(fmt.Sprintf("token_endpoint_auth_signing_alg %s is not supported; use one of %v", quote(d.signingAlg), assertion.AlgorithmNames()))
	}
	if d.jwksURI != "" {
		return validateKeysURL(d.jwksURI)
	}
	if _, err := assertion.ParseKeySet(d.jwks); err != nil {
		return invalid("jwks: " + err.Error())
	}
	return nil
}

// checkNameAndRedirects: client_name and redirect_uris are required
// (CIMD-4), and each redirect URI must be one DCR would accept.
func (d *document) checkNameAndRedirects() error {
	name, ok := oauth.CleanClientName(d.name)
	switch {
	case !ok:
		return invalid("client_name must be at most 200 printable characters")
	case name == "":
		return invalid("the document has no client_name")
	case len(d.redirects) == 0:
		return invalid("the document has no redirect_uris")
	case len(d.redirects) > maxRedirectURIs:
		return invalid(fmt.Sprintf("the document has more than %d redirect_uris", maxRedirectURIs))
	}
	d.name = name
	for _, u := range d.redirects {
		if err := oauth.ValidateRedirectURI(u); err != nil {
			return invalid(fmt.Sprintf("redirect URI %s is not allowed: %v", quote(u), err))
		}
	}
	return nil
}

// checkGrants: the authorization code grant, optionally refresh tokens,
// and the code response type; absent lists take those defaults.
func (d *document) checkGrants() error {
	if len(d.grants) == 0 {
		d.grants = []string{"authorization_code", "refresh_token"}
	}
	hasCode := false
	for _, g := range d.grants {
		switch g {
		case "authorization_code":
			hasCode = true
		case "refresh_token":
		default:
			return invalid(fmt.Sprintf("grant type %s is not supported", quote(g)))
		}
	}
	if !hasCode {
		return invalid("grant_types must include authorization_code")
	}
	if len(d.responses) == 0 {
		d.responses = []string{"code"}
	}
	for _, rt := range d.responses {
		if rt != "code" {
			return invalid("only the code response type is supported")
		}
	}
	return nil
}

// checkRest checks application_type (inferred from the redirect URIs when
// absent), scope and the URLs.
func (d *document) checkRest() error {
	switch d.appType {
	case "native", "web":
	case "":
		d.appType = oauth.InferApplicationType(d.redirects)
	default:
		return invalid("application_type must be native or web")
	}
	if _, ok := oauth.ParseScope(d.scope); !ok {
		return invalid("scope is not a valid scope string")
	}
	for _, u := range []string{d.clientURI, d.logoURI} {
		if u != "" && !oauth.IsWebURL(u) {
			return invalid("client_uri and logo_uri must be http or https URLs")
		}
	}
	return nil
}

// decodeObject reads exactly one JSON object and returns its members by
// their exact names. Unlike json.Unmarshal into a struct it neither matches
// names case-insensitively ("Client_ID" is not client_id) nor lets a
// duplicate member silently win.
func decodeObject(body []byte) (map[string]json.RawMessage, error) {
	notObject := invalid("the document is not a JSON object")
	if !json.Valid(body) {
		return nil, notObject
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, notObject
	}
	m := make(map[string]json.RawMessage)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, notObject
		}
		key, _ := tok.(string)
		if _, dup := m[key]; dup {
			return nil, invalid(fmt.Sprintf("the document has the member %s twice", quote(key)))
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, notObject
		}
		m[key] = v
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, notObject
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, notObject
	}
	return m, nil
}

// member decodes m[key] into dst, a *string or *[]string. An absent member
// or null leaves dst empty; anything else of the wrong type is an error, and
// so is a null inside an array.
func member(m map[string]json.RawMessage, key string, dst any) error {
	raw, ok := m[key]
	if !ok || string(raw) == "null" {
		return nil
	}
	wrong := invalid(fmt.Sprintf("%s has the wrong type", key))
	switch d := dst.(type) {
	case *string:
		if raw[0] != '"' || json.Unmarshal(raw, d) != nil {
			return wrong
		}
	case *[]string:
		var elems []json.RawMessage
		if raw[0] != '[' || json.Unmarshal(raw, &elems) != nil {
			return wrong
		}
		out := make([]string, 0, len(elems))
		for _, e := range elems {
			var s string
			if len(e) == 0 || e[0] != '"' || json.Unmarshal(e, &s) != nil {
				return wrong
			}
			out = append(out, s)
		}
		*d = out
	default:
		panic("cimd: member: unsupported destination type")
	}
	return nil
}

// quote renders attacker-supplied text for a Reason: Go-quoted (so control
// characters are escaped) and cut to 64 bytes.
func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return fmt.Sprintf("%q", s)
}
