package oauth

import (
	"net"
	"net/http"
	"strings"
)

// Site tells which public origin a request reached. With a fixed public URL
// (--public-url) that is always the issuer. Without one, the gateway runs on
// a loopback address and the issuer follows the request's Host when it is a
// loopback name, so that a client that typed http://localhost:8080 and one
// that typed http://127.0.0.1:8080 both see metadata whose issuer matches
// the URL they used (ASM-3). Any other Host gets Fallback.
type Site struct {
	Fixed    string // the configured public URL, without trailing slash
	Fallback string // e.g. http://127.0.0.1:8080
}

// Issuer returns the issuer identifier for r: an origin, no path, no
// trailing slash.
func (s *Site) Issuer(r *http.Request) string {
	if s.Fixed != "" {
		return s.Fixed
	}
	if LoopbackHostHeader(r.Host) {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		return scheme + "://" + strings.ToLower(r.Host)
	}
	return s.Fallback
}

// LoopbackHostHeader reports whether a Host header value names a loopback
// host ("localhost", "127.0.0.1:8080", "[::1]:8080").
func LoopbackHostHeader(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	return IsLoopbackHost(host)
}
