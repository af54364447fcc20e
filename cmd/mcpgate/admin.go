package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/term"

	"github.com/mcpgate/mcpgate/internal/app"
	"github.com/mcpgate/mcpgate/internal/config"
)

const adminUsage = `Usage, with the settings of mcpgate serve (--data-dir, --store, --config, MCPGATE_*) to find its store:
  mcpgate users add NAME [--groups A,B] [--password-stdin] [--json] [serve flags]
  mcpgate users list [--json] [serve flags]
  mcpgate users passwd NAME [--password-stdin] [--json] [serve flags]
  mcpgate users disable NAME [--json] [serve flags]
  mcpgate users enable NAME [--json] [serve flags]
  mcpgate clients list [--json] [serve flags]
  mcpgate clients remove CLIENT_ID [--json] [serve flags]
  mcpgate grants list [--user USER_ID|NAME] [--all] [--json] [serve flags]
  mcpgate grants revoke GRANT_ID [--json] [serve flags]
A password is read from a terminal, or with --password-stdin from the first line of stdin; never from the command line.
Changes reach every running mcpgate serve on the store within 1 s.
`

// adminVerb is what a verb takes besides serve's flags.
type adminVerb struct {
	arg   string   // the positional argument's name; "" for none
	flags []string // its own flags, "json" among them
}

var adminVerbs = map[string]adminVerb{
	"users add":      {"NAME", []string{"groups", "password-stdin", "json"}},
	"users list":     {"", []string{"json"}},
	"users passwd":   {"NAME", []string{"password-stdin", "json"}},
	"users disable":  {"NAME", []string{"json"}},
	"users enable":   {"NAME", []string{"json"}},
	"clients list":   {"", []string{"json"}},
	"clients remove": {"CLIENT_ID", []string{"json"}},
	"grants list":    {"", []string{"user", "all", "json"}},
	"grants revoke":  {"GRANT_ID", []string{"json"}},
}

// valueFlags are the admin flags that take a value; the others are
// booleans.
var valueFlags = map[string]bool{"groups": true, "user": true}

// admin runs `mcpgate users|clients|grants …`.
func admin(noun string, args []string) int {
	if len(args) == 0 || isHelp(args[0]) {
		fmt.Fprint(os.Stderr, adminUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	verb, args := args[0], args[1:]
	spec, ok := adminVerbs[noun+" "+verb]
	if !ok {
		fmt.Fprintf(os.Stderr, "mcpgate: unknown command %s %q\n%s", noun, verb, adminUsage)
		return 2
	}
	cmd := app.AdminCommand{Noun: noun, Verb: verb}
	if spec.arg != "" {
		// The argument comes first, whatever it starts with: an id may
		// start with "-" (base64url).
		if len(args) > 0 && isHelp(args[0]) && args[0] != "help" {
			fmt.Print(adminUsage)
			return 0
		}
		if len(args) == 0 || isFlag(args[0], spec.flags) {
			fmt.Fprintf(os.Stderr, "mcpgate: %s %s needs its %s first\n%s", noun, verb, spec.arg, adminUsage)
			return 2
		}
		cmd.Arg, args = args[0], args[1:]
	}
	rest, passwordStdin, err := takeAdminFlags(&cmd, spec.flags, args)
	if errors.Is(err, errHelp) {
		fmt.Print(adminUsage)
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "mcpgate: %s %s: %v\n%s", noun, verb, err, adminUsage)
		return 2
	}
	cfg, code := load("mcpgate "+noun+" "+verb, rest, spec.flags...)
	if cfg == nil {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd.Password = func() (string, error) { return readPassword(ctx, passwordStdin) }
	if err := app.Admin(ctx, cfg, cmd, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "mcpgate: %s %s: %s\n", noun, verb, strings.TrimPrefix(err.Error(), "mcpgate: "))
		return 1
	}
	return 0
}

var errHelp = errors.New("help")

// isFlag reports whether a is one of own or of serve's flags, rather than
// an id that starts with "-".
func isFlag(a string, own []string) bool {
	if !strings.HasPrefix(a, "-") {
		return false
	}
	name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
	return slices.Contains(own, name) || config.IsFlag(name)
}

func isHelp(a string) bool { return a == "-h" || a == "--help" || a == "-help" || a == "help" }

// takeAdminFlags takes the verb's own flags (--json, --groups A,B,
// --groups=A,B…) out of args into cmd, and returns the rest: serve's
// settings, for load.
func takeAdminFlags(cmd *app.AdminCommand, own []string, args []string) (rest []string, passwordStdin bool, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "-h" || a == "--help" || a == "-help" {
			return nil, false, errHelp
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || !slices.Contains(own, name) {
			rest = append(rest, a)
			continue
		}
		if valueFlags[name] {
			if !hasValue {
				if i+1 == len(args) {
					return nil, false, fmt.Errorf("--%s needs a value", name)
				}
				i++
				value = args[i]
			}
			switch name {
			case "groups":
				for _, g := range strings.Split(value, ",") {
					if g = strings.TrimSpace(g); g != "" {
						cmd.Groups = append(cmd.Groups, g)
					}
				}
			case "user":
				cmd.User = value
			}
			continue
		}
		on := true
		if hasValue {
			if on, err = strconv.ParseBool(value); err != nil {
				return nil, false, fmt.Errorf("--%s takes no value but true or false", name)
			}
		}
		switch name {
		case "json":
			cmd.JSON = on
		case "all":
			cmd.All = on
		case "password-stdin":
			passwordStdin = on
		}
	}
	return rest, passwordStdin, nil
}

// readPassword reads a new password: the first line of stdin, or from the
// terminal without echo, twice; a ^C there ends the process (exit 130).
func readPassword(ctx context.Context, fromStdin bool) (string, error) {
	if fromStdin {
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && (!errors.Is(err, io.EOF) || line == "") {
			return "", errors.New("--password-stdin: no password on stdin")
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return "", errors.New("stdin is not a terminal to ask the password on: give it on stdin with --password-stdin")
	}
	// A ^C at the prompt ends the command, as the person means it to:
	// the read would go on past the signal, which the command's context
	// takes. The terminal gets its echo back first.
	state, err := term.GetState(fd)
	if err != nil {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	read := make(chan struct{})
	defer close(read)
	go func() {
		select {
		case <-ctx.Done():
			term.Restore(fd, state)
			fmt.Fprintln(os.Stderr)
			os.Exit(130)
		case <-read:
		}
	}()
	ask := func(prompt string) (string, error) {
		fmt.Fprint(os.Stderr, prompt)
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(os.Stderr)
		return string(b), err
	}
	first, err := ask("New password: ")
	if err != nil {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	again, err := ask("The same again: ")
	if err != nil {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	if first != again {
		return "", errors.New("the two passwords differ")
	}
	return first, nil
}
