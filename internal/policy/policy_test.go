package policy

import (
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/identity"
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

func TestAllowed(t *testing.T) {
	p := testPolicy()
	c, err := p.Compile()
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
			t.Errorf("compiled: %v %q = %v, want %v", tc.who, tc.tool, got, tc.want)
		}
		if got := p.Allowed(tc.who, tc.tool); got != tc.want {
			t.Errorf("policy: %v %q = %v, want %v", tc.who, tc.tool, got, tc.want)
		}
	}
	var none *Compiled
	if !none.Allowed(bob, "anything") || !(*Policy)(nil).Allowed(bob, "x") {
		t.Error("a nil policy must allow everything")
	}
	if !(&Policy{}).Allowed(bob, "x") {
		t.Error("empty default must allow")
	}
}

// Every condition of a rule must hold; deny wins whatever the order.
func TestRuleConditions(t *testing.T) {
	p := &Policy{Rules: []Rule{
		{Deny: []string{"x"}, Users: []string{"local:bob"}, Groups: []string{"admins"}},
		{Allow: []string{"y"}},
		{Deny: []string{"y"}, Groups: []string{"dev", "ops"}},
	}}
	if !p.Allowed(bob, "x") {
		t.Error("bob is not in admins: the rule does not apply")
	}
	if p.Allowed(bob, "y") || !p.Allowed(alice, "y") {
		t.Error("deny must win over an earlier allow")
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
			t.Errorf("match(%q, %q) = %v", c.pat, c.name, got)
		}
	}
}

func TestValidate(t *testing.T) {
	err := (&Policy{Default: "maybe", Rules: []Rule{{Users: []string{"local:a"}}, {Allow: []string{""}}, {Deny: []string{"x"}, Groups: []string{""}}}}).Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"default", "rules[0]: neither allow nor deny", "rules[1].allow[0]: empty", "rules[2].groups[0]: empty"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v: want %q", err, want)
		}
	}
	if err := testPolicy().Validate(); err != nil {
		t.Error(err)
	}
	if _, err := (&Policy{Default: "nope"}).Compile(); err == nil {
		t.Error("Compile accepted an invalid policy")
	}
}

func TestAllowedDoesNotAllocate(t *testing.T) {
	c, _ := testPolicy().Compile()
	n := testing.AllocsPerRun(100, func() {
		c.Allowed(bob, "delete_repo")
		c.Allowed(alice, "whoami")
	})
	if n != 0 {
		t.Errorf("%v allocations", n)
	}
}

// FuzzAllowed: the compiled form decides as the plain one.
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
		c, err := p.Compile()
		if err != nil {
			t.Fatal(err)
		}
		for _, who := range []*identity.Caller{alice, bob, nil} {
			if c.Allowed(who, tool) != p.Allowed(who, tool) {
				t.Fatalf("%q %q %q: compiled and plain disagree", p1, p2, tool)
			}
		}
	})
}

func BenchmarkAllowed(b *testing.B) {
	c, _ := testPolicy().Compile()
	b.ReportAllocs()
	for b.Loop() {
		c.Allowed(bob, "delete_repo")
	}
}
