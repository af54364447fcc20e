// Command mcpgate runs the gateway: `mcpgate serve [flags]`, `mcpgate version`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/mcpgate/mcpgate/internal/app"
	"github.com/mcpgate/mcpgate/internal/config"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, "Usage: mcpgate serve [flags] | mcpgate version\n")
		return 2
	}
	switch args[0] {
	case "version", "--version", "-version":
		fmt.Println("mcpgate", app.Version)
		return 0
	case "serve":
	case "help", "-h", "--help":
		fmt.Print(config.Usage())
		return 0
	default:
		fmt.Fprintf(os.Stderr, "mcpgate: unknown command %q\nUsage: mcpgate serve [flags] | mcpgate version\n", args[0])
		return 2
	}
	cfg, err := config.Load(args[1:], os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Print(config.Usage())
		return 0
	}
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "mcpgate: invalid configuration:\n%s\n", indent(err.Error()))
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Serve(ctx, cfg, os.Stdout, os.Stderr, nil); err != nil {
		fmt.Fprintf(os.Stderr, "mcpgate: %v\n", err)
		return 1
	}
	return 0
}

func indent(s string) string {
	out := "  - "
	for _, r := range s {
		out += string(r)
		if r == '\n' {
			out += "  - "
		}
	}
	return out
}
