package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// fakeEnv selects what the test binary does when run as a child: "server"
// is a real go-sdk MCP server on stdin/stdout; "sleeper" just sleeps (the
// server's own child, for the process-group test); "dies" says why on
// standard error and exits 3, as a server missing its script does
// ("dies-loud" after many lines).
const fakeEnv = "STDIO_TEST_FAKE"

func TestMain(m *testing.M) {
	switch os.Getenv(fakeEnv) {
	case "server":
		runFakeServer()
		os.Exit(0)
	case "sleeper":
		time.Sleep(time.Hour)
		os.Exit(0)
	case "dies":
		fmt.Fprint(os.Stderr, "loader:1228\n  throw err;\n\nError: Cannot find module '/srv/missing.js'\n    at resolve\n    at load\n}\n\nNode.js v22\n")
		os.Exit(3)
	case "dies-loud": // as "dies", after more notices than the log takes at once, and hundreds
		for i := range max(logBurst+50, 500) {
			fmt.Fprintf(os.Stderr, "npm notice %d\n", i)
		}
		fmt.Fprint(os.Stderr, "loader:1228\n  throw err;\n\nError: Cannot find module '/srv/missing.js'\n    at resolve\n    at load\n}\n\nNode.js v22\n")
		os.Exit(3)
	}
	os.Exit(m.Run())
}

type textIn struct {
	Text string `json:"text,omitempty"`
}

func text(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}

// rootsTool asks the client for its roots and returns their URIs, joined
// with ",".
func rootsTool(ctx context.Context, req *mcp.CallToolRequest, _ textIn) (*mcp.CallToolResult, any, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	res, err := req.Session.ListRoots(ctx, nil)
	if err != nil {
		return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "roots failed: " + err.Error()}}}, nil, nil
	}
	var uris []string
	for _, r := range res.Roots {
		uris = append(uris, r.URI)
	}
	return text(strings.Join(uris, ",")), nil, nil
}

// runFakeServer serves tools that report on the process and misbehave on
// demand.
func runFakeServer() {
	s := mcp.NewServer(&mcp.Implementation{Name: "fake-stdio", Version: "1.0.0"}, &mcp.ServerOptions{Instructions: "fake instructions"})
	home := os.Getenv("HOME")
	mcp.AddTool(s, &mcp.Tool{Name: "env", Description: "the process's identity"}, func(ctx context.Context, req *mcp.CallToolRequest, _ textIn) (*mcp.CallToolResult, any, error) {
		wd, _ := os.Getwd()
		_, tmpdir := os.LookupEnv("TMPDIR")
		_, secret := os.LookupEnv("MCPGATE_TEST_SECRET")
		b, _ := json.Marshal(map[string]any{
			"pid": os.Getpid(), "user": os.Getenv("MCPGATE_USER"), "name": os.Getenv("MCPGATE_USER_NAME"),
			"email": os.Getenv("MCPGATE_USER_EMAIL"), "groups": os.Getenv("MCPGATE_USER_GROUPS"),
			"home": home, "wd": wd, "has_tmpdir": tmpdir, "has_secret": secret, "extra": os.Getenv("EXTRA"),
			"env_count": len(os.Environ()),
		})
		return text(string(b)), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "returns text"}, func(ctx context.Context, req *mcp.CallToolRequest, in textIn) (*mcp.CallToolResult, any, error) {
		return text(in.Text), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "crash", Description: "exits mid-request"}, func(ctx context.Context, req *mcp.CallToolRequest, _ textIn) (*mcp.CallToolResult, any, error) {
		os.Exit(3)
		return nil, nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "sleep", Description: "waits until cancelled"}, func(ctx context.Context, req *mcp.CallToolRequest, _ textIn) (*mcp.CallToolResult, any, error) {
		os.WriteFile(filepath.Join(home, "started"), nil, 0o600)
		select {
		case <-ctx.Done():
			os.WriteFile(filepath.Join(home, "cancelled"), nil, 0o600)
			return nil, nil, ctx.Err()
		case <-time.After(time.Minute):
			return text("woke up"), nil, nil
		}
	})
	mcp.AddTool(s, &mcp.Tool{Name: "stderr", Description: "writes text to stderr"}, func(ctx context.Context, req *mcp.CallToolRequest, in textIn) (*mcp.CallToolResult, any, error) {
		fmt.Fprintln(os.Stderr, in.Text)
		return text("ok"), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "noise", Description: "floods stderr and stdout with lines"}, func(ctx context.Context, req *mcp.CallToolRequest, in textIn) (*mcp.CallToolResult, any, error) {
		n, _ := strconv.Atoi(in.Text)
		for i := range n {
			fmt.Fprintf(os.Stderr, "noise %d\n", i)
			fmt.Fprintf(os.Stdout, "not json %d\n", i)
		}
		return text("ok"), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "spawn", Description: "starts a child process"}, func(ctx context.Context, req *mcp.CallToolRequest, _ textIn) (*mcp.CallToolResult, any, error) {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), fakeEnv+"=sleeper")
		if err := cmd.Start(); err != nil {
			return nil, nil, err
		}
		return text(fmt.Sprint(cmd.Process.Pid)), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "flood", Description: "writes N log notifications of 1 MiB to its client"}, func(ctx context.Context, req *mcp.CallToolRequest, in textIn) (*mcp.CallToolResult, any, error) {
		n, _ := strconv.Atoi(in.Text)
		pad := strings.Repeat("x", 1<<20)
		for range n {
			// Written raw: the SDK sends log messages only at a level the
			// client set, and a hostile server asks no one.
			fmt.Fprintf(os.Stdout, `{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"%s"}}`+"\n", pad)
		}
		return text("ok"), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "escape", Description: "starts a child in a session of its own, holding the server's stdin, stdout and stderr, and exits"}, func(ctx context.Context, req *mcp.CallToolRequest, _ textIn) (*mcp.CallToolResult, any, error) {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), fakeEnv+"=sleeper")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // out of the server's process group
		if err := cmd.Start(); err != nil {
			return nil, nil, err
		}
		f, err := os.OpenFile(filepath.Join(home, "pids"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, nil, err
		}
		fmt.Fprintln(f, cmd.Process.Pid)
		f.Close()
		os.Exit(0)
		return nil, nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "big", Description: "answers with text of N bytes"}, func(ctx context.Context, req *mcp.CallToolRequest, in textIn) (*mcp.CallToolResult, any, error) {
		n, _ := strconv.Atoi(in.Text)
		return text(strings.Repeat("A", n)), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "roots", Description: "asks the client for its roots"}, rootsTool)
	mcp.AddTool(s, &mcp.Tool{Name: "progress", Description: "reports progress, then answers; text: the message's length, else \"half\""}, func(ctx context.Context, req *mcp.CallToolRequest, in textIn) (*mcp.CallToolResult, any, error) {
		msg := "half"
		if n, err := strconv.Atoi(in.Text); err == nil {
			msg = strings.Repeat("x", n)
		}
		if tok := req.Params.GetProgressToken(); tok != nil {
			req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: 1, Total: 2, Message: msg})
		}
		return text("done"), nil, nil
	})
	if err := s.Run(context.Background(), &mcp.StdioTransport{}); err != nil {
		fmt.Fprintln(os.Stderr, "fake server:", err)
	}
}
