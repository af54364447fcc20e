package oauth

import (
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
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

// Origin is a configured public URL as the issuer: its scheme and host in
// lower case, without the scheme's default port (RFC 3986 §6.2.2.1,
// §6.2.3, as clients and browsers compare them) or a trailing slash.
// Written HTTPS://MCP.example.com, the issuer kept as written lost the
// cookies' Secure flag and __Host- prefix; written with :443, it named
// resources no client that connected to https://mcp.example.com/mcp
// names.
func Origin(publicURL string) string {
	u, err := url.Parse(publicURL)
	if err != nil || u.Host == "" {
		return strings.TrimSuffix(publicURL, "/")
	}
	scheme := strings.ToLower(u.Scheme)
	host, ok := CanonicalHost(strings.ToLower(u.Host), scheme)
	if !ok {
		host = strings.ToLower(u.Host)
	}
	return scheme + "://" + host
}

// CanonicalHost is host[:port], in lower case already, without the
// scheme's default port or an empty one (host:); a host that is not one
// name or bracketed IPv6 address and one port of digits is none.
func CanonicalHost(host, scheme string) (string, bool) {
	name, port := host, ""
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
		name, port = host[:i], host[i+1:]
	}
	if name == "" || strings.Contains(name, ":") && !(strings.HasPrefix(name, "[") && strings.HasSuffix(name, "]")) {
		return "", false
	}
	if strings.Trim(port, "0123456789") != "" {
		return "", false
	}
	if port == "" || scheme == "https" && port == "443" || scheme == "http" && port == "80" {
		return name, true
	}
	return name + ":" + port, true
}

// Issuer returns the issuer identifier for r: an origin, no path, no
// trailing slash. Only a well-formed loopback Host (SEC-11) becomes part
// of it.
func (s *Site) Issuer(r *http.Request) string {
	if s.Fixed != "" {
		return s.Fixed
	}
	if LoopbackHostHeader(r.Host) {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		return Origin(scheme + "://" + r.Host)
	}
	return s.Fallback
}

// LoopbackHostHeader reports whether a Host header value is a well-formed
// host[:port] (ParseHostHeader) naming a loopback host ("localhost",
// "127.0.0.1:8080", "[::1]:8080").
func LoopbackHostHeader(hostport string) bool {
	host, _, ok := ParseHostHeader(hostport)
	return ok && IsLoopbackHost(host)
}

// ParseHostHeader splits a Host header value (RFC 9110 §7.2: uri-host
// [":" port]) into its host, without brackets, and its port, "" when
// absent. It accepts only what a URL's authority would name without
// surprise: a DNS name (letters, digits, '-', '_' in dot-separated
// labels), an IPv4 address or a bracketed IPv6 address without zone, and
// a port of 1 to 5 digits up to 65535. net/http lets through much more
// (commas, semicolons, userinfo-like '@'), and "127.0.0.1:80,evil.com"
// would otherwise be read as a loopback host with port "80,evil.com"
// (SEC-11).
func ParseHostHeader(h string) (host, port string, ok bool) {
	if h == "" || len(h) > 261 { // 253 for a name, ":65535", and brackets
		return "", "", false
	}
	rest := h
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return "", "", false
		}
		addr, err := netip.ParseAddr(h[1:end])
		if err != nil || !addr.Is6() || addr.Zone() != "" {
			return "", "", false
		}
		host, rest = h[1:end], h[end+1:]
	} else {
		i := strings.IndexByte(h, ':')
		if i < 0 {
			i = len(h)
		}
		host, rest = h[:i], h[i:]
		if !validHostName(host) {
			return "", "", false
		}
	}
	if rest == "" {
		return host, "", true
	}
	port, found := strings.CutPrefix(rest, ":")
	if !found || !validPort(port) {
		return "", "", false
	}
	return host, port, true
}

// validHostName: dot-separated labels of letters, digits, '-' and '_'
// (seen in container names), none empty and none over 63 bytes, with an
// optional final dot (a fully qualified name); at most 253 bytes in all.
// An IPv4 address is such a name too.
func validHostName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func validPort(p string) bool {
	if p == "" || len(p) > 5 {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	n, err := strconv.Atoi(p)
	return err == nil && n <= 65535
}
