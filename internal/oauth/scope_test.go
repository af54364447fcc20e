package oauth

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestParseScope(t *testing.T) {
	cases := []struct {
		in   string
		want []string
		ok   bool
	}{
		{"", nil, true},
		{"mcp", []string{"mcp"}, true},
		{"mcp  offline_access ", []string{"mcp", "offline_access"}, true},
		{"mcp mcp", []string{"mcp"}, true},
		{"a:b/c.d", []string{"a:b/c.d"}, true},
		{"bad\"quote", nil, false},
		{"back\\slash", nil, false},
		{"tab\there", nil, false},
		{"ünicode", nil, false},
	}
	for _, c := range cases {
		got, ok := ParseScope(c.in)
		if ok != c.ok || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseScope(%q) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"", "mcp", "a b  c", "x\"y", "mcp:read mcp:write offline_access", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		scopes, ok := ParseScope(s)
		if !ok {
			return
		}
		seen := map[string]bool{}
		for _, sc := range scopes {
			if sc == "" || strings.ContainsAny(sc, " \"\\") || seen[sc] {
				t.Fatalf("ParseScope(%q) returned token %q, want non-empty, without space, quote or backslash, and not repeated", s, sc)
			}
			for i := 0; i < len(sc); i++ {
				if sc[i] < 0x21 || sc[i] > 0x7e {
					t.Fatalf("ParseScope(%q) returned token %q, want printable ASCII only (RFC 6749 §3.3)", s, sc)
				}
			}
			seen[sc] = true
		}
		again, ok := ParseScope(JoinScope(scopes))
		if !ok || !reflect.DeepEqual(again, scopes) {
			t.Fatalf("round trip of %q: %q (ok %v), want %q", s, again, ok, scopes)
		}
	})
}

// SCOPE-5: a broader scope implies narrower ones, transitively.
func TestSCOPE5_Hierarchy(t *testing.T) {
	h := Hierarchy{"mcp:admin": {"mcp:write"}, "mcp:write": {"mcp:read"}}
	if !h.Satisfies([]string{"mcp:admin"}, []string{"mcp:read", "mcp:write"}) {
		t.Error("admin must imply write and, through it, read")
	}
	if h.Satisfies([]string{"mcp:read"}, []string{"mcp:write"}) {
		t.Error("read must not imply write")
	}
	if got := h.Expand([]string{"mcp:write", "mcp:read"}); !reflect.DeepEqual(got, []string{"mcp:write", "mcp:read"}) {
		t.Errorf("Expand = %q, want [mcp:write mcp:read] with no duplicates", got)
	}
	cyc := Hierarchy{"a": {"b"}, "b": {"a"}}
	if got := cyc.Expand([]string{"a"}); len(got) != 2 {
		t.Errorf("Expand over a cycle = %q, want both scopes once", got)
	}
}

// BenchmarkParseScopeMany is the reason ParseScope keeps a set: a scope of
// 8,000 distinct tokens, as a 16 KiB form or a registration can hold,
// took time in the square of their number with a scan of those kept.
func BenchmarkParseScopeMany(b *testing.B) {
	var sb strings.Builder
	for i := range 8000 {
		fmt.Fprintf(&sb, "s%d ", i)
	}
	s := sb.String()
	for b.Loop() {
		if _, ok := ParseScope(s); !ok {
			b.Fatal("refused")
		}
	}
}

func TestResourceScope(t *testing.T) {
	for s, want := range map[string]bool{
		"mcp": true, "mcp:write": true, "repo:read": true,
		"": false, "offline_access": false, "a b": false, `a"b`: false, `a\b`: false, "é": false, "a\tb": false, " mcp": false,
	} {
		if got := ResourceScope(s); got != want {
			t.Errorf("ResourceScope(%q) = %v, want %v", s, got, want)
		}
	}
}
