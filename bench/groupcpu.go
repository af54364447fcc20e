package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// ChildrenCPU is the CPU time used so far by process pid and its live
// children (a PostgreSQL postmaster and its backends, which each lead a
// session of their own, so that a process group would miss them): the sum
// of their CPU-time clocks. A process that exited takes its time with it;
// a connection pool keeps its backends, so between two readings in a
// steady load that loses little.
func ChildrenCPU(pid int) (time.Duration, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	var total time.Duration
	found := false
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		// After the command name in parentheses: state, ppid.
		i := strings.LastIndex(string(b), ") ")
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+2:]))
		if p != pid && (len(f) < 2 || f[1] != strconv.Itoa(pid)) {
			continue
		}
		c, err := ProcessCPU(p)
		if err != nil {
			continue
		}
		total += c.Total
		found = true
	}
	if !found {
		return 0, fmt.Errorf("no process %d", pid)
	}
	return total, nil
}

// ProcessRSS is the resident set of process pid (VmRSS), in bytes.
func ProcessRSS(pid int) (int64, error) { return ProcessStatus(pid, "VmRSS") }

// ProcessStatus is a size field of /proc/PID/status (VmRSS, VmHWM…), in
// bytes.
func ProcessStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/%d/status: %s %q", pid, field, v)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, field)
}

// Pid is the postmaster's process ID.
func (s *PostgresServer) Pid() int { return s.cmd.Process.Pid }
