package main

// -gateway PATH: A is a built mcpgate binary, `PATH serve --upstream B`,
// in a process of its own, and its CPU is that process's.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/mcpgate/mcpgate/bench"
)

const (
	gatewayStartTimeout = 30 * time.Second
	gatewayStopTimeout  = 10 * time.Second // from SIGTERM to SIGKILL
)

// gatewayProcess is a running `mcpgate serve`.
type gatewayProcess struct {
	path    string // the binary
	sum     string // start of its SHA-256, to tell two binaries' reports apart
	version string // what `PATH version` printed
	base    string // http://127.0.0.1:PORT
	dir     string // its --data-dir, and its log
	logPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed once the process has exited
	waitErr error         // set before done is closed
	stopped bool          // stop has sent SIGTERM: an exit is expected
}

// startGateway starts `path serve` as `mcpgate serve --upstream upstream`
// would run in production, on a free loopback port, with the in-memory
// store, the harness's local user, and its log (format logFormat, text by
// default, as the binary's) written to a file in a temporary directory,
// and waits until it answers /healthz. extra are more arguments of serve,
// env more environment variables. On failure nothing is left running.
func startGateway(ctx context.Context, path, upstream, logFormat string, extra, env []string) (*gatewayProcess, error) {
	path, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	bin, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("-gateway: %w", err)
	}
	sum := sha256.Sum256(bin)
	g := &gatewayProcess{path: path, sum: fmt.Sprintf("%x", sum[:6]), done: make(chan struct{})}
	if out, err := exec.CommandContext(ctx, path, "version").Output(); err == nil {
		g.version = strings.TrimSpace(string(out))
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	g.base = "http://127.0.0.1:" + port
	if g.dir, err = os.MkdirTemp("", "mcpload-gateway-"); err != nil {
		return nil, err
	}
	g.logPath = filepath.Join(g.dir, "mcpgate.log")
	logFile, err := os.Create(g.logPath)
	if err != nil {
		os.RemoveAll(g.dir)
		return nil, err
	}
	defer logFile.Close() // the child has its own descriptor
	g.cmd = exec.Command(path, "serve",
		"--listen", "127.0.0.1:"+port,
		"--data-dir", g.dir,
		"--store", "memory",
		"--local-user", user+":"+password,
		"--upstream", upstream,
		"--log-format", logFormat)
	g.cmd.Args = append(g.cmd.Args, extra...)
	g.cmd.Env = append(gatewayEnv(os.Environ()), env...)
	g.cmd.Stdout, g.cmd.Stderr = logFile, logFile
	g.cmd.SysProcAttr = childAttr()
	if err := g.cmd.Start(); err != nil {
		os.RemoveAll(g.dir)
		return nil, fmt.Errorf("-gateway: %w", err)
	}
	go func() {
		g.waitErr = g.cmd.Wait()
		close(g.done)
	}()
	if err := g.waitReady(ctx); err != nil {
		return nil, errors.Join(err, g.stop())
	}
	return g, nil
}

// gatewayEnv is env without what would configure mcpgate besides its
// command line: its MCPGATE_ variables and the GitHub app's. What tunes the
// Go runtime (GOGC, GOMAXPROCS…) passes through.
func gatewayEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "MCPGATE_") || k == "GITHUB_CLIENT" || k == "GITHUB_SECRET" {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// freePort is a loopback port nothing listened on a moment ago.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	return port, err
}

// waitReady polls /healthz until it answers 200, the process exits, or
// gatewayStartTimeout passes.
func (g *gatewayProcess) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, gatewayStartTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.base+"/healthz", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-g.done:
			return g.failure("exited before answering")
		case <-ctx.Done():
			return g.failure(fmt.Sprintf("did not answer %s/healthz within %s", g.base, gatewayStartTimeout))
		case <-tick.C:
		}
	}
}

// exited reports an error if the process has exited by itself.
func (g *gatewayProcess) exited() error {
	select {
	case <-g.done:
		if !g.stopped {
			return g.failure("exited during the run")
		}
	default:
	}
	return nil
}

// failure is an error about the gateway process that ends with the last
// lines of its log.
func (g *gatewayProcess) failure(what string) error {
	status := ""
	select {
	case <-g.done:
		status = fmt.Sprintf(" (%v)", g.waitErr)
	default:
	}
	return fmt.Errorf("the gateway %s serve (pid %d) %s%s; the end of its log:\n%s", g.path, g.cmd.Process.Pid, what, status, g.logTail(20))
}

// logTail is the last n lines of the gateway's log.
func (g *gatewayProcess) logTail(n int) string {
	f, err := os.Open(g.logPath)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	const maxTail = 16 << 10
	if st, err := f.Stat(); err == nil && st.Size() > maxTail {
		f.Seek(st.Size()-maxTail, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	lines = lines[max(len(lines)-n, 0):]
	return string(bytes.Join(lines, []byte("\n")))
}

// logSize is the size of the gateway's log so far.
func (g *gatewayProcess) logSize() int64 {
	st, err := os.Stat(g.logPath)
	if err != nil {
		return 0
	}
	return st.Size()
}

// cpu is the CPU time the process has used so far.
func (g *gatewayProcess) cpu() (bench.ProcCPU, error) {
	if err := g.exited(); err != nil {
		return bench.ProcCPU{}, err
	}
	c, err := bench.ProcessCPU(g.cmd.Process.Pid)
	if err != nil {
		return c, fmt.Errorf("the gateway's CPU: %w", err)
	}
	return c, nil
}

// stop ends the process, SIGTERM (mcpgate serve's graceful shutdown) and
// SIGKILL after gatewayStopTimeout, and removes its directory. It may be
// called more than once. An exit before stop is for exited to report.
func (g *gatewayProcess) stop() error {
	var err error
	if !g.stopped {
		g.stopped = true
		g.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-g.done:
		case <-time.After(gatewayStopTimeout):
			g.cmd.Process.Kill()
			<-g.done
			err = fmt.Errorf("the gateway %s did not stop within %s of SIGTERM: killed", g.path, gatewayStopTimeout)
		}
	}
	return errors.Join(err, os.RemoveAll(g.dir))
}

// binaryInfo is what the -gateway mode adds to the report: the gateway
// process's CPU in every half-round.
type binaryInfo struct {
	proc    *gatewayProcess
	rounds  []bench.ProcCPU // A1, B1, A2, B2, …
	logSize int64           // bytes of log it wrote
}

// run is bench.Run with the gateway process's CPU read around it. That CPU
// is the system under test's, not another process's: it moves from
// r.CPU.Others to r.CPU.Self, so that CPU/req A and the quiet/disturbed
// marking count it as the in-process mode counts its gateway.
func (bi *binaryInfo) run(ctx context.Context, o options, name string, ss []*bench.Session) (*bench.Result, error) {
	c0, err := bi.proc.cpu()
	if err != nil {
		return nil, err
	}
	r := bench.Run(ctx, name, ss, o.Duration, o.MaxOps)
	c1, err := bi.proc.cpu()
	if err != nil {
		return nil, err
	}
	d := c1.Sub(c0)
	bi.rounds = append(bi.rounds, d)
	if r.CPU.OK && r.Elapsed > 0 {
		cores := d.Total.Seconds() / r.Elapsed.Seconds()
		r.CPU.Self += cores
		r.CPU.Others = max(r.CPU.Others-cores, 0)
	}
	return r, nil
}

// total is the gateway's CPU in the half-rounds of target k (0 A, 1 B).
func (bi *binaryInfo) total(k int) bench.ProcCPU {
	var c bench.ProcCPU
	for i := k; i < len(bi.rounds); i += 2 {
		c = c.Add(bi.rounds[i])
	}
	return c
}

// perRequest is the gateway's CPU per request of round i's target k, or
// of all of target k's rounds when i < 0.
func (bi *binaryInfo) perRequest(rounds [][2]*bench.Result, i, k int) time.Duration {
	var cpu time.Duration
	var n int64
	for j, r := range rounds {
		if (i < 0 || i == j) && 2*j+k < len(bi.rounds) {
			cpu += bi.rounds[2*j+k].Total
			n += r[k].OK
		}
	}
	if n == 0 {
		return 0
	}
	return cpu / time.Duration(n)
}

// report prints the gateway process's CPU.
func (bi *binaryInfo) report(w io.Writer, rounds [][2]*bench.Result, a, b *bench.Result) {
	ta, tb := bi.total(0), bi.total(1)
	per := func(d time.Duration, n int64) string {
		if n == 0 {
			return "?"
		}
		return bench.FmtDur(d / time.Duration(n))
	}
	fmt.Fprintf(w, "- **mcpgate CPU per proxied request (the gateway process): %s**: the CPU time of the `mcpgate serve` process during the A rounds (its CPU-time clock: every thread, in ns) over their %d requests; user %s + system %s (/proc/PID/stat, 10 ms ticks). During the B rounds, with nothing to proxy, it took %s in all, %s per B request\n",
		bench.FmtDur(bi.perRequest(rounds, -1, 0)), a.OK, per(ta.User, a.OK), per(ta.System, a.OK), bench.FmtDur(tb.Total), per(tb.Total, b.OK))
	own := func(r *bench.Result, gw time.Duration) string {
		if !r.CPU.OK || r.OK == 0 {
			return "?"
		}
		return bench.FmtDur(r.CPUPerRequest() - gw/time.Duration(r.OK))
	}
	fmt.Fprintf(w, "- this process (load generator and go-sdk backend) per request: A %s, B %s; CPU/req A and B in the table add the gateway process's CPU, and the other processes' CPU leaves it out\n",
		own(a, ta.Total), own(b, tb.Total))
	fmt.Fprintf(w, "- the pprof-label estimate of mcpgate's CPU does not apply: the gateway is another process, measured whole (its runtime, GC and logging included)\n")
	fmt.Fprintf(w, "- the gateway's log: %.1f MB written to a file (deleted at the end)\n", float64(bi.logSize)/1e6)
}
