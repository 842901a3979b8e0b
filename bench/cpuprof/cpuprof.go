// Package cpuprof says where a benchmark's CPU time goes: it records a Go
// CPU profile (runtime/pprof) while a function runs and attributes every
// sample to a stage — the first stage, walking the stack from the leaf
// towards the root, whose function-name pattern matches a frame. A sample
// in protobuf decoding under the store's Apply thus counts as "store
// apply", one in malloc under raft's Step as "etcd raft".
//
// It decodes the profile format (profile.proto, gzipped) itself, with
// protowire, to need no module beyond those the project has.
//
// What it must never do: run while another CPU profile is being taken
// (Record reports an error instead), or be used for figures that need the
// profiler's overhead absent (it slows what it measures a little).
package cpuprof

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"regexp"
	"runtime/pprof"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"
)

// Stage is a named part of the work, recognised by its function names.
type Stage struct {
	Name    string
	Pattern *regexp.Regexp
}

// Share is the CPU time attributed to one stage.
type Share struct {
	Stage   string  `json:"stage"`
	Seconds float64 `json:"seconds"`
	Percent float64 `json:"percent"`
}

// Other is the stage of samples no pattern matches.
const Other = "other"

// Record runs f under the CPU profiler and attributes its samples to
// stages, in the stages' order, with Other last. Seconds are CPU seconds
// sampled (every thread: the garbage collector's too).
func Record(stages []Stage, f func() error) ([]Share, error) {
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err != nil {
		return nil, fmt.Errorf("cpuprof: %w", err)
	}
	ferr := f()
	pprof.StopCPUProfile()
	if ferr != nil {
		return nil, ferr
	}
	return Attribute(buf.Bytes(), stages)
}

// Attribute reads a gzipped CPU profile and attributes its samples.
func Attribute(profile []byte, stages []Stage) ([]Share, error) {
	p, err := decode(profile)
	if err != nil {
		return nil, err
	}
	// Which stage each function belongs to, decided once per function.
	stageOf := map[uint64]int{}
	for id, name := range p.funcs {
		stageOf[id] = -1
		for i, s := range stages {
			if s.Pattern.MatchString(name) {
				stageOf[id] = i
				break
			}
		}
	}
	ns := make([]float64, len(stages)+1)
	total := 0.0
	for _, s := range p.samples {
		v := float64(s.nanos)
		total += v
		st := len(stages) // Other
	frames:
		for _, loc := range s.locs { // leaf first
			for _, fn := range p.locFuncs[loc] { // inlined frames, innermost first
				if i := stageOf[fn]; i >= 0 {
					st = i
					break frames
				}
			}
		}
		ns[st] += v
	}
	if total == 0 {
		return nil, errors.New("cpuprof: the profile holds no samples")
	}
	var out []Share
	for i, v := range ns {
		name := Other
		if i < len(stages) {
			name = stages[i].Name
		}
		out = append(out, Share{Stage: name, Seconds: v / 1e9, Percent: 100 * v / total})
	}
	return out, nil
}

type sample struct {
	locs  []uint64
	nanos int64
}

type profile struct {
	samples  []sample
	locFuncs map[uint64][]uint64 // location ID -> function IDs, innermost first
	funcs    map[uint64]string   // function ID -> name
}

// decode reads the parts of profile.proto this package needs: samples
// (location IDs and the CPU nanoseconds value), locations (their lines'
// functions) and functions (their names).
func decode(gz []byte) (*profile, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("cpuprof: %w", err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("cpuprof: %w", err)
	}
	p := &profile{locFuncs: map[uint64][]uint64{}, funcs: map[uint64]string{}}
	var strs []string
	funcName := map[uint64]int64{}
	valueIndex := -1
	var types []int64 // sample_type units, as string indexes
	var raw []struct {
		locs []uint64
		vals []int64
	}
	err = fields(data, func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error {
		switch num {
		case 1: // sample_type
			var unit int64
			_ = fields(b, func(n protowire.Number, _ protowire.Type, v uint64, _ []byte) error {
				if n == 2 {
					unit = int64(v)
				}
				return nil
			})
			types = append(types, unit)
		case 2: // sample
			var s struct {
				locs []uint64
				vals []int64
			}
			err := fields(b, func(n protowire.Number, t protowire.Type, v uint64, b []byte) error {
				switch n {
				case 1:
					s.locs = appendVarints(s.locs, t, v, b)
				case 2:
					for _, x := range appendVarints(nil, t, v, b) {
						s.vals = append(s.vals, int64(x))
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			raw = append(raw, s)
		case 4: // location
			var id uint64
			var fns []uint64
			err := fields(b, func(n protowire.Number, _ protowire.Type, v uint64, b []byte) error {
				switch n {
				case 1:
					id = v
				case 4: // line
					return fields(b, func(n protowire.Number, _ protowire.Type, v uint64, _ []byte) error {
						if n == 1 {
							fns = append(fns, v)
						}
						return nil
					})
				}
				return nil
			})
			if err != nil {
				return err
			}
			p.locFuncs[id] = fns
		case 5: // function
			var id uint64
			var name int64
			_ = fields(b, func(n protowire.Number, _ protowire.Type, v uint64, _ []byte) error {
				switch n {
				case 1:
					id = v
				case 2:
					name = int64(v)
				}
				return nil
			})
			funcName[id] = name
		case 6: // string_table
			strs = append(strs, string(b))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, u := range types {
		if u >= 0 && int(u) < len(strs) && strs[u] == "nanoseconds" {
			valueIndex = i
		}
	}
	if valueIndex < 0 {
		return nil, errors.New("cpuprof: the profile has no nanoseconds value")
	}
	for id, si := range funcName {
		if si >= 0 && int(si) < len(strs) {
			p.funcs[id] = strs[si]
		}
	}
	for _, s := range raw {
		if valueIndex < len(s.vals) {
			p.samples = append(p.samples, sample{locs: s.locs, nanos: s.vals[valueIndex]})
		}
	}
	slices.SortFunc(p.samples, func(a, b sample) int { return int(b.nanos - a.nanos) })
	return p, nil
}

// fields calls f for every field of a protobuf message: v holds a varint
// (or fixed) value, b a length-delimited one.
func fields(data []byte, f func(protowire.Number, protowire.Type, uint64, []byte) error) error {
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return fmt.Errorf("cpuprof: %w", protowire.ParseError(n))
		}
		data = data[n:]
		var v uint64
		var b []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(data)
		case protowire.BytesType:
			b, n = protowire.ConsumeBytes(data)
		case protowire.Fixed64Type:
			v, n = protowire.ConsumeFixed64(data)
		case protowire.Fixed32Type:
			var x uint32
			x, n = protowire.ConsumeFixed32(data)
			v = uint64(x)
		default:
			n = protowire.ConsumeFieldValue(num, typ, data)
		}
		if n < 0 {
			return fmt.Errorf("cpuprof: %w", protowire.ParseError(n))
		}
		data = data[n:]
		if err := f(num, typ, v, b); err != nil {
			return err
		}
	}
	return nil
}

// appendVarints appends a repeated integer field's values, packed or not.
func appendVarints(dst []uint64, t protowire.Type, v uint64, b []byte) []uint64 {
	if t == protowire.VarintType {
		return append(dst, v)
	}
	for len(b) > 0 {
		x, n := protowire.ConsumeVarint(b)
		if n < 0 {
			break
		}
		dst = append(dst, x)
		b = b[n:]
	}
	return dst
}
