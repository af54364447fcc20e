package identity

import "testing"

func TestJoinGroupsLeavesOutWhatCouldForgeAGroup(t *testing.T) {
	got := JoinGroups([]string{"dev", "", "ops,admins", "qa\r\nX-Forwarded-User: root", "sre\tteam", "data"})
	if want := "dev,sre\tteam,data"; got != want {
		t.Fatalf("JoinGroups = %q, want %q", got, want)
	}
}

func TestPrintable(t *testing.T) {
	for v, want := range map[string]bool{"local:alice": true, "a\tb": true, "é": true, "a\nb": false, "a\x00": false, "a\x7f": false} {
		if Printable(v) != want {
			t.Errorf("Printable(%q) = %v, want %v", v, !want, want)
		}
	}
}
