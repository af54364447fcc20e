package config

import (
	"slices"
	"strings"
	"testing"
)

func TestSplitCommand(t *testing.T) {
	ok := []struct {
		in   string
		want []string
	}{
		{"npx -y @modelcontextprotocol/server-everything stdio", []string{"npx", "-y", "@modelcontextprotocol/server-everything", "stdio"}},
		{"  a\t b \n c  ", []string{"a", "b", "c"}},
		{`python -m 'my server' "two words"`, []string{"python", "-m", "my server", "two words"}},
		{`a'b'"c"d`, []string{"abcd"}},
		{`''`, []string{""}},
		{`a "" b`, []string{"a", "", "b"}},
		{`a\ b`, []string{"a b"}},
		{`'$HOME' "$HOME" ~ *`, []string{"$HOME", "$HOME", "~", "*"}},
		{`"a\"b\\c\$d\e"`, []string{`a"b\c$d\e`}},
		{`'a\b'`, []string{`a\b`}},
		{"a\\\nb", []string{"ab"}},
		{`x;y|z`, []string{"x;y|z"}},
	}
	for _, c := range ok {
		got, err := SplitCommand(c.in)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("SplitCommand(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"", "   ", "\t\n", `'open`, `"open`, `a\`, `"a\"`} {
		if got, err := SplitCommand(in); err == nil {
			t.Errorf("SplitCommand(%q) = %q, want an error", in, got)
		}
	}
}

// quote single-quotes w for a POSIX shell.
func quote(w string) string { return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'" }

func FuzzSplitCommand(f *testing.F) {
	for _, s := range []string{"npx -y pkg stdio", `a 'b c' "d\"e"`, `a\ b`, `'`, `"`, `\`, "", "a\\\nb", `"\$\x"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := SplitCommand(s)
		if err != nil {
			return
		}
		if len(words) == 0 {
			t.Fatalf("no words and no error for %q", s)
		}
		// Quoting the words back gives the same words.
		q := make([]string, len(words))
		for i, w := range words {
			q[i] = quote(w)
		}
		again, err := SplitCommand(strings.Join(q, " "))
		if err != nil || !slices.Equal(again, words) {
			t.Fatalf("round trip of %q: %q → %q, %v", s, words, again, err)
		}
	})
}
