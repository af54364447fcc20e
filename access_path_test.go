package mcpgate_test

import (
	"testing"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/e2e/browser"
)

// SEC-64: a resource's access rule applies whatever the characters of its
// path: one with a percent-escape (allowed in a resource path) is found
// by the path as configured, not as decoded.
func TestSEC64_ResourceAccessWithEscapedPath(t *testing.T) {
	g := newGateway(t, func(c *mcpgateConfig) {
		c.Resources = []mcpgate.Resource{
			{Path: "/mcp"},
			{Path: "/team%41/mcp", Access: mcpgate.Access{Users: []string{"local:bob"}}},
		}
	})
	c := g.register(nil)
	a := g.newAuth(c.ClientID)
	a.Resource = g.url + "/team%41/mcp"
	refused(t, g, browser.New(testUser, testPassword), a, testUser, "Local account")
}
