//go:build !linux

package bench

import "errors"

// SampleCPU is only implemented on Linux; elsewhere samples are unusable.
func SampleCPU() CPUSample { return CPUSample{} }

// ProcessCPU is only implemented on Linux.
func ProcessCPU(pid int) (ProcCPU, error) {
	return ProcCPU{}, errors.New("reading another process's CPU time needs Linux")
}
