package oauth

import (
	"strings"
	"testing"
)

func TestBearerToken(t *testing.T) {
	cases := []struct {
		header, token string
		ok            bool
	}{
		{"Bearer abc.def-ghi_jkl~", "abc.def-ghi_jkl~", true},
		{"bearer abc", "abc", true},
		{"BEARER abc==", "abc==", true},
		{"Bearer  abc", "abc", true},
		{"", "", false},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Basic dXNlcjpwdw==", "", false},
		{"Bearer a b", "", false},
		{"Bearer ===", "", false},
		{"Bearer a=b", "", false},
		{"Bearerabc", "", false},
	}
	for _, c := range cases {
		tok, ok := BearerToken(c.header)
		if tok != c.token || ok != c.ok {
			t.Errorf("BearerToken(%q) = %q, %v; want %q, %v", c.header, tok, ok, c.token, c.ok)
		}
	}
}

func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer a.b.c", "Basic x", "Bearer  x==", "Bearer \x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tok, ok := BearerToken(h)
		if !ok {
			return
		}
		if tok == "" || strings.ContainsAny(tok, " \t\r\n\"") || !strings.HasSuffix(h, tok) {
			t.Fatalf("BearerToken(%q) = %q, want a non-empty token without whitespace or quotes that ends the header", h, tok)
		}
	})
}
