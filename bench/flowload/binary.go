package main

// -gateway PATH: the replicas are `PATH serve` processes on the
// PostgreSQL database, so that each one's memory is a process's RSS.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mcpgate/mcpgate/bench"
)

const (
	gatewayStartTimeout = 60 * time.Second
	gatewayStopTimeout  = 10 * time.Second // from SIGTERM to SIGKILL
)

// gatewayProcess is one running `mcpgate serve`.
type gatewayProcess struct {
	base    string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
}

// startBinaries starts n `path serve` processes on dsn, one after the
// other, each on a free loopback port, with the harness's local user and
// one --data-dir: the first creates its secret.key, the others read it, so
// that all of them share the secret key. The data directory holds no
// database (the store is dsn) and their logs.
func startBinaries(ctx context.Context, path, dsn string, n int, logFormat string) (procs []*gatewayProcess, stopAll func(), err error) {
	if path, err = filepath.Abs(path); err != nil {
		return nil, func() {}, err
	}
	dir, err := os.MkdirTemp("", "flowload-gateways-")
	if err != nil {
		return nil, func() {}, err
	}
	stopAll = func() {
		for _, g := range procs {
			g.stop()
		}
		os.RemoveAll(dir)
	}
	if logFormat == "discard" {
		logFormat = "text"
	}
	for i := range n {
		g, err := startBinary(ctx, path, dsn, dir, i, logFormat)
		if err != nil {
			stopAll()
			return nil, func() {}, err
		}
		procs = append(procs, g)
	}
	return procs, stopAll, nil
}

func startBinary(ctx context.Context, path, dsn, dir string, i int, logFormat string) (*gatewayProcess, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	g := &gatewayProcess{base: "http://127.0.0.1:" + port, logPath: filepath.Join(dir, fmt.Sprintf("mcpgate-%d.log", i+1)), done: make(chan struct{})}
	logFile, err := os.Create(g.logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own descriptor
	g.cmd = exec.Command(path, "serve", "--listen", "127.0.0.1:"+port, "--data-dir", dir, "--store", dsn,
		"--local-user", user+":"+password, "--log-format", logFormat)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MCPGATE_") {
			g.cmd.Env = append(g.cmd.Env, kv)
		}
	}
	g.cmd.Stdout, g.cmd.Stderr = logFile, logFile
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := g.cmd.Start(); err != nil {
		return nil, fmt.Errorf("-gateway: %w", err)
	}
	go func() {
		g.waitErr = g.cmd.Wait()
		close(g.done)
	}()
	if err := g.waitReady(ctx); err != nil {
		g.stop()
		log, _ := os.ReadFile(g.logPath)
		return nil, fmt.Errorf("-gateway: replica %d: %w\n%s", i+1, err, bench.Snippet(log))
	}
	return g, nil
}

// waitReady polls /healthz until it answers 200, the process exits, or
// gatewayStartTimeout passes.
func (g *gatewayProcess) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, gatewayStartTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
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
			return fmt.Errorf("exited before answering (%v)", g.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("no answer at %s/healthz within %s", g.base, gatewayStartTimeout)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (g *gatewayProcess) stop() {
	g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.done:
	case <-time.After(gatewayStopTimeout):
		g.cmd.Process.Kill()
		<-g.done
	}
}

// binariesCPU is the CPU the gateway processes have used so far, or -1.
func binariesCPU(procs []*gatewayProcess) time.Duration {
	var total time.Duration
	for _, g := range procs {
		c, err := bench.ProcessCPU(g.cmd.Process.Pid)
		if err != nil {
			return -1
		}
		total += c.Total
	}
	return total
}

// binariesMemory is each gateway process's resident set now and at its
// peak (VmRSS, VmHWM).
func binariesMemory(procs []*gatewayProcess) (string, error) {
	var parts []string
	for i, g := range procs {
		rss, err1 := bench.ProcessStatus(g.cmd.Process.Pid, "VmRSS")
		hwm, err2 := bench.ProcessStatus(g.cmd.Process.Pid, "VmHWM")
		if err := errors.Join(err1, err2); err != nil {
			return "", err
		}
		parts = append(parts, fmt.Sprintf("replica %d (pid %d): RSS %.1f MB, peak %.1f MB", i+1, g.cmd.Process.Pid, float64(rss)/1e6, float64(hwm)/1e6))
	}
	return strings.Join(parts, "; "), nil
}
