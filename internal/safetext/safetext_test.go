package safetext

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestClip(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"abcdefghijk", 10, "abcdefghij…"},
		{strings.Repeat("é", 6), 5, "éé…"}, // 2-byte runes: never half of one
		{"", 0, ""},
	} {
		got := Clip(tc.in, tc.max)
		if got != tc.want || !utf8.ValidString(got) {
			t.Errorf("Clip(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

// SEC-95: text a client registered or a provider gave is shown with no
// character that a terminal would take for a command.
func TestSEC95_PrintableHasNoControls(t *testing.T) {
	for in, want := range map[string]string{
		"Claude Desktop":             "Claude Desktop",
		"évian ☃":                    "évian ☃",
		"evil\x1b]0;owned\x07name":   "evil\uFFFD]0;owned\uFFFDname",
		"tab\there\nnewline\r":       "tab\uFFFDhere\uFFFDnewline\uFFFD",
		"c1\u009b31m and bidi\u202e": "c1\uFFFD31m and bidi\uFFFD",
		"bad \xff utf-8":             "bad \uFFFD utf-8",
	} {
		if got := Printable(in); got != want {
			t.Errorf("Printable(%q) = %q, want %q", in, got, want)
		}
	}
}
