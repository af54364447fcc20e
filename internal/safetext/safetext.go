package safetext

import (
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
