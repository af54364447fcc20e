package bench

import "time"

// CPUSample is a reading of the CPU time used so far by the whole machine
// and by this process, to tell how much CPU other processes took during a
// round: on a shared machine that, more than anything, moves the figures.
type CPUSample struct {
	machine, self time.Duration
	ok            bool
}

// CPUUse is the CPU used between two samples, in cores (1.0 = one core
// busy for the whole interval).
type CPUUse struct {
	Self, Others float64
	OK           bool
}

// CPUBetween computes the CPU use between from and to over wall.
func CPUBetween(from, to CPUSample, wall time.Duration) CPUUse {
	if !from.ok || !to.ok || wall <= 0 {
		return CPUUse{}
	}
	self := (to.self - from.self).Seconds() / wall.Seconds()
	others := (to.machine - from.machine - (to.self - from.self)).Seconds() / wall.Seconds()
	return CPUUse{Self: self, Others: max(others, 0), OK: true}
}

// ProcCPU is the CPU time another process has used, from ProcessCPU.
type ProcCPU struct {
	Total        time.Duration // every thread, in nanoseconds
	User, System time.Duration // the kernel's split, in 10 ms ticks
}

// Sub is the CPU used between an earlier reading x and c.
func (c ProcCPU) Sub(x ProcCPU) ProcCPU {
	return ProcCPU{Total: c.Total - x.Total, User: c.User - x.User, System: c.System - x.System}
}

// Add is the sum of c and x.
func (c ProcCPU) Add(x ProcCPU) ProcCPU {
	return ProcCPU{Total: c.Total + x.Total, User: c.User + x.User, System: c.System + x.System}
}
