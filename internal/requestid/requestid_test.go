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

// Whatever a client sends as X-Request-Id: it is logged as it is only
// when short and plain, and otherwise not at all (SEC-103).
func FuzzClient(f *testing.F) {
	for _, h := range []string{"", "req-1.A_b", "x\nlevel=ERROR", "é", strings.Repeat("a", 65)} {
		f.Add(h)
	}
	plain := regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	f.Fuzz(func(t *testing.T, h string) {
		got := Client(h)
		if want := plain.MatchString(h); want && got != h || !want && got != "" {
			t.Fatalf("Client(%q) = %q, want it kept only when short and plain", h, got)
		}
	})
}

func BenchmarkNew(b *testing.B) {
	for b.Loop() {
		_ = New()
	}
}
