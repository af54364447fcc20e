package authserver

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/mcpgate/mcpgate/internal/assertion"
)

// Metadata is the RFC 8414 authorization server metadata document.
// Field order is the order of the golden file.
type Metadata struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	RegistrationEndpoint              string   `json:"registration_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	ScopesSupported                   []string `json:"scopes_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	ResponseModesSupported            []string `json:"response_modes_supported"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	// RFC 8414 §2: present when private_key_jwt is listed (SEC-128).
	TokenEndpointAuthSigningAlgValuesSupported []string `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
	CodeChallengeMethodsSupported              []string `json:"code_challenge_methods_supported"`
	AuthorizationResponseISSSupported          bool     `json:"authorization_response_iss_parameter_supported"`
	ClientIDMetadataDocumentSupported          bool     `json:"client_id_metadata_document_supported,omitempty"`
	// RFC 8414 §2: the RFC 7009 and RFC 7662 endpoints.
	RevocationEndpoint                                 string   `json:"revocation_endpoint"`
	RevocationEndpointAuthMethodsSupported             []string `json:"revocation_endpoint_auth_methods_supported"`
	RevocationEndpointAuthSigningAlgValuesSupported    []string `json:"revocation_endpoint_auth_signing_alg_values_supported,omitempty"`
	IntrospectionEndpoint                              string   `json:"introspection_endpoint"`
	IntrospectionEndpointAuthMethodsSupported          []string `json:"introspection_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthSigningAlgValuesSupported []string `json:"introspection_endpoint_auth_signing_alg_values_supported,omitempty"`
	SubjectTypesSupported                              []string `json:"subject_types_supported,omitempty"`
	IDTokenSigningAlgValuesSupported                   []string `json:"id_token_signing_alg_values_supported,omitempty"`
}

// metadataFor builds the document for issuer (ASM-1..4, ASM-7). Endpoints
// sit at the issuer's root, which also serves 2025-03-26 clients that skip
// discovery (ASM-9).
func (s *Server) metadataFor(iss string) *Metadata {
	scopes := s.supportedScopes()
	m := &Metadata{
		Issuer:                            iss,
		AuthorizationEndpoint:             iss + "/authorize",
		TokenEndpoint:                     iss + "/token",
		RegistrationEndpoint:              iss + "/register",
		JWKSURI:                           iss + "/jwks.json",
		ScopesSupported:                   scopes,
		ResponseTypesSupported:            []string{"code"},
		ResponseModesSupported:            []string{"query"},
		GrantTypesSupported:               []string{"authorization_code", "refresh_token"},
		TokenEndpointAuthMethodsSupported: []string{"none", "client_secret_basic", "client_secret_post"},
		CodeChallengeMethodsSupported:     []string{"S256"},
		AuthorizationResponseISSSupported: true,
		ClientIDMetadataDocumentSupported: s.opts.CIMD != nil, // ASM-5
		RevocationEndpoint:                iss + "/revoke",
		// Public clients revoke their own tokens with client_id alone.
		RevocationEndpointAuthMethodsSupported:    []string{"none", "client_secret_basic", "client_secret_post"},
		IntrospectionEndpoint:                     iss + "/introspect",
		IntrospectionEndpointAuthMethodsSupported: []string{"client_secret_basic", "client_secret_post"},
	}
	if s.opts.CIMD != nil {
		// Clients from a metadata document may sign assertions with their
		// own keys (SEC-128); registration offers no such method.
		algs := assertion.AlgorithmNames()
		m.TokenEndpointAuthMethodsSupported = append(m.TokenEndpointAuthMethodsSupported, assertion.Method)
		m.TokenEndpointAuthSigningAlgValuesSupported = algs
		m.RevocationEndpointAuthMethodsSupported = append(m.RevocationEndpointAuthMethodsSupported, assertion.Method)
		m.RevocationEndpointAuthSigningAlgValuesSupported = algs
		m.IntrospectionEndpointAuthMethodsSupported = append(m.IntrospectionEndpointAuthMethodsSupported, assertion.Method)
		m.IntrospectionEndpointAuthSigningAlgValuesSupported = algs
	}
	return m
}

// supportedScopes lists every scope a client can be granted here: those of
// every resource, then offline_access, which belongs in the AS metadata
// (RT-2), never in PRM (PRM-8).
func (s *Server) supportedScopes() []string {
	scopes := []string{}
	for _, res := range s.opts.Resources {
		for _, sc := range slices.Concat(res.Scopes, res.Optional) {
			if !slices.Contains(scopes, sc) {
				scopes = append(scopes, sc)
			}
		}
	}
	return append(scopes, "offline_access")
}

func (s *Server) metadata(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.metadataFor(s.site.Issuer(r)))
}

// openIDConfiguration serves the same document at the OIDC discovery path
// (ASM-2), with the two fields OIDC Discovery §3 requires so that strict
// OIDC parsers accept it.
func (s *Server) openIDConfiguration(w http.ResponseWriter, r *http.Request) {
	m := s.metadataFor(s.site.Issuer(r))
	m.SubjectTypesSupported = []string{"public"}
	m.IDTokenSigningAlgValuesSupported = []string{"EdDSA"}
	writeJSON(w, http.StatusOK, m)
}

// JWKSMaxAge is how long a JWKS fetched from /jwks.json may be used (its
// Cache-Control max-age): a new signing key signs only once every copy
// fetched before it was published has gone stale (SEC-179).
const JWKSMaxAge = time.Minute

func (s *Server) jwks(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(int(JWKSMaxAge.Seconds())))
	_, _ = w.Write(s.keys.JWKS())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	if status != http.StatusOK || w.Header().Get("Cache-Control") == "" {
		w.Header().Set("Cache-Control", "no-store")
	}
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
