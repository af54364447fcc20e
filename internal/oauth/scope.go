package oauth

import "strings"

// ParseScope splits an RFC 6749 §3.3 scope string into its tokens, in order,
// without duplicates. Tokens are separated by spaces; each is one or more of
// %x21 / %x23-5B / %x5D-7E. Runs of spaces are tolerated (clients send them);
// any other character makes the whole value invalid (ok is false).
func ParseScope(s string) (scopes []string, ok bool) {
	seen := map[string]bool{} // a set, not a scan of scopes: a request may hold thousands
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
		if !seen[tok] {
			seen[tok] = true
			scopes = append(scopes, tok)
		}
	}
	return scopes, true
}

// ResourceScope reports whether s may be a protected resource's scope:
// one scope token as ParseScope reads them (RFC 6749 §3.3: a request can
// name no other), and not offline_access, which is the authorization
// server's and never a resource's requirement (RT-2, PRM-8).
func ResourceScope(s string) bool {
	got, ok := ParseScope(s)
	return ok && len(got) == 1 && got[0] == s && s != "offline_access"
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

// Hierarchy says which scopes a broader scope implies (SCOPE-5), e.g.
// "mcp:admin" → ["mcp:read", "mcp:write"]. Implication is transitive.
type Hierarchy map[string][]string

// Expand returns scopes with everything they imply, without duplicates.
func (h Hierarchy) Expand(scopes []string) []string {
	if len(h) == 0 {
		return scopes
	}
	out := append([]string(nil), scopes...)
	for i := 0; i < len(out); i++ {
		for _, implied := range h[out[i]] {
			if !ContainsAll(out, []string{implied}) {
				out = append(out, implied)
			}
		}
	}
	return out
}

// Satisfies reports whether a token holding have may do what needs need,
// counting implied scopes.
func (h Hierarchy) Satisfies(have, need []string) bool {
	return ContainsAll(h.Expand(have), need)
}
