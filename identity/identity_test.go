package identity

import (
	"net/url"
	"slices"
	"strings"
	"testing"
)

// SEC-74: a group name is never dropped from the joined list, nor read as
// another name or as more than one: each is percent-encoded where it holds
// "%", ",", a control character or a space at either end, so that the
// list splits at its commas and each item decodes to the name; a header
// or variable never holds a line break. Only an empty name (no name) is
// left out.
func TestSEC74_JoinGroupsEncodesNeverDrops(t *testing.T) {
	in := []string{"dev", "", "ops,admins", "qa\r\nX-Forwarded-User: root", "sre\tteam", "100%", " lead ", "Sales, EMEA", "é", "data"}
	got := JoinGroups(in)
	want := "dev,ops%2Cadmins,qa%0D%0AX-Forwarded-User: root,sre%09team,100%25,%20lead%20,Sales%2C EMEA,é,data"
	if got != want {
		t.Fatalf("JoinGroups = %q, want %q", got, want)
	}
	if !Printable(got) || strings.ContainsAny(got, "\t\r\n") {
		t.Fatalf("JoinGroups = %q: not one printable line", got)
	}
	var back []string
	for _, item := range strings.Split(got, ",") {
		if item != strings.TrimSpace(item) {
			t.Errorf("item %q has spaces a list parser would trim", item)
		}
		name, err := url.PathUnescape(item)
		if err != nil {
			t.Fatalf("item %q: %v", item, err)
		}
		back = append(back, name)
	}
	if wantBack := slices.DeleteFunc(slices.Clone(in), func(g string) bool { return g == "" }); !slices.Equal(back, wantBack) {
		t.Fatalf("decoded %q, want %q", back, wantBack)
	}
}

func TestPrintable(t *testing.T) {
	for v, want := range map[string]bool{"local:alice": true, "a\tb": true, "é": true, "a\nb": false, "a\x00": false, "a\x7f": false} {
		if Printable(v) != want {
			t.Errorf("Printable(%q) = %v, want %v", v, !want, want)
		}
	}
}
