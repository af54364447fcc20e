package cimd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/store"
)

const maxRedirectURIs = 20 // as for DCR

// parseDocument validates a fetched document for clientID (CIMD-3, CIMD-4,
// CIMD-8 and the RFC 7591 rules DCR applies) and returns it as a public
// client. Every failure is an *Error whose Reason names the problem.
func parseDocument(clientID string, body []byte, now time.Time) (*store.Client, error) {
	m, err := decodeObject(body)
	if err != nil {
		return nil, err
	}
	var (
		id, name, method, appType, scope, clientURI, logoURI string
		redirects, grants, responses                         []string
	)
	for _, f := range []struct {
		key string
		dst any
	}{
		{"client_id", &id}, {"client_name", &name}, {"token_endpoint_auth_method", &method},
		{"application_type", &appType}, {"scope", &scope}, {"client_uri", &clientURI},
		{"logo_uri", &logoURI}, {"redirect_uris", &redirects}, {"grant_types", &grants},
		{"response_types", &responses},
	} {
		if err := member(m, f.key, f.dst); err != nil {
			return nil, err
		}
	}

	// CIMD-3: simple string comparison, no normalization.
	if id == "" {
		return nil, invalid("the document has no client_id")
	}
	if id != clientID {
		return nil, invalid("the document's client_id does not match its URL exactly")
	}

	// CIMD-8: there is no way to share a secret with a metadata document.
	if _, ok := m["client_secret"]; ok {
		return nil, invalid("the document contains a client_secret; client metadata documents cannot use shared secrets")
	}
	if _, ok := m["client_secret_expires_at"]; ok {
		return nil, invalid("the document contains client_secret_expires_at; client metadata documents cannot use shared secrets")
	}
	switch {
	case method == "" || method == "none":
	case strings.HasPrefix(method, "client_secret_"):
		return nil, invalid(fmt.Sprintf("token_endpoint_auth_method %s uses a shared secret, which client metadata documents cannot use", quote(method)))
	case method == "private_key_jwt":
		return nil, invalid("confidential CIMD clients are not supported: token_endpoint_auth_method must be none (private_key_jwt is not supported yet)")
	default:
		return nil, invalid(fmt.Sprintf("token_endpoint_auth_method %s is not supported; use none", quote(method)))
	}

	// CIMD-4: client_name and redirect_uris are required.
	name, ok := oauth.CleanClientName(name)
	if !ok {
		return nil, invalid("client_name must be at most 200 printable characters")
	}
	if name == "" {
		return nil, invalid("the document has no client_name")
	}
	if len(redirects) == 0 {
		return nil, invalid("the document has no redirect_uris")
	}
	if len(redirects) > maxRedirectURIs {
		return nil, invalid(fmt.Sprintf("the document has more than %d redirect_uris", maxRedirectURIs))
	}
	for _, u := range redirects {
		if err := oauth.ValidateRedirectURI(u); err != nil {
			return nil, invalid(fmt.Sprintf("redirect URI %s is not allowed: %v", quote(u), err))
		}
	}

	if len(grants) == 0 {
		grants = []string{"authorization_code", "refresh_token"}
	}
	hasCode := false
	for _, g := range grants {
		switch g {
		case "authorization_code":
			hasCode = true
		case "refresh_token":
		default:
			return nil, invalid(fmt.Sprintf("grant type %s is not supported", quote(g)))
		}
	}
	if !hasCode {
		return nil, invalid("grant_types must include authorization_code")
	}
	if len(responses) == 0 {
		responses = []string{"code"}
	}
	for _, rt := range responses {
		if rt != "code" {
			return nil, invalid("only the code response type is supported")
		}
	}
	switch appType {
	case "native", "web":
	case "":
		appType = oauth.InferApplicationType(redirects)
	default:
		return nil, invalid("application_type must be native or web")
	}
	if _, ok := oauth.ParseScope(scope); !ok {
		return nil, invalid("scope is not a valid scope string")
	}
	for _, u := range []string{clientURI, logoURI} {
		if u != "" && !oauth.IsWebURL(u) {
			return nil, invalid("client_uri and logo_uri must be http or https URLs")
		}
	}
	return &store.Client{
		ID:                      clientID,
		Name:                    name,
		RedirectURIs:            redirects,
		GrantTypes:              grants,
		ResponseTypes:           responses,
		TokenEndpointAuthMethod: "none",
		ApplicationType:         appType,
		Scope:                   scope,
		ClientURI:               clientURI,
		LogoURI:                 logoURI,
		CreatedAt:               now,
	}, nil
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
