//go:build linux

package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// SampleCPU reads /proc/stat and this process's rusage. Where /proc/stat
// cannot be read, the sample is marked unusable.
func SampleCPU() CPUSample {
	var s CPUSample
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return s
	}
	s.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return s
	}
	// user nice system idle iowait irq softirq steal: all but idle and
	// iowait are busy. USER_HZ is 100 on every Linux ABI Go supports.
	var busy int64
	for i, v := range f[1:min(len(f), 9)] {
		if i == 3 || i == 4 {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return s
		}
		busy += n
	}
	s.machine = time.Duration(busy) * 10 * time.Millisecond
	s.ok = true
	return s
}

// ProcessCPU reads the CPU time process pid has used so far. Total is its
// process CPU-time clock (clock_gettime of clock_getcpuclockid(pid)): every
// thread, exited ones included, in nanoseconds. /proc/PID/schedstat would
// give nanoseconds too, but of the main thread only, which for a Go
// program is a fraction of its work. User and System come from
// /proc/PID/stat, in clock ticks (USER_HZ, 100 on every Linux ABI Go
// supports), as ps and top show them.
func ProcessCPU(pid int) (ProcCPU, error) {
	var c ProcCPU
	// clock_getcpuclockid(3): a process's CPU-time clock is
	// (~pid << 3) | CPUCLOCK_SCHED (2), the kernel's encoding.
	var ts unix.Timespec
	if err := unix.ClockGettime(int32(^pid<<3|2), &ts); err != nil {
		return c, fmt.Errorf("CPU-time clock of process %d: %w", pid, err)
	}
	c.Total = time.Duration(ts.Nano())
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return c, err
	}
	// The command name, field 2, is in parentheses and may hold spaces;
	// utime and stime are fields 14 and 15.
	var f []string
	if i := strings.LastIndex(string(b), ") "); i >= 0 {
		f = strings.Fields(string(b[i+2:]))
	}
	if len(f) < 13 {
		return c, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return c, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	c.User, c.System = time.Duration(ut)*10*time.Millisecond, time.Duration(st)*10*time.Millisecond
	return c, nil
}
