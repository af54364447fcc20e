package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mcpgate/mcpgate/internal/app"
)

const flowsUsage = `Usage, with the settings of mcpgate serve (--data-dir, --store, --config, MCPGATE_*) to find its store:
  mcpgate flows [--client ID] [--user USER_ID|NAME] [--outcome O|failed] [--since DURATION] [--limit N] [--json] [serve flags]
Prints the authorization attempts of the last 24 hours (or --since, e.g. 30m), every replica's, one block each:
its steps in time order and, last, the reason it stopped. --outcome failed selects the attempts that failed.
`

// flowsCmd runs `mcpgate flows …`.
func flowsCmd(args []string) int {
	var cmd app.FlowsCommand
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if isHelp(a) {
			fmt.Print(flowsUsage)
			return 0
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch {
		case !strings.HasPrefix(a, "-"):
			rest = append(rest, a) // a value of serve's flags; load refuses any other
			continue
		case name == "json":
			on := true
			if hasValue {
				var err error
				if on, err = strconv.ParseBool(value); err != nil {
					fmt.Fprintf(os.Stderr, "mcpgate: flows: --json takes no value but true or false\n")
					return 2
				}
			}
			cmd.JSON = on
			continue
		case name != "client" && name != "user" && name != "outcome" && name != "since" && name != "limit":
			rest = append(rest, a) // serve's
			continue
		}
		if !hasValue {
			if i+1 == len(args) {
				fmt.Fprintf(os.Stderr, "mcpgate: flows: --%s needs a value\n%s", name, flowsUsage)
				return 2
			}
			i++
			value = args[i]
		}
		if err := setFlowsFlag(&cmd, name, value); err != nil {
			fmt.Fprintf(os.Stderr, "mcpgate: flows: %v\n%s", err, flowsUsage)
			return 2
		}
	}
	cfg, code := load("mcpgate flows", rest, "client", "user", "outcome", "since", "limit", "json")
	if cfg == nil {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Flows(ctx, cfg, cmd, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "mcpgate: flows: %s\n", strings.TrimPrefix(strings.TrimPrefix(err.Error(), "mcpgate: "), "flows: "))
		return 1
	}
	return 0
}

func setFlowsFlag(cmd *app.FlowsCommand, name, value string) error {
	switch name {
	case "client":
		cmd.ClientID = value
	case "user":
		cmd.User = value
	case "outcome":
		cmd.Outcome = value
	case "since":
		d, err := time.ParseDuration(value)
		if err != nil || d <= 0 {
			return fmt.Errorf("--since %q is not a positive duration like 30m or 2h", value)
		}
		cmd.Since = d
	case "limit":
		n, err := strconv.Atoi(value)
		if err != nil || n <= 0 {
			return fmt.Errorf("--limit %q is not a positive number", value)
		}
		cmd.Limit = n
	}
	return nil
}
