// Command mcpgate runs the gateway: `mcpgate serve [flags]`, `mcpgate version`,
// checks what serve would need before it runs: `mcpgate check [serve flags]`,
// and manages its keys: `mcpgate keys rotate [serve flags]`, `mcpgate keys
// new-secret`, and its store's users, clients and grants: `mcpgate users
// add|list|passwd|disable`, `mcpgate clients list|remove`, `mcpgate grants
// list|revoke` (admin.go), and shows the flow debugger's authorization
// attempts: `mcpgate flows` (flows.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/mcpgate/mcpgate/internal/app"
	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/sandbox"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	switch args[0] {
	case "version", "--version", "-version":
		fmt.Println("mcpgate", app.Version)
		return 0
	case "serve":
	case "keys":
		return keys(args[1:])
	case "users", "clients", "grants":
		return admin(args[0], args[1:])
	case "flows":
		return flowsCmd(args[1:])
	case "check":
		return check(args[1:])
	case "help", "-h", "--help":
		fmt.Print(usage + "Each command's own -h lists its flags; mcpgate serve -h lists every setting.\n")
		return 0
	default:
		fmt.Fprintf(os.Stderr, "mcpgate: unknown command %q\n%s", args[0], usage)
		return 2
	}
	cfg, code := load("mcpgate serve", args[1:])
	if cfg == nil {
		return code
	}
	// SIGHUP too: mcpgate reloads nothing, and a closed terminal or an
	// operator's reload must not kill it with its last log lines unwritten.
	// Not when it is ignored (nohup): asking for it would stop ignoring it.
	signals := []os.Signal{os.Interrupt, syscall.SIGTERM}
	if !signal.Ignored(syscall.SIGHUP) {
		signals = append(signals, syscall.SIGHUP)
	}
	ctx, stop := signal.NotifyContext(context.Background(), signals...)
	defer stop()
	if err := app.Serve(ctx, cfg, os.Stdout, os.Stderr, nil); err != nil {
		// The library's errors name it already.
		fmt.Fprintf(os.Stderr, "mcpgate: %s\n", strings.TrimPrefix(err.Error(), "mcpgate: "))
		if errors.Is(err, sandbox.ErrRefused) {
			return 2 // fixed in the configuration or on the host, as an invalid one
		}
		return 1
	}
	return 0
}

const usage = "Usage: mcpgate serve [flags] | mcpgate check [serve flags] | mcpgate keys rotate [serve flags] | mcpgate keys new-secret | mcpgate version\n" +
	"       mcpgate users|clients|grants … [serve flags] (mcpgate users -h)\n" +
	"       mcpgate flows [--client ID] [--user U] [--outcome O] [--since D] [--limit N] [--json] [serve flags] (mcpgate flows -h)\n"

// load reads and checks the settings of serve (and of the commands that
// use its store and key) from args and the environment. It returns nil and
// the exit status when there is nothing to run: -h, which prints the
// settings under command's name, or a problem. commandFlags are the
// command's own flags, which a misspelt flag may have meant.
func load(command string, args []string, commandFlags ...string) (*config.Config, int) {
	// Before any secret is read: no process of this uid may read this
	// one's memory, environ or descriptors through /proc (SEC-21).
	if err := sandbox.HardenGateway(); err != nil {
		fmt.Fprintf(os.Stderr, "mcpgate: making the process non-dumpable: %v\n", err)
		return nil, 1
	}
	var env readEnv
	cfg, err := config.Load(args, env.get, commandFlags...)
	env.drop()
	if errors.Is(err, flag.ErrHelp) {
		fmt.Print(config.Usage(command))
		return nil, 0
	}
	// What could be read is checked too: one run lists every problem.
	if cfg != nil {
		err = errors.Join(err, cfg.Validate())
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "mcpgate: invalid configuration:\n%s\n", indent(err.Error()))
		if errors.Is(err, config.ErrNoSuchFlag) {
			fmt.Fprintf(os.Stderr, "%s -h lists the flags.\n", command)
		}
		return nil, 2
	}
	return cfg, 0
}

// check runs `mcpgate check`: exit status 0 when every check passed, 1
// when one failed, 2 for settings serve would refuse, as serve.
func check(args []string) int {
	cfg, code := load("mcpgate check", args)
	if cfg == nil {
		if code != 0 {
			fmt.Printf("%-4s %-8s %s\n", "FAIL", "config", "invalid: each problem is listed on standard error")
		}
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if !app.Check(ctx, cfg, os.Stdout) {
		return 1
	}
	return 0
}

// keys runs `mcpgate keys rotate` and `mcpgate keys new-secret`.
func keys(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	switch args[0] {
	case "-h", "--help", "-help", "help":
		fmt.Print("Usage: mcpgate keys rotate [serve flags] | mcpgate keys new-secret\n" +
			"  rotate      makes a new signing key in the store that the serve flags name (mcpgate keys rotate -h lists them)\n" +
			"  new-secret  prints a new secret key, for secret_key_file\n")
		return 0
	case "new-secret":
		if len(args) > 1 {
			fmt.Fprintf(os.Stderr, "mcpgate: keys new-secret takes no arguments\n%s", usage)
			return 2
		}
		if err := app.NewSecret(os.Stdout); err != nil {
			fmt.Fprintf(os.Stderr, "mcpgate: %v\n", err)
			return 1
		}
		return 0
	case "rotate":
		cfg, code := load("mcpgate keys rotate", args[1:])
		if cfg == nil {
			return code
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := app.RotateKeys(ctx, cfg, os.Stdout); err != nil {
			fmt.Fprintf(os.Stderr, "mcpgate: %s\n", strings.TrimPrefix(err.Error(), "mcpgate: "))
			return 1
		}
		return 0
	}
	fmt.Fprintf(os.Stderr, "mcpgate: unknown command keys %q\n%s", args[0], usage)
	return 2
}

// readEnv reads the environment for config.Load and remembers what it
// read: every setting's variable and every $VAR of the config file,
// secrets among them.
type readEnv struct{ names []string }

func (e *readEnv) get(k string) string {
	e.names = append(e.names, k)
	return os.Getenv(k)
}

// drop removes what was read from the process's environment, so that
// nothing started later inherits it and os.Environ no longer holds it
// (SEC-21). The kernel's copy in /proc/PID/environ stays: the process is
// non-dumpable for that. PATH and the locale are kept for the servers.
func (e *readEnv) drop() {
	for _, k := range e.names {
		switch k {
		case "PATH", "HOME", "LANG", "TZ", "TMPDIR":
			continue
		}
		os.Unsetenv(k)
	}
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
