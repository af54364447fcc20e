package bench

import (
	"errors"
	"fmt"
	"time"

	"github.com/google/pprof/profile"
)

// CPUProfile is what a report needs from a CPU profile written by
// runtime/pprof: its samples with their pprof labels and stacks, so that
// CPU time can be split by the label of the goroutine that used it.
type CPUProfile struct {
	Samples []ProfileSample
	// Period is the sampling period (10 ms at the default 100 Hz).
	Period time.Duration
}

// ProfileSample is one stack with its labels and CPU time.
type ProfileSample struct {
	CPU    time.Duration
	Labels map[string]string // nil when the goroutine had none
	Stack  []string          // function names, leaf first, inlined frames included
}

// Has reports whether fn is one of the sample's frames.
func (s *ProfileSample) Has(fn string) bool {
	for _, f := range s.Stack {
		if f == fn {
			return true
		}
	}
	return false
}

// Total is the CPU time of every sample.
func (p *CPUProfile) Total() time.Duration {
	var t time.Duration
	for i := range p.Samples {
		t += p.Samples[i].CPU
	}
	return t
}

// Sum adds up the CPU time of the samples by the class that classify
// gives each.
func (p *CPUProfile) Sum(classify func(*ProfileSample) string) map[string]time.Duration {
	m := map[string]time.Duration{}
	for i := range p.Samples {
		s := &p.Samples[i]
		m[classify(s)] += s.CPU
	}
	return m
}

// ParseCPUProfile decodes a CPU profile as runtime/pprof writes it
// (gzipped profile.proto; plain protobuf is accepted too) with
// github.com/google/pprof/profile. The CPU time of a sample is its value
// in nanoseconds ("cpu"/"nanoseconds"), else its sample count times the
// period. A label with several values keeps the first (runtime/pprof
// writes one per key).
func ParseCPUProfile(data []byte) (*CPUProfile, error) {
	p, err := profile.ParseData(data)
	if err != nil {
		return nil, fmt.Errorf("decoding the profile: %w", err)
	}
	out := &CPUProfile{}
	if p.PeriodType != nil && p.PeriodType.Unit == "nanoseconds" {
		out.Period = time.Duration(p.Period)
	}
	cpuIdx, countIdx := -1, -1
	for i, t := range p.SampleType {
		switch t.Unit {
		case "nanoseconds":
			cpuIdx = i
		case "count":
			countIdx = i
		}
	}
	if cpuIdx < 0 && (countIdx < 0 || out.Period == 0) {
		return nil, errors.New("not a CPU profile: no nanoseconds sample value")
	}
	names := map[*profile.Location][]string{}
	for _, s := range p.Sample {
		ps := ProfileSample{}
		if cpuIdx >= 0 {
			ps.CPU = time.Duration(s.Value[cpuIdx])
		} else {
			ps.CPU = time.Duration(s.Value[countIdx]) * out.Period
		}
		for k, v := range s.Label {
			if len(v) == 0 {
				continue
			}
			if ps.Labels == nil {
				ps.Labels = map[string]string{}
			}
			ps.Labels[k] = v[0]
		}
		for _, loc := range s.Location {
			ns, ok := names[loc]
			if !ok {
				// Line[0] is the innermost of the functions inlined at
				// loc, as the stack is leaf first.
				for _, l := range loc.Line {
					if l.Function != nil {
						ns = append(ns, l.Function.Name)
					}
				}
				names[loc] = ns
			}
			ps.Stack = append(ps.Stack, ns...)
		}
		out.Samples = append(out.Samples, ps)
	}
	return out, nil
}
