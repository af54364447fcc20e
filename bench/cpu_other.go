//go:build !linux

package bench

// SampleCPU is only implemented on Linux; elsewhere samples are unusable.
func SampleCPU() CPUSample { return CPUSample{} }
