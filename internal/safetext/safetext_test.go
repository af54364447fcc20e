package safetext

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"unicode"
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

// Whatever an outsider sends: Clip keeps a prefix of it within the bound
// (plus the mark of the cut) and never splits a character of valid text;
// Printable leaves valid UTF-8 in which every character is printable and
// changes nothing of text that was printable already (SEC-95).
func FuzzText(f *testing.F) {
	for _, s := range []string{"", "plain", "évian ☃", "evil\x1b]0;x\x07", "bidi\u202e", "bad \xff", strings.Repeat("é", 40)} {
		f.Add(s, uint16(10))
	}
	// A bound is a small constant of the code: never negative.
	f.Fuzz(func(t *testing.T, s string, bound uint16) {
		max := int(bound)
		c := Clip(s, max)
		if c != s {
			kept, cut := strings.CutSuffix(c, "…")
			if !cut || len(kept) > max || !strings.HasPrefix(s, kept) {
				t.Fatalf("Clip(%q, %d) = %q, want a prefix of at most %d bytes and the mark", s, max, c, max)
			}
			if utf8.ValidString(s) && !utf8.ValidString(c) {
				t.Fatalf("Clip(%q, %d) = %q splits a character", s, max, c)
			}
		}
		p := Printable(s)
		if !utf8.ValidString(p) {
			t.Fatalf("Printable(%q) = %q is not valid UTF-8", s, p)
		}
		for _, r := range p {
			if !unicode.IsPrint(r) {
				t.Fatalf("Printable(%q) = %q keeps %U", s, p, r)
			}
		}
		if utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0 && p != s {
			t.Fatalf("Printable(%q) = %q changed printable text", s, p)
		}
	})
}

// URL shows where an upstream is, never its query (an API key, a legacy
// SSE session's id) nor a password; URLError shows a client's error so too.
func TestURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://mcp.example/sse?api_key=SECRET":   "https://mcp.example/sse?…",
		"http://127.0.0.1:8080/mcp":                "http://127.0.0.1:8080/mcp",
		"https://user:pw@mcp.example/mcp?x=1#frag": "https://mcp.example/mcp?…",
		"https://mcp.example/a%2Fb?":               "https://mcp.example/a%2Fb?…",
	} {
		u, err := url.Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := URL(u); got != want {
			t.Errorf("URL(%q) = %q, want %q", in, got, want)
		}
	}
	cause := errors.New("connection refused")
	err := URLError(&url.Error{Op: "Post", URL: "http://up.example/sse?sessionid=ABC", Err: cause})
	if strings.Contains(err.Error(), "ABC") || !strings.Contains(err.Error(), "Post http://up.example/sse?…: connection refused") || !errors.Is(err, cause) {
		t.Errorf("URLError: %q, want the URL without its query and the cause kept", err)
	}
	if other := errors.New("x"); URLError(other) != other {
		t.Error("URLError changed an error that is no *url.Error")
	}
}
