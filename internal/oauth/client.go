package oauth

import (
	"net/url"
	"strings"
	"unicode"
)

// Client metadata rules shared by dynamic registration (RFC 7591) and
// Client ID Metadata Documents.

// InferApplicationType calls a client "native" when every redirect URI is a
// loopback http URI or a private-use scheme (RFC 8252 §7), "web" otherwise.
func InferApplicationType(redirectURIs []string) string {
	for _, raw := range redirectURIs {
		u, err := url.Parse(raw)
		if err != nil {
			continue
		}
		if u.Scheme == "https" || (u.Scheme == "http" && !IsLoopbackHost(u.Hostname())) {
			return "web"
		}
	}
	return "native"
}

// CleanClientName trims a client_name and reports whether it may be shown
// on a consent page: at most 200 characters, no control characters and no
// bidirectional-text controls such as U+202E, which can make a name read
// as another one.
func CleanClientName(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if len([]rune(s)) > 200 {
		return "", false
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return "", false
		}
	}
	return s, true
}

// IsWebURL reports whether raw is an absolute http or https URL with a host,
// at most 2048 bytes long (client_uri, logo_uri).
func IsWebURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && len(raw) <= 2048
}
