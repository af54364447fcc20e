package bench

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// CPUProfile is what a report needs from a CPU profile written by
// runtime/pprof: its samples with their pprof labels and stacks, so that
// CPU time can be split by the label of the goroutine that used it. It is
// decoded here (a few fields of profile.proto) rather than with
// github.com/google/pprof/profile, which the module does not require.
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
// (gzipped profile.proto; plain protobuf is accepted too). The CPU time of
// a sample is its "cpu"/"nanoseconds" value, else its sample count times
// the period.
func ParseCPUProfile(data []byte) (*CPUProfile, error) {
	if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, err
		}
		if data, err = io.ReadAll(zr); err != nil {
			return nil, err
		}
	}
	type rawSample struct {
		locs   []uint64
		values []int64
		labels [][2]int64 // key, str (string table indexes)
	}
	var (
		strs       []string
		types      [][2]int64 // sample_type: type, unit
		samples    []rawSample
		locFuncs   = map[uint64][]uint64{} // location id → function ids, leaf first
		funcNames  = map[uint64]int64{}    // function id → name index
		period     int64
		periodType [2]int64
	)
	err := eachField(data, func(num int, wire int, v uint64, b []byte) error {
		switch num {
		case 1: // sample_type
			var t [2]int64
			if err := eachField(b, func(n, _ int, v uint64, _ []byte) error {
				if n == 1 || n == 2 {
					t[n-1] = int64(v)
				}
				return nil
			}); err != nil {
				return err
			}
			types = append(types, t)
		case 2: // sample
			var s rawSample
			if err := eachField(b, func(n, w int, v uint64, b []byte) error {
				switch n {
				case 1:
					return varints(w, v, b, func(x uint64) { s.locs = append(s.locs, x) })
				case 2:
					return varints(w, v, b, func(x uint64) { s.values = append(s.values, int64(x)) })
				case 3:
					var l [2]int64
					if err := eachField(b, func(n, _ int, v uint64, _ []byte) error {
						if n == 1 || n == 2 {
							l[n-1] = int64(v)
						}
						return nil
					}); err != nil {
						return err
					}
					s.labels = append(s.labels, l)
				}
				return nil
			}); err != nil {
				return err
			}
			samples = append(samples, s)
		case 4: // location
			var id uint64
			var fns []uint64
			if err := eachField(b, func(n, _ int, v uint64, b []byte) error {
				switch n {
				case 1:
					id = v
				case 4: // line: function_id is field 1
					return eachField(b, func(n, _ int, v uint64, _ []byte) error {
						if n == 1 {
							fns = append(fns, v)
						}
						return nil
					})
				}
				return nil
			}); err != nil {
				return err
			}
			locFuncs[id] = fns
		case 5: // function
			var id uint64
			var name int64
			if err := eachField(b, func(n, _ int, v uint64, _ []byte) error {
				switch n {
				case 1:
					id = v
				case 2:
					name = int64(v)
				}
				return nil
			}); err != nil {
				return err
			}
			funcNames[id] = name
		case 6:
			strs = append(strs, string(b))
		case 11: // period_type
			return eachField(b, func(n, _ int, v uint64, _ []byte) error {
				if n == 1 || n == 2 {
					periodType[n-1] = int64(v)
				}
				return nil
			})
		case 12:
			period = int64(v)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("decoding the profile: %w", err)
	}
	str := func(i int64) string {
		if i < 0 || i >= int64(len(strs)) {
			return ""
		}
		return strs[i]
	}
	p := &CPUProfile{Period: time.Duration(period)}
	if str(periodType[1]) != "nanoseconds" {
		p.Period = 0
	}
	cpuIdx, countIdx := -1, -1
	for i, t := range types {
		switch {
		case str(t[1]) == "nanoseconds":
			cpuIdx = i
		case str(t[1]) == "count":
			countIdx = i
		}
	}
	if cpuIdx < 0 && (countIdx < 0 || p.Period == 0) {
		return nil, errors.New("not a CPU profile: no nanoseconds sample value")
	}
	names := map[uint64][]string{}
	for _, s := range samples {
		ps := ProfileSample{}
		switch {
		case cpuIdx >= 0 && cpuIdx < len(s.values):
			ps.CPU = time.Duration(s.values[cpuIdx])
		case countIdx >= 0 && countIdx < len(s.values):
			ps.CPU = time.Duration(s.values[countIdx]) * p.Period
		}
		for _, l := range s.labels {
			if ps.Labels == nil {
				ps.Labels = map[string]string{}
			}
			ps.Labels[str(l[0])] = str(l[1])
		}
		for _, loc := range s.locs {
			ns, ok := names[loc]
			if !ok {
				for _, f := range locFuncs[loc] {
					ns = append(ns, str(funcNames[f]))
				}
				names[loc] = ns
			}
			ps.Stack = append(ps.Stack, ns...)
		}
		p.Samples = append(p.Samples, ps)
	}
	return p, nil
}

// eachField calls f for every field of the protobuf message b: its number,
// wire type, value (varint and fixed types) or bytes (length-delimited).
func eachField(b []byte, f func(num, wire int, v uint64, b []byte) error) error {
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			return errors.New("bad field key")
		}
		b = b[n:]
		num, wire := int(key>>3), int(key&7)
		var v uint64
		var payload []byte
		switch wire {
		case 0:
			v, n = binary.Uvarint(b)
			if n <= 0 {
				return errors.New("bad varint")
			}
			b = b[n:]
		case 1:
			if len(b) < 8 {
				return errors.New("short fixed64")
			}
			v, b = binary.LittleEndian.Uint64(b), b[8:]
		case 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || l > uint64(len(b)-n) {
				return errors.New("bad length")
			}
			payload, b = b[n:n+int(l)], b[n+int(l):]
		case 5:
			if len(b) < 4 {
				return errors.New("short fixed32")
			}
			v, b = uint64(binary.LittleEndian.Uint32(b)), b[4:]
		default:
			return fmt.Errorf("unsupported wire type %d", wire)
		}
		if err := f(num, wire, v, payload); err != nil {
			return err
		}
	}
	return nil
}

// varints handles a repeated varint field, packed (wire type 2) or not.
func varints(wire int, v uint64, b []byte, add func(uint64)) error {
	if wire == 0 {
		add(v)
		return nil
	}
	if wire != 2 {
		return fmt.Errorf("repeated varint with wire type %d", wire)
	}
	for len(b) > 0 {
		x, n := binary.Uvarint(b)
		if n <= 0 {
			return errors.New("bad packed varint")
		}
		add(x)
		b = b[n:]
	}
	return nil
}
