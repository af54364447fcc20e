package oauth

import (
	"encoding/json"
	"net/http"
	"strings"
)

// Challenge is a Bearer WWW-Authenticate challenge (RFC 6750 §3,
// RFC 9728 §5.1).
type Challenge struct {
	Error            string // "", invalid_token, insufficient_scope, invalid_request
	ErrorDescription string
	Scopes           []string // the scopes the operation needs (PRM-5, SCOPE-2/3)
	ResourceMetadata string   // the PRM URL (PRM-3)
}

// String renders the header value: the Bearer scheme, quoted params,
// comma-separated (PRM-10).
func (c Challenge) String() string {
	var b strings.Builder
	b.WriteString("Bearer ")
	first := true
	param := func(name, value string) {
		if !first {
			b.WriteString(", ")
		}
		first = false
		b.WriteString(name)
		b.WriteString(`="`)
		b.WriteString(quoteEscape(value))
		b.WriteByte('"')
	}
	if c.Error != "" {
		param("error", c.Error)
	}
	if c.ErrorDescription != "" {
		param("error_description", c.ErrorDescription)
	}
	if len(c.Scopes) > 0 {
		param("scope", strings.Join(c.Scopes, " "))
	}
	if c.ResourceMetadata != "" {
		param("resource_metadata", c.ResourceMetadata)
	}
	return b.String()
}

func quoteEscape(s string) string {
	if !strings.ContainsAny(s, `"\`) {
		return s
	}
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}

// WriteChallenge answers a request to a protected resource that lacks a
// valid token (401) or enough scope (403), with a JSON body that names the
// error for clients that read bodies.
func WriteChallenge(w http.ResponseWriter, status int, c Challenge) {
	h := w.Header()
	h.Set("WWW-Authenticate", c.String())
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	code := c.Error
	if code == "" {
		code = InvalidToken
		if status == http.StatusForbidden {
			code = InsufficientScope
		}
	}
	desc := c.ErrorDescription
	if desc == "" {
		desc = "authorization required"
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}
