package mcpgate_test

import (
	"context"
	"html"
	"regexp"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate"
)

// pageText is a page's visible text, its tags dropped and spaces folded.
func pageText(body []byte) string {
	t := regexp.MustCompile(`<[^>]*>`).ReplaceAllString(string(body), " ")
	return strings.Join(strings.Fields(html.UnescapeString(t)), " ")
}

// SEC-126: the consent page says whether the operator registered the
// client or it registered itself, whose name is then its own claim; and a
// client that registered itself under the name of one the operator
// registered is shown as not that one.
func TestSEC126_ConsentPageSaysWhoRegisteredTheClient(t *testing.T) {
	g := newGateway(t, func(c *mcpgate.Config) {
		c.Clients = append(c.Clients, mcpgate.Client{ID: "corp-assistant", Name: "Corp Assistant", RedirectURIs: []string{redirectURI}})
	})
	const (
		byOperator = "This application was registered by the administrator of this server."
		selfNamed  = "This application registered itself with this server: its name is its own claim, which nobody checked."
		notIt      = "The administrator registered another application of this name: this one is not it."
		mixed      = "This application's name mixes letters of different alphabets, as names made to look like another do."
	)
	for _, tc := range []struct {
		name, clientID string
		want, not      []string
	}{
		{"pre-registered", "corp-assistant", []string{byOperator}, []string{selfNamed, notIt, mixed}},
		{"self-registered", g.register(map[string]any{"client_name": "Notes"}).ClientID, []string{selfNamed}, []string{byOperator, notIt, mixed}},
		// A look-alike in another alphabet folds to another name, but
		// mixes scripts as no name a person writes does.
		{"self-registered under the name with a Cyrillic letter", g.register(map[string]any{"client_name": "\u0421orp Assistant"}).ClientID,
			[]string{selfNamed, mixed}, []string{byOperator}},
		{"self-registered under the operator's client's name", g.register(map[string]any{"client_name": "corp  ASSISTANT"}).ClientID,
			[]string{selfNamed, notIt}, []string{byOperator}},
		{"self-registered under a look-alike of the name", g.register(map[string]any{"client_name": "Ｃｏｒｐ Assis\u200btant"}).ClientID,
			[]string{selfNamed, notIt}, []string{byOperator}},
		// Characters a page shows as nothing, or as a space, or as a mark
		// a reader does not see on a letter, fold as nothing does.
		{"self-registered under the name with a combining grapheme joiner", g.register(map[string]any{"client_name": "Corp Assis\u034ftant"}).ClientID,
			[]string{selfNamed, notIt}, []string{byOperator}},
		{"self-registered under the name with a variation selector", g.register(map[string]any{"client_name": "Corp Assistant\ufe0f"}).ClientID,
			[]string{selfNamed, notIt}, []string{byOperator}},
		{"self-registered under the name with a Hangul filler for its space", g.register(map[string]any{"client_name": "Corp\u3164Assistant"}).ClientID,
			[]string{selfNamed, notIt}, []string{byOperator}},
		{"self-registered under the name with a braille blank", g.register(map[string]any{"client_name": "Corp Assistant\u2800"}).ClientID,
			[]string{selfNamed, notIt}, []string{byOperator}},
		{"self-registered under the name with combining marks", g.register(map[string]any{"client_name": "Co\u0323rp Assistant\u0331"}).ClientID,
			[]string{selfNamed, notIt}, []string{byOperator}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := g.get(g.newAuth(tc.clientID).URL())
			text := pageText(body)
			if resp.StatusCode != 200 || !strings.Contains(text, "Client ID: "+tc.clientID) {
				t.Fatalf("/authorize: %d %q, want the consent page", resp.StatusCode, text)
			}
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("the consent page does not say %q: %q", w, text)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(text, n) {
					t.Errorf("the consent page says %q: %q", n, text)
				}
			}
		})
	}
}

// SEC-165: the account page and the admin console warn about a
// self-registered client's name as the consent page does, so that a
// look-alike the person approved, or one among the clients an
// administrator reviews, is not read as the operator's application there
// either; a name of its own gets no warning.
func TestSEC165_ConsoleWarnsAboutClientNames(t *testing.T) {
	g := newGateway(t, func(c *mcpgate.Config) {
		c.Clients = append(c.Clients, mcpgate.Client{ID: "corp-assistant", Name: "Corp Assistant", RedirectURIs: []string{redirectURI}})
		c.AdminGroups = []string{"ops"}
	})
	if err := g.local.SetUser(context.Background(), "carol", hashed(testPassword), "ops"); err != nil {
		t.Fatal(err)
	}
	const (
		notIt = "Not the pre-registered application of this name."
		mixed = "Its name mixes alphabets, as names made to look like another do."
	)
	want := map[string]string{"CORP assistant": notIt, "\u0421orp Assistant": mixed, "Notes": ""}
	for name := range want {
		a := g.newAuth(g.register(map[string]any{"client_name": name}).ClientID)
		code, _ := g.login(a)
		if resp, tok := g.exchange(a, code); resp.StatusCode != 200 {
			t.Fatalf("a grant for %q: %d %+v", name, resp.StatusCode, tok)
		}
	}
	// rows are the page's table rows, as text, by the name each shows.
	rows := func(body, table string) map[string]string {
		got := map[string]string{}
		_, tbody, _ := strings.Cut(body, `<table id="`+table+`"`)
		tbody, _, _ = strings.Cut(tbody, "</table>")
		for _, tr := range strings.Split(tbody, "<tr ")[1:] {
			text := pageText([]byte("<tr " + tr))
			for name := range want {
				if strings.Contains(text, name) {
					got[name] = text
				}
			}
		}
		return got
	}
	for _, p := range []struct{ who, path, table string }{
		{testUser, "/account", "grants"},
		{"carol", "/admin/grants", "grants"},
		{"carol", "/admin/clients", "clients"},
	} {
		_, body := page(t, g.pageLogin(p.who, testPassword, p.path), "GET", g.url+p.path, nil)
		got := rows(body, p.table)
		for name, warning := range want {
			row, ok := got[name]
			switch {
			case !ok:
				t.Errorf("%s: no row for %q in:\n%s", p.path, name, body)
			case warning != "" && !strings.Contains(row, warning):
				t.Errorf("%s: the row of %q does not warn %q: %q", p.path, name, warning, row)
			case warning == "" && (strings.Contains(row, notIt) || strings.Contains(row, mixed)):
				t.Errorf("%s: the row of %q warns: %q", p.path, name, row)
			}
		}
	}
}
