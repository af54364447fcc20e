package safetext

import (
	"fmt"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Clip returns s cut to at most max bytes on a character's boundary,
// followed by "…" when it was cut. A cut result is a new string: it never
// keeps the long one alive.
func Clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	n := max
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// Printable returns s with every character that is not printable (C0 and
// C1 controls, bidi and other format characters, invalid UTF-8) replaced
// by U+FFFD, so that a terminal runs none of it and a reader sees the text
// in the order it has.
func Printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return '\uFFFD'
	}, s)
}

// URL is u as a log line may show it: scheme, host and path, and "?…"
// for a query, never its text. An upstream's URL may carry its API key in
// the query (hosted MCP servers take one so), and a legacy SSE endpoint
// carries its session's id there; url.URL.Redacted hides only a password.
func URL(u *url.URL) string {
	shown := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	s := shown.String()
	if u.RawQuery != "" || u.ForceQuery {
		s += "?…"
	}
	return s
}

// URLError is err, as http.Client.Do returns it, with the URL of its
// *url.Error shown as URL shows it; it still unwraps to the cause. Any
// other error is returned as it is.
func URLError(err error) error {
	ue, ok := err.(*url.Error)
	if !ok {
		return err
	}
	shown := "(unparsable URL)"
	if u, perr := url.Parse(ue.URL); perr == nil {
		shown = URL(u)
	}
	return fmt.Errorf("%s %s: %w", ue.Op, shown, ue.Err)
}
