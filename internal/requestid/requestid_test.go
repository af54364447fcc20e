package requestid

import (
	"context"
	"regexp"
	"strings"
	"testing"
)

// SEC-103: ids are 128 random bits in hex, different every time.
func TestNew(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{32}$`)
	seen := map[string]bool{}
	for range 1000 {
		id := New()
		if !re.MatchString(id) {
			t.Fatalf("New() = %q, want 32 lowercase hex digits", id)
		}
		if seen[id] {
			t.Fatalf("New() gave %q twice", id)
		}
		seen[id] = true
	}
}

func TestContext(t *testing.T) {
	if got := From(context.Background()); got != "" {
		t.Errorf("From(empty) = %q, want \"\"", got)
	}
	if got := From(With(context.Background(), "abc")); got != "abc" {
		t.Errorf("From(With(abc)) = %q", got)
	}
}

func TestClient(t *testing.T) {
	for h, want := range map[string]string{
		"":                      "",
		"req-1.A_b":             "req-1.A_b",
		"a b":                   "",
		"x\nlevel=ERROR":        "",
		strings.Repeat("a", 64): strings.Repeat("a", 64),
		strings.Repeat("a", 65): "",
		"é":                     "",
	} {
		if got := Client(h); got != want {
			t.Errorf("Client(%q) = %q, want %q", h, got, want)
		}
	}
}

func BenchmarkNew(b *testing.B) {
	for b.Loop() {
		_ = New()
	}
}
