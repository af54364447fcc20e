package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/oauth"
)

// Rule allows or denies tools to the callers it applies to. It applies to
// a caller when every condition it lists holds; a rule without conditions
// applies to everyone.
type Rule struct {
	Allow  []string `yaml:"allow"`  // tool name patterns
	Deny   []string `yaml:"deny"`   // tool name patterns
	Users  []string `yaml:"users"`  // identity.User.ID values, e.g. "github:583231", "local:alice"
	Groups []string `yaml:"groups"` // the caller is in at least one
	Scopes []string `yaml:"scopes"` // the caller's token carries at least one
}

// Policy is a resource's tool rules. A tool is denied if the Deny of any
// rule that applies to the caller matches it (deny wins; the order of the
// rules does not matter), else allowed if the Allow of any applying rule
// matches it, else Default decides.
type Policy struct {
	Default string `yaml:"default"` // "allow" (when empty) or "deny"
	Rules   []Rule `yaml:"rules"`
}

// Validate reports every problem in p at once.
func (p *Policy) Validate() error {
	var errs []error
	if p.Default != "" && p.Default != "allow" && p.Default != "deny" {
		errs = append(errs, fmt.Errorf("default: %q is neither allow nor deny", p.Default))
	}
	for i, r := range p.Rules {
		if len(r.Allow) == 0 && len(r.Deny) == 0 {
			errs = append(errs, fmt.Errorf("rules[%d]: neither allow nor deny", i))
		}
		for _, l := range []struct {
			name string
			v    []string
		}{{"allow", r.Allow}, {"deny", r.Deny}, {"users", r.Users}, {"groups", r.Groups}, {"scopes", r.Scopes}} {
			for j, v := range l.v {
				switch {
				case v == "":
					errs = append(errs, fmt.Errorf("rules[%d].%s[%d]: empty", i, l.name, j))
				case strings.TrimSpace(v) != v:
					// No name a client or provider sends has them: the
					// rule would silently match nothing.
					errs = append(errs, fmt.Errorf("rules[%d].%s[%d]: %q begins or ends with a space", i, l.name, j, v))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// Compiled is a validated Policy prepared for the hot path: Allowed does
// not allocate. A nil *Compiled allows everything.
type Compiled struct {
	rules      []compiledRule
	defaultYes bool
}

type compiledRule struct {
	users, groups, scopes []string
	allow, deny           patterns
}

// patterns is a set of tool name patterns: exact names in a map, the
// others in a list, and "*" as a flag.
type patterns struct {
	all   bool
	exact map[string]struct{}
	globs []string
}

func compilePatterns(ps []string) patterns {
	var out patterns
	for _, p := range ps {
		switch {
		case strings.Trim(p, "*") == "":
			out.all = true
		case !strings.Contains(p, "*"):
			if out.exact == nil {
				out.exact = make(map[string]struct{}, len(ps))
			}
			out.exact[p] = struct{}{}
		default:
			out.globs = append(out.globs, p)
		}
	}
	return out
}

func (ps *patterns) match(tool string) bool {
	if ps.all {
		return true
	}
	if _, ok := ps.exact[tool]; ok {
		return true
	}
	for _, g := range ps.globs {
		if match(g, tool) {
			return true
		}
	}
	return false
}

// Compile validates p and prepares it for Allowed, with implies, the
// resource's scope_implies (nil for none). A nil p compiles to nil, which
// allows everything.
func (p *Policy) Compile(implies oauth.Hierarchy) (*Compiled, error) {
	if p == nil {
		return nil, nil
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	c := &Compiled{defaultYes: p.Default != "deny"}
	for _, r := range p.Rules {
		c.rules = append(c.rules, compiledRule{
			users: r.Users, groups: r.Groups, scopes: holders(implies, r.Scopes),
			allow: compilePatterns(r.Allow), deny: compilePatterns(r.Deny),
		})
	}
	return c, nil
}

// Allowed reports whether caller may call tool; see Policy.
func (c *Compiled) Allowed(caller *identity.Caller, tool string) bool {
	if c == nil {
		return true
	}
	allowed := false
	for i := range c.rules {
		r := &c.rules[i]
		if !applies(r.users, r.groups, r.scopes, caller) {
			continue
		}
		if r.deny.match(tool) {
			return false
		}
		if !allowed && r.allow.match(tool) {
			allowed = true
		}
	}
	return allowed || c.defaultYes
}

// StepUp returns the scopes that would each allow caller the tool the
// policy denies them, were it in their token: the scopes of the rules
// that allow the tool to the caller but for their scopes, each tried, a
// rule's own before the broader ones that imply them (SCOPE-5). A client
// can get one by authorizing again (SCOPE-1). None when the tool is
// allowed, or no scope would allow it (a deny, a rule of other users).
func (c *Compiled) StepUp(caller *identity.Caller, tool string) []string {
	if c == nil || caller == nil || c.Allowed(caller, tool) {
		return nil
	}
	var out []string
	for i := range c.rules {
		r := &c.rules[i]
		if len(r.scopes) == 0 || !r.allow.match(tool) || !applies(r.users, r.groups, nil, caller) {
			continue
		}
		for _, s := range r.scopes { // the rule's own first (holders)
			with := *caller
			with.Scopes = append(slices.Clip(caller.Scopes), s)
			if !slices.Contains(out, s) && c.Allowed(&with, tool) {
				out = append(out, s)
			}
		}
	}
	return out
}

// holders returns scopes with every scope of implies that includes one of
// them, transitively: a token that holds any of those holds a scope of
// the rule (SCOPE-5), as the guard counts it; the authorization server
// leaves an implied scope out of a token that holds a broader one. Found
// once, at Compile, so that Allowed reads the token's scopes as they are.
func holders(implies oauth.Hierarchy, scopes []string) []string {
	out := scopes
	for broader := range implies {
		if !slices.Contains(out, broader) && intersects(scopes, implies.Expand([]string{broader})) {
			out = append(slices.Clip(out), broader)
		}
	}
	return out
}

// applies reports whether a rule with these conditions applies to caller.
func applies(users, groups, scopes []string, caller *identity.Caller) bool {
	if len(users)+len(groups)+len(scopes) == 0 {
		return true
	}
	if caller == nil {
		return false
	}
	if len(users) > 0 && !contains(users, caller.User.ID) {
		return false
	}
	if len(groups) > 0 && !intersects(groups, caller.User.Groups) {
		return false
	}
	if len(scopes) > 0 && !intersects(scopes, caller.Scopes) {
		return false
	}
	return true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func intersects(a, b []string) bool {
	for _, v := range b {
		if contains(a, v) {
			return true
		}
	}
	return false
}

// Match reports whether the tool name matches pattern as a rule's allow
// and deny do: the same patterns name tools elsewhere (rate limits).
func Match(pattern, name string) bool { return match(pattern, name) }

// match reports whether name matches pattern, in which '*' stands for any
// run of characters (bytes: a tool name is matched as it was sent) and
// every other byte for itself.
func match(pattern, name string) bool {
	// The classic greedy algorithm: on a mismatch, let the last '*' take
	// one more byte. Linear in practice, O(len(pattern)·len(name)) at worst.
	p, n := 0, 0
	star, mark := -1, 0
	for n < len(name) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, n
			p++
		case p < len(pattern) && pattern[p] == name[n]:
			p++
			n++
		case star >= 0:
			p = star + 1
			mark++
			n = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
