package bytebudget_test

import (
	"testing"

	"github.com/mcpgate/mcpgate/internal/bytebudget"
)

func TestBudget(t *testing.T) {
	b := bytebudget.Budget{Total: 100, PerUser: 60}
	steps := []struct {
		name    string
		do      func() bool
		want    bool
		held    int
		overAda bool // whether 1 more byte for ada would pass her share
	}{
		{"ada takes 60, her whole share", func() bool { return b.Reserve("ada", 60) }, true, 60, true},
		{"ada takes 1 more", func() bool { return b.Reserve("ada", 1) }, false, 60, true},
		{"bob takes 40, the rest", func() bool { return b.Reserve("bob", 40) }, true, 100, true},
		{"cy takes 1, past the total", func() bool { return b.Reserve("cy", 1) }, false, 100, true},
		{"ada gives back 30", func() bool { b.Release("ada", 30); return true }, true, 70, false},
		{"cy takes 30", func() bool { return b.Reserve("cy", 30) }, true, 100, false},
		{"all given back", func() bool { b.Release("ada", 30); b.Release("bob", 40); b.Release("cy", 30); return true }, true, 0, false},
	}
	for _, s := range steps {
		if got := s.do(); got != s.want {
			t.Fatalf("%s: %v, want %v", s.name, got, s.want)
		}
		if got := b.Held(); got != s.held {
			t.Fatalf("%s: %d held, want %d", s.name, got, s.held)
		}
		if got := b.OverShare("ada", 1); got != s.overAda {
			t.Fatalf("%s: OverShare(ada, 1) = %v, want %v", s.name, got, s.overAda)
		}
	}
	var zero bytebudget.Budget
	if zero.Reserve("ada", 1) {
		t.Error("the zero Budget admitted a byte; want nothing admitted")
	}
}

// What counting costs a request: one Reserve and one Release, from as
// many goroutines as there are processors.
func BenchmarkReserveRelease(b *testing.B) {
	budget := bytebudget.Budget{Total: 1 << 30, PerUser: 1 << 30}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !budget.Reserve("local:alice", 4096) {
				b.Fatal("refused within the budget")
			}
			budget.Release("local:alice", 4096)
		}
	})
}
