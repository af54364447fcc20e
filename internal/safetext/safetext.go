package safetext

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf16"
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

// RawURL is raw, a URL as written, as URL shows it: without its user,
// password or fragment, its query as "?…"; "(unparsable URL)" when it
// cannot be read, which says nothing of what was written.
func RawURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return URL(u)
}

// URLError is err, as http.Client.Do returns it, with the URL of its
// *url.Error shown as URL shows it; it still unwraps to the cause. Any
// other error is returned as it is.
func URLError(err error) error {
	ue, ok := err.(*url.Error)
	if !ok {
		return err
	}
	return fmt.Errorf("%s %s: %w", ue.Op, RawURL(ue.URL), ue.Err)
}

// Inert returns s with the characters a JSON encoder writes as they are
// and a terminal or viewer acts on replaced by U+FFFD: the C1 controls
// (U+0080–U+009F; U+009B starts an escape sequence on some terminals) and
// the format characters (bidi overrides and isolates, zero-width ones).
// encoding/json and slog's JSON handler escape the C0 controls only.
func Inert(s string) string {
	if strings.IndexFunc(s, acts) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if acts(r) {
			return '\uFFFD'
		}
		return r
	}, s)
}

func acts(r rune) bool { return r >= 0x80 && r <= 0x9f || unicode.Is(unicode.Cf, r) }

// InertAttr is a slog.HandlerOptions.ReplaceAttr for JSON handlers: the
// strings and errors of a record, which carry text from outside (a tool's
// name, a path, a server's stderr), are written Inert (SEC-116).
func InertAttr(_ []string, a slog.Attr) slog.Attr {
	switch v := a.Value; {
	case v.Kind() == slog.KindString:
		a.Value = slog.StringValue(Inert(v.String()))
	case v.Kind() == slog.KindAny:
		if err, ok := v.Any().(error); ok {
			a.Value = slog.StringValue(Inert(err.Error()))
		}
	}
	return a
}

// EscapeJSON returns b, JSON text, with each character Inert would replace
// written as its \u escape instead: the data stays exact for a program,
// and a terminal that shows it runs nothing (SEC-116). Outside strings
// JSON holds no such character, so every one found is in a string.
func EscapeJSON(b []byte) []byte {
	if bytes.IndexFunc(b, acts) < 0 {
		return b
	}
	out := make([]byte, 0, len(b)+32)
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		switch {
		case !acts(r):
			out = append(out, b[:n]...)
		case r > 0xffff:
			hi, lo := utf16.EncodeRune(r)
			out = fmt.Appendf(out, `\u%04x\u%04x`, hi, lo)
		default:
			out = fmt.Appendf(out, `\u%04x`, r)
		}
		b = b[n:]
	}
	return out
}
