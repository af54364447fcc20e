package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"sync"
	"time"
)

// Options are the settings the harnesses (bench/mcpload, bench/flowload)
// share. Each registers the flags for them with its own defaults and help.
type Options struct {
	Duration, Warmup, Timeout time.Duration
	Rounds, Conns             int
	MaxOps                    int64 // cap on the operations of one round of one load
	CPUProfile, MemProfile    string
	LogFormat                 string  // the gateway's log: text, json or discard
	Quiet                     float64 // a round is quiet when other processes took at most this many cores
}

// Check checks the bounds of the options; maxOpsFlag is the name of the
// harness's flag for MaxOps, for the error.
func (o *Options) Check(maxOpsFlag string) error {
	switch {
	case o.Duration <= 0 || o.Duration > 10*time.Minute:
		return errors.New("-duration must be in (0, 10m]")
	case o.Warmup < 0 || o.Warmup > 10*time.Minute:
		return errors.New("-warmup must be in [0, 10m]")
	case o.Rounds < 1 || o.Rounds > 100:
		return errors.New("-rounds must be in [1, 100]")
	case o.Conns < 1 || o.Conns > 1024:
		return errors.New("-conns must be in [1, 1024]")
	case o.MaxOps < 1:
		return fmt.Errorf("%s must be positive", maxOpsFlag)
	case o.Timeout <= 0:
		return errors.New("-timeout must be positive")
	}
	switch o.LogFormat {
	case "discard", "text", "json":
	default:
		return fmt.Errorf("-log %q: want discard, text or json", o.LogFormat)
	}
	return nil
}

// Logger is the gateway's logger for LogFormat: text and json write to
// io.Discard (the formatting cost, no I/O); discard is nil, mcpgate.New's
// default (slog.DiscardHandler).
func (o *Options) Logger() *slog.Logger {
	switch o.LogFormat {
	case "text":
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	case "json":
		return slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	return nil
}

// Main is a harness's main function, once its flags are defined. It
// parses the command line (the usage is "usage: name [flags]", about and
// the flags), exits with status 2 on arguments or when check fails, runs
// run with a context that an interrupt cancels, and exits with the status
// run returns, or 1 on an error.
func Main(name, about string, check func() error, run func(ctx context.Context, stdout, stderr io.Writer) (int, error)) {
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: %s [flags]\n\n%s\n\n", name, about)
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := check(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code, err := run(ctx, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
	os.Exit(code)
}

// StartCPUProfile starts a CPU profile into a new file at path. stop ends
// the profile and closes the file; it may be called more than once.
func StartCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return sync.OnceFunc(func() {
		pprof.StopCPUProfile()
		f.Close()
	}), nil
}

// Machine describes what ran the load, for a report's header: Go
// version, OS and architecture, GOMAXPROCS and the CPU model.
func Machine() string {
	return fmt.Sprintf("%s %s/%s, GOMAXPROCS %d, %s", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), CPUModel())
}

// Verdict is "met" when a target is met, else "NOT met".
func Verdict(met bool) string {
	if met {
		return "met"
	}
	return "NOT met"
}
