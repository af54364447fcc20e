package cimd

import (
	"github.com/mcpgate/mcpgate/internal/oauth"
	"net/url"
	"strings"
)

const maxURLLength = 2048

// IsClientIDURL reports whether clientID is meant as a client ID metadata
// document URL: it starts with "https://" (CIMD-2). Only these are fetched;
// any other client_id is an ordinary registered one.
func IsClientIDURL(clientID string) bool {
	return strings.HasPrefix(clientID, "https://")
}

// ValidateClientIDURL checks the form of a client_id URL (draft §3,
// CIMD-7): https with a host and an optional port, a path other than "/",
// no "." or ".." path segments (also percent-encoded), no fragment, no
// userinfo. A query is refused although the draft says only SHOULD NOT (see
// the package documentation). The URL must be ASCII (an IDN host in its
// punycode form) without spaces, control characters or backslashes, and at
// most 2048 bytes. A failure is an *Error whose Reason says what is wrong.
func ValidateClientIDURL(raw string) error {
	return validateURL(raw, "the client_id is not a valid client metadata URL: ")
}

// validateKeysURL checks a private_key_jwt client's jwks_uri by the same
// rules: it is fetched the same way.
func validateKeysURL(raw string) error {
	return validateURL(raw, "jwks_uri is not a valid key set URL: ")
}

func validateURL(raw, prefix string) error {
	bad := func(why string) error {
		return &Error{Reason: prefix + why}
	}
	if len(raw) > maxURLLength {
		return bad("it is longer than 2048 characters")
	}
	if !strings.HasPrefix(raw, "https://") {
		return bad("it must start with https://")
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return bad("it must be ASCII without spaces, control characters or backslashes")
		}
	}
	if strings.Contains(raw, "#") {
		return bad("it must not have a fragment")
	}
	if strings.Contains(raw, "?") {
		return bad("it must not have a query")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad("it cannot be parsed")
	}
	if u.User != nil {
		return bad("it must not contain a user name or password")
	}
	host := u.Hostname()
	if host == "" {
		return bad("it needs a host")
	}
	if strings.Contains(host, "%") {
		return bad("it must not name an IPv6 zone")
	}
	// url.Parse decodes a percent-encoded host, which the consent page
	// would show as the letters it spells (SEC-120).
	for i := 0; i < len(host); i++ {
		if host[i] >= 0x80 {
			return bad("its host must be ASCII, not percent-encoded (an international host in its punycode form)")
		}
	}
	if strings.HasSuffix(u.Host, ":") || (u.Port() != "" && !oauth.ValidPort(u.Port())) {
		return bad("its port is not valid")
	}
	p := u.EscapedPath()
	if p == "" || p == "/" {
		return bad("it needs a path, such as /client-metadata.json")
	}
	for _, seg := range strings.Split(p, "/") {
		s, err := url.PathUnescape(seg)
		if err != nil {
			return bad("its path is not validly percent-encoded")
		}
		if s == "." || s == ".." {
			return bad(`its path must not contain "." or ".." segments`)
		}
	}
	return nil
}
