package app

import "testing"

// SEC-95: text a client registered or a provider gave is shown with no
// character that a terminal would take for a command.
func TestSEC95_ShownHasNoControls(t *testing.T) {
	for in, want := range map[string]string{
		"Claude Desktop":             "Claude Desktop",
		"évian ☃":                    "évian ☃",
		"evil\x1b]0;owned\x07name":   "evil\uFFFD]0;owned\uFFFDname",
		"tab\there\nnewline\r":       "tab\uFFFDhere\uFFFDnewline\uFFFD",
		"c1\u009b31m and bidi\u202e": "c1\uFFFD31m and bidi\uFFFD",
	} {
		if got := shown(in); got != want {
			t.Errorf("shown(%q) = %q, want %q", in, got, want)
		}
	}
}
