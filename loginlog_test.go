package mcpgate_test

import (
	"strings"
	"testing"
)

// SEC-4: what a person types into the username field of a failed login
// never reaches the log whole: people type their password there.
func TestSEC4_FailedLoginLogsNoTypedName(t *testing.T) {
	g := newGateway(t)
	typed := "Tr0ub4dor&3-typed-as-a-name"
	b := newJarBrowser(t)
	_, page := b.get(g.newAuth(g.register(nil).ClientID).URL())
	_, login := b.get(g.url + b.allow(g, page, "local").Header.Get("Location"))
	if resp := b.signIn(g, login, typed, "anything"); resp.StatusCode != 401 {
		t.Fatalf("failed login: %d, want 401 (the form again)", resp.StatusCode)
	}
	logs := g.logs.String()
	if !strings.Contains(logs, "login failed") {
		t.Fatalf("the failed login was not logged:\n%s", logs)
	}
	if strings.Contains(logs, typed) || strings.Contains(logs, typed[:12]) {
		t.Fatalf("SEC-4: the typed username %q is in the log:\n%s", typed, logs)
	}
}
