package oauth

import (
	"errors"
	"net"
	"net/url"
	"strings"
)

// Schemes a redirect URI may never use, whatever the client claims.
var forbiddenSchemes = map[string]bool{
	"javascript": true, "data": true, "vbscript": true, "file": true,
	"about": true, "blob": true, "ws": true, "wss": true, "ftp": true,
	"intent": true, "android-app": true, "x-icabmobile": true, "ddgquicklink": true,
}

// browserFamilies begin the schemes by which a browser's app opens the web
// address that follows (microsoft-edge:https://…, googlechromes://…,
// firefox-focus://open-url?url=…, opera-https://…, touch-https://…).
var browserFamilies = []string{"microsoft-edge", "googlechrome", "firefox", "opera", "x-safari", "brave", "touch-", "yandexbrowser",
	"puffin", "shtp", "ucbrowser", "quark", "alook", "aloha", "dolphin"}

// opensBrowser reports whether a redirect URI of this (lowercase) scheme
// would open a browser at a web site, on Windows, iOS or Android, which
// the consent page would call an application on this computer (SEC-151):
// a browser's scheme, or one that spells http in it (ophttps://,
// mhttps://, microsoft-edge-https-intunemam://), as no app's own does. No
// list of them is complete; a reverse-domain scheme (com.example.app),
// which browsers do not use, is not read for them.
func opensBrowser(scheme string) bool {
	if forbiddenSchemes[scheme] {
		return true
	}
	if strings.Contains(scheme, ".") {
		return false
	}
	if strings.Contains(scheme, "http") {
		return true
	}
	for _, family := range browserFamilies {
		if strings.HasPrefix(scheme, family) {
			return true
		}
	}
	return false
}

// ValidateRedirectURI checks a redirect URI offered at registration
// (RFC 7591 §2, OAuth 2.1 §2.3.1, RFC 8252 §7): ASCII as RFC 3986 says,
// absolute, no fragment, and https, http on a loopback host (COMM-2,
// DCR-3), or a private-use scheme for a native app (e.g. cursor://…,
// com.example.app:/cb).
func ValidateRedirectURI(raw string) error {
	if raw == "" || len(raw) > 2048 {
		return errors.New("redirect URI is empty or too long")
	}
	if strings.ContainsAny(raw, " \t\r\n\\") {
		return errors.New("redirect URI contains whitespace or a backslash")
	}
	// The pages name this URI's host as where the code goes: a look-alike
	// letter, a bidi override or an invisible character would make it read
	// as another host than the one the browser is sent to (SEC-120).
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c < ' ' || c >= 0x7f {
			return errors.New("redirect URI must be ASCII without control characters (an international host in its punycode form, xn--…)")
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("redirect URI is not a valid URI")
	}
	if !u.IsAbs() {
		return errors.New("redirect URI must be absolute")
	}
	// url.Parse decodes a percent-encoded host (only non-ASCII bytes may
	// be written so): the pages would show the letters it spells.
	for i := 0; i < len(u.Host); i++ {
		if u.Host[i] >= 0x80 {
			return errors.New("redirect URI's host must be ASCII, not percent-encoded (an international host in its punycode form, xn--…)")
		}
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return errors.New("redirect URI must not contain a fragment")
	}
	if u.User != nil {
		return errors.New("redirect URI must not contain user information")
	}
	switch scheme := strings.ToLower(u.Scheme); {
	case scheme == "https":
		if u.Hostname() == "" {
			return errors.New("https redirect URI needs a host")
		}
	case scheme == "http":
		if !IsLoopbackHost(u.Hostname()) {
			return errors.New("http redirect URIs are allowed only for loopback hosts (localhost, 127.0.0.1, [::1]); use https")
		}
	case opensBrowser(scheme):
		return errors.New("redirect URI scheme " + scheme + " is not allowed")
	default:
		// A private-use URI scheme of a native app (RFC 8252 §7.1:
		// com.example.app:/cb). An opaque rest (scheme:anything) is no
		// app's path: it is how a scheme hands a web address to
		// whatever opens it (SEC-151).
		if u.Opaque != "" || (u.Host == "" && u.Path == "") {
			return errors.New("redirect URI with a private-use scheme needs a path that begins with /, such as com.example.app:/callback")
		}
	}
	return nil
}

// IsLoopbackHost reports whether host (without port or brackets) names the
// loopback interface: "localhost", an address in 127.0.0.0/8, or ::1.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// MatchRedirectURI reports whether requested is one of the registered
// redirect URIs. The comparison is exact (REDIR-1, DEP-5) except that for
// http loopback URIs the port is ignored, as RFC 8252 §7.3 requires
// (REDIR-4): a native app registers http://127.0.0.1/cb or
// http://127.0.0.1:33418/cb and then listens on whatever port it gets. The
// host itself must still match (localhost does not match 127.0.0.1).
func MatchRedirectURI(registered []string, requested string) bool {
	for _, r := range registered {
		if r == requested {
			return true
		}
	}
	req, err := url.Parse(requested)
	if err != nil || req.Scheme != "http" || !IsLoopbackHost(req.Hostname()) {
		return false
	}
	if req.User != nil || req.Fragment != "" || strings.Contains(requested, "#") {
		return false
	}
	if p := req.Port(); p != "" && !ValidPort(p) {
		return false
	}
	for _, r := range registered {
		reg, err := url.Parse(r)
		if err != nil || reg.Scheme != "http" || !IsLoopbackHost(reg.Hostname()) {
			continue
		}
		if reg.Hostname() == req.Hostname() && reg.EscapedPath() == req.EscapedPath() &&
			reg.RawQuery == req.RawQuery && reg.User == nil {
			return true
		}
	}
	return false
}

// ValidPort reports whether p is a decimal port number from 1 to 65535.
func ValidPort(p string) bool {
	if len(p) == 0 || len(p) > 5 {
		return false
	}
	n := 0
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
		n = n*10 + int(p[i]-'0')
	}
	return n > 0 && n <= 65535
}
