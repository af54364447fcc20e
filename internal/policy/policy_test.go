package policy

import (
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/oauth"
)

var (
	alice = &identity.Caller{User: identity.User{ID: "local:alice", Groups: []string{"admins"}}, ClientID: "c-alice", Scopes: []string{"mcp"}}
	bob   = &identity.Caller{User: identity.User{ID: "local:bob", Groups: []string{"dev"}}, ClientID: "c-bob", Scopes: []string{"readonly"}}
	carol = &identity.Caller{User: identity.User{ID: "github:583231"}, ClientID: "c-carol", Scopes: []string{"mcp"}}
)

// testPolicy: everyone may call echo, fail and missing; alice delete_*;
// admins everything but nuke; a readonly token not echo.
func testPolicy() *Policy {
	return &Policy{Default: "deny", Rules: []Rule{
		{Allow: []string{"echo", "fail", "missing", "slow"}},
		{Allow: []string{"delete_*"}, Users: []string{"local:alice"}},
		{Allow: []string{"*"}, Deny: []string{"nuke"}, Groups: []string{"admins"}},
		{Deny: []string{"echo"}, Scopes: []string{"readonly"}},
	}}
}

// allowed is the Policy's rule read literally, the model Compiled is
// tested against: deny wins among the rules that apply to the caller (nil:
// an unknown caller, to whom only rules without conditions apply), then
// allow, then the default.
func allowed(p *Policy, caller *identity.Caller, tool string) bool {
	if p == nil {
		return true
	}
	allow := false
	for _, r := range p.Rules {
		if !applies(r.Users, r.Groups, r.Scopes, caller) {
			continue
		}
		for _, pat := range r.Deny {
			if match(pat, tool) {
				return false
			}
		}
		for _, pat := range r.Allow {
			allow = allow || match(pat, tool)
		}
	}
	return allow || p.Default != "deny"
}

func TestAllowed(t *testing.T) {
	p := testPolicy()
	c, err := p.Compile(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		who  *identity.Caller
		tool string
		want bool
	}{
		{alice, "echo", true}, {alice, "delete_repo", true}, {alice, "whoami", true}, {alice, "nuke", false},
		{bob, "echo", false}, {bob, "fail", true}, {bob, "delete_repo", false}, {bob, "whoami", false},
		{carol, "echo", true}, {carol, "delete_repo", false}, {carol, "Echo", false},
		{nil, "echo", true}, {nil, "whoami", false},
	} {
		if got := c.Allowed(tc.who, tc.tool); got != tc.want {
			t.Errorf("%s may call %q: %v, want %v", userID(tc.who), tc.tool, got, tc.want)
		}
		if got := allowed(p, tc.who, tc.tool); got != tc.want {
			t.Errorf("the model: %s may call %q: %v, want %v", userID(tc.who), tc.tool, got, tc.want)
		}
	}
	if none, _ := (*Policy)(nil).Compile(nil); !none.Allowed(bob, "anything") {
		t.Error("a nil policy denies a tool, want every tool allowed")
	}
	if empty, _ := (&Policy{}).Compile(nil); !empty.Allowed(bob, "x") {
		t.Error("an empty default denies a tool, want it to allow")
	}
}

// Every condition of a rule must hold; deny wins whatever the order.
func TestRuleConditions(t *testing.T) {
	c, err := (&Policy{Rules: []Rule{
		{Deny: []string{"x"}, Users: []string{"local:bob"}, Groups: []string{"admins"}},
		{Allow: []string{"y"}},
		{Deny: []string{"y"}, Groups: []string{"dev", "ops"}},
	}}).Compile(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Allowed(bob, "x") {
		t.Error("bob may not call x, want him allowed: he is not in admins, so the deny rule does not apply")
	}
	if c.Allowed(bob, "y") {
		t.Error("bob may call y, want it denied: a later deny wins over an earlier allow")
	}
	if !c.Allowed(alice, "y") {
		t.Error("alice may not call y, want her allowed: the deny rule names groups she is not in")
	}
}

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		pat, name string
		want      bool
	}{
		{"*", "", true}, {"*", "anything", true}, {"delete_*", "delete_", true}, {"delete_*", "delete_repo", true},
		{"delete_*", "xdelete_repo", false}, {"*_repo", "delete_repo", true}, {"a*b*c", "aXbYc", true},
		{"a*b*c", "aXbY", false}, {"a*a", "a", false}, {"a*a", "aa", true}, {"echo", "echo", true},
		{"echo", "echo2", false}, {"e?ho", "echo", false}, {"**", "x", true}, {"a*", "A", false},
	} {
		if got := match(c.pat, c.name); got != c.want {
			t.Errorf("match(%q, %q) = %v, want %v", c.pat, c.name, got, c.want)
		}
	}
}

func TestValidate(t *testing.T) {
	err := (&Policy{Default: "maybe", Rules: []Rule{{Users: []string{"local:a"}}, {Allow: []string{""}}, {Deny: []string{"x"}, Groups: []string{""}},
		{Deny: []string{"nuke "}, Groups: []string{" admins"}}}}).Validate()
	if err == nil {
		t.Fatal("Validate() = nil, want an error for each problem")
	}
	// A name with a space at its end matches no tool a client calls: the
	// deny would do nothing, silently.
	for _, want := range []string{"default", "rules[0]: neither allow nor deny", "rules[1].allow[0]: empty", "rules[2].groups[0]: empty",
		`rules[3].deny[0]: "nuke " begins or ends with a space`, `rules[3].groups[0]: " admins" begins or ends with a space`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to report %q", err, want)
		}
	}
	if err := testPolicy().Validate(); err != nil {
		t.Errorf("Validate() of the test policy = %v, want nil", err)
	}
	if _, err := (&Policy{Default: "nope"}).Compile(nil); err == nil {
		t.Error("Compile() of an invalid policy succeeded, want an error")
	}
}

func TestAllowedDoesNotAllocate(t *testing.T) {
	// With a scope hierarchy too: the implied scopes are found at Compile,
	// not at each call (a tools/list asks once per tool).
	for _, implies := range []oauth.Hierarchy{nil, {"mcp:admin": {"mcp"}}} {
		c, _ := testPolicy().Compile(implies)
		n := testing.AllocsPerRun(100, func() {
			c.Allowed(bob, "delete_repo")
			c.Allowed(alice, "whoami")
		})
		if n != 0 {
			t.Errorf("scope_implies %v: %v allocations per call, want 0", implies, n)
		}
	}
}

// FuzzAllowed: the compiled form decides as the rule read literally.
func FuzzAllowed(f *testing.F) {
	f.Add("delete_*", "delete_repo", "x*y*z", true)
	f.Add("*", "", "a", false)
	f.Fuzz(func(t *testing.T, p1, tool, p2 string, deny bool) {
		if p1 == "" || p2 == "" {
			return
		}
		p := &Policy{Rules: []Rule{{Allow: []string{p1, p2}}, {Deny: []string{p2}, Users: []string{"local:bob"}}}}
		if deny {
			p.Default = "deny"
		}
		if p.Validate() != nil {
			return // a pattern no configuration may hold (Compile refuses it)
		}
		c, err := p.Compile(nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, who := range []*identity.Caller{alice, bob, nil} {
			if got, want := c.Allowed(who, tool), allowed(p, who, tool); got != want {
				t.Fatalf("patterns %q %q, tool %q, caller %s: compiled %v, want %v", p1, p2, tool, userID(who), got, want)
			}
		}
	})
}

func BenchmarkAllowed(b *testing.B) {
	c, _ := testPolicy().Compile(nil)
	b.ReportAllocs()
	for b.Loop() {
		c.Allowed(bob, "delete_repo")
	}
}

// SCOPE-5: a rule's scope is held by a token that holds a broader scope
// implying it, as the guard counts it: the authorization server leaves
// repo:read out of a token asked for repo:write when repo:write implies
// it, and a rule for repo:read applied only to the token that spelt it
// out. Fails before this change: get_issue was denied to the repo:write
// token, allowed to the one that also named repo:read.
func TestSCOPE5_RulesCountImpliedScopes(t *testing.T) {
	p := &Policy{Default: "deny", Rules: []Rule{
		{Allow: []string{"get_*"}, Scopes: []string{"repo:read"}},
		{Allow: []string{"create_*"}, Scopes: []string{"repo:write"}},
		{Deny: []string{"delete_*"}, Scopes: []string{"repo:read"}},
	}}
	c, err := p.Compile(oauth.Hierarchy{"repo:write": {"repo:read"}})
	if err != nil {
		t.Fatal(err)
	}
	writeOnly := &identity.Caller{User: identity.User{ID: "u"}, Scopes: []string{"repo:write"}}
	both := &identity.Caller{User: identity.User{ID: "u"}, Scopes: []string{"repo:read", "repo:write"}}
	for tool, want := range map[string]bool{"get_issue": true, "create_issue": true, "delete_repo": false} {
		for _, caller := range []*identity.Caller{writeOnly, both} {
			if got := c.Allowed(caller, tool); got != want {
				t.Errorf("%s with scopes %q: %v, want %v", tool, caller.Scopes, got, want)
			}
		}
	}
	if len(writeOnly.Scopes) != 1 {
		t.Errorf("the caller's scopes became %q, want them left as they were", writeOnly.Scopes)
	}
}

// SCOPE-1: StepUp names the scopes that would each allow a denied tool,
// were the token to carry it: a rule's own scopes, then the broader ones
// that imply them (SCOPE-5); none when a deny would still apply, when the
// rule is another user's, or when the tool is allowed already.
func TestStepUp(t *testing.T) {
	p := &Policy{Default: "deny", Rules: []Rule{
		{Allow: []string{"write_*"}, Scopes: []string{"mcp:write", "mcp:other"}},
		{Allow: []string{"deploy"}, Scopes: []string{"ops"}, Users: []string{"local:bob"}},
		{Deny: []string{"write_secret"}, Scopes: []string{"mcp:write"}},
		{Allow: []string{"echo"}},
	}}
	c, err := p.Compile(oauth.Hierarchy{"mcp:admin": {"mcp:write"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		caller *identity.Caller
		tool   string
		want   string
	}{
		{alice, "write_doc", "mcp:write mcp:other mcp:admin"},
		{alice, "write_secret", "mcp:other"}, // mcp:write, or mcp:admin, would bring the deny
		{alice, "deploy", ""},                // bob's rule
		{bob, "deploy", "ops"},
		{alice, "echo", ""}, // allowed
		{alice, "unknown", ""},
		{nil, "write_doc", ""},
	} {
		if got := strings.Join(c.StepUp(tc.caller, tc.tool), " "); got != tc.want {
			t.Errorf("StepUp(%v, %s) = %q, want %q", tc.caller, tc.tool, got, tc.want)
		}
	}
}
