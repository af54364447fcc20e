package resource

import (
	"encoding/json"
	"net/http"
)

// Metadata is the RFC 9728 §2 Protected Resource Metadata document.
type Metadata struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers"`
	ScopesSupported        []string `json:"scopes_supported"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ResourceName           string   `json:"resource_name,omitempty"`
}

// MetadataHandler serves the PRM of the resource at path (PRM-1, PRM-2,
// PRM-9): resource is the canonical URL the client connected to, and
// authorization_servers holds the issuer byte for byte (ASM-3).
// offline_access is never listed (PRM-8).
func (g *Guard) MetadataHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		iss := g.opts.Site.Issuer(r)
		m := Metadata{
			Resource:               iss + g.opts.Resource.Path,
			AuthorizationServers:   []string{iss},
			ScopesSupported:        g.advertised,
			BearerMethodsSupported: []string{"header"},
			ResourceName:           g.opts.Resource.Name,
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(m)
	})
}
