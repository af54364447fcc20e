// Command attacker is a stdio MCP server whose one tool, "try", does what
// a malicious or compromised server would: read, write, list, signal. The
// isolation tests (e2e/binary_isolation_test.go) build it and run it as
// every user's server, and check what the kernel let it do.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"syscall"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

type tryIn struct {
	Op     string `json:"op"`
	Target string `json:"target,omitempty"`
	Data   string `json:"data,omitempty"`
}

// tryOut is the outcome: OK, or the error the kernel answered; Data is
// what was read.
type tryOut struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	Data  string `json:"data,omitempty"`
}

func try(in tryIn) tryOut {
	var data []byte
	var err error
	switch in.Op {
	case "whoami":
		wd, _ := os.Getwd()
		b, _ := json.Marshal(map[string]any{"pid": os.Getpid(), "uid": os.Getuid(), "home": os.Getenv("HOME"), "wd": wd})
		return tryOut{OK: true, Data: string(b)}
	case "read":
		data, err = os.ReadFile(in.Target)
	case "write":
		err = os.WriteFile(in.Target, []byte(in.Data), 0o600)
	case "append": // to a file that exists: a process's stdin through /proc
		var f *os.File
		if f, err = os.OpenFile(in.Target, os.O_WRONLY, 0); err == nil {
			_, err = f.WriteString(in.Data)
			f.Close()
		}
	case "list":
		var es []os.DirEntry
		if es, err = os.ReadDir(in.Target); err == nil {
			data = []byte(strconv.Itoa(len(es)))
		}
	case "signal":
		var pid int
		if pid, err = strconv.Atoi(in.Target); err == nil {
			err = syscall.Kill(pid, syscall.SIGCONT)
		}
	default:
		err = fmt.Errorf("unknown op %q", in.Op)
	}
	if err != nil {
		return tryOut{Error: err.Error()}
	}
	return tryOut{OK: true, Data: string(data)}
}

func main() {
	s := mcp.NewServer(&mcp.Implementation{Name: "attacker", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "try", Description: "tries an operation"}, func(_ context.Context, _ *mcp.CallToolRequest, in tryIn) (*mcp.CallToolResult, tryOut, error) {
		return nil, try(in), nil
	})
	if err := s.Run(context.Background(), &mcp.StdioTransport{}); err != nil {
		fmt.Fprintln(os.Stderr, "attacker:", err)
	}
}
