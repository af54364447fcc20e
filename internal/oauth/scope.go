package oauth

import "strings"

// ParseScope splits an RFC 6749 §3.3 scope string into its tokens, in order,
// without duplicates. Tokens are separated by spaces; each is one or more of
// %x21 / %x23-5B / %x5D-7E. Runs of spaces are tolerated (clients send them);
// any other character makes the whole value invalid (ok is false).
func ParseScope(s string) (scopes []string, ok bool) {
	for _, tok := range strings.Split(s, " ") {
		if tok == "" {
			continue
		}
		for i := 0; i < len(tok); i++ {
			c := tok[i]
			if c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e {
				return nil, false
			}
		}
		dup := false
		for _, have := range scopes {
			if have == tok {
				dup = true
				break
			}
		}
		if !dup {
			scopes = append(scopes, tok)
		}
	}
	return scopes, true
}

// JoinScope renders scopes as a scope string.
func JoinScope(scopes []string) string { return strings.Join(scopes, " ") }

// ContainsAll reports whether have includes every scope in want.
func ContainsAll(have, want []string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			if h == w {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
