package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"
)

// Add accumulates x, a later round of the same load, into r: counts,
// elapsed time and latencies add up, CPU use is averaged over the elapsed
// times, and the first error is kept.
func (r *Result) Add(x *Result) {
	if r.Target == "" {
		r.Target, r.Conns = x.Target, x.Conns
	}
	r.CPU = AddCPU(r.CPU, x.CPU, r.Elapsed, x.Elapsed)
	r.OK += x.OK
	r.Errors += x.Errors
	r.Elapsed += x.Elapsed
	r.Latency.Merge(&x.Latency)
	if r.FirstError == "" {
		r.FirstError = x.FirstError
	}
}

// AddCPU averages CPU use over two consecutive intervals of wall time w1
// and w2.
func AddCPU(a, b CPUUse, w1, w2 time.Duration) CPUUse {
	if w1 <= 0 {
		return b
	}
	if !a.OK || !b.OK {
		return CPUUse{}
	}
	t := (w1 + w2).Seconds()
	return CPUUse{OK: true,
		Self:   (a.Self*w1.Seconds() + b.Self*w2.Seconds()) / t,
		Others: (a.Others*w1.Seconds() + b.Others*w2.Seconds()) / t}
}

// Quiet reports whether other processes took at most threshold cores
// during the run.
func (r *Result) Quiet(threshold float64) bool {
	return r.CPU.OK && r.CPU.Others <= threshold
}

// Ratio is a/b, 0 when b is 0.
func Ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// FmtDur formats a latency or a CPU time for a table: µs below 1 ms, ms
// with two decimals below 1 s.
func FmtDur(d time.Duration) string {
	neg := d < 0
	if neg {
		d = -d
	}
	var s string
	switch {
	case d < time.Millisecond:
		s = fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		s = fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	default:
		s = fmt.Sprintf("%.2f s", d.Seconds())
	}
	if neg {
		s = "−" + s
	}
	return s
}

// FmtCPU is the CPU other processes used, in cores.
func FmtCPU(c CPUUse) string {
	if !c.OK {
		return "?"
	}
	return fmt.Sprintf("%.2f", c.Others)
}

// CPUModel names the CPU and the number of CPUs, from /proc/cpuinfo.
func CPUModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return fmt.Sprintf("%s × %d", strings.TrimSpace(v), runtime.NumCPU())
		}
	}
	return runtime.GOARCH
}

// Serve serves h on a fresh loopback listener, configured as `mcpgate
// serve` configures its server, and returns its base URL and a shutdown
// function. Its goroutines carry the pprof label server=name.
func Serve(ctx context.Context, name string, h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	go pprof.Do(ctx, pprof.Labels("server", name), func(context.Context) { _ = srv.Serve(ln) })
	shutdown := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			srv.Close()
		}
	}
	return "http://" + ln.Addr().String(), shutdown, nil
}

// WriteAllocProfile writes the allocation profile to path.
func WriteAllocProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
