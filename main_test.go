package mcpgate_test

import (
	"os"
	"testing"

	"github.com/mcpgate/mcpgate/internal/pgtest"
)

// The tests that run on PostgreSQL share one throwaway server, stopped
// here when they are done.
func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }
