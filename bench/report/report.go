package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// Figure is one measured number: what (Name), how much (Value, in Unit)
// and under which configuration (Params).
type Figure struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	// Params are the configuration the figure was measured under. Values
	// are strings, integers, floats or booleans; JSON sorts the keys.
	Params map[string]any `json:"params"`
}

// P builds a Params map from key, value pairs.
func P(kv ...any) map[string]any {
	if len(kv)%2 != 0 {
		panic("report.P: odd number of arguments")
	}
	m := make(map[string]any, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

// NewFigure makes a figure, rounding value to Digits significant digits
// so that every file prints the same number.
func NewFigure(name string, value float64, unit string, params map[string]any) Figure {
	if params == nil {
		params = map[string]any{}
	}
	return Figure{Name: name, Value: Round(value), Unit: unit, Params: params}
}

// Digits is how many significant digits a figure keeps. Run-to-run noise
// is larger than the fifth digit of any figure here.
const Digits = 4

// Round rounds v to Digits significant digits. NaN and infinities, which
// JSON cannot hold, become 0.
func Round(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	if v == 0 {
		return 0
	}
	r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', Digits, 64), 64)
	return r
}

// FormatValue prints a figure's value as the Markdown shows it: the
// shortest form that reads back as the same float64, as JSON prints it.
func FormatValue(v float64) string {
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// Target is a goal a figure meets or misses.
type Target struct {
	What   string // "tasks placed per second at 100k nodes ≥ 50,000"
	Figure Figure // the figure it is judged on
	Met    bool
	Note   string // why it is missed, or what qualifies it
}

// Plot is one SVG file of a report.
type Plot struct {
	File  string // NAME-what.svg
	Title string
	// Draw writes the SVG.
	Draw func() ([]byte, error)
}

// Report is everything one benchmark measured. The four JSON fields are
// NAME.json; the rest only feed NAME.md.
type Report struct {
	Bench   string   `json:"bench"`
	Commit  string   `json:"commit"`
	Machine Machine  `json:"machine"`
	Figures []Figure `json:"figures"`

	// Title is one line saying what the benchmark measures.
	Title string `json:"-"`
	// Command is the command line that regenerates the report.
	Command string `json:"-"`
	// Headline lists the few figures a reader wants first, as Markdown
	// bullet text; index.md repeats them.
	Headline []string `json:"-"`
	Targets  []Target `json:"-"`
	Plots    []Plot   `json:"-"`
	// Notes are Markdown paragraphs after the tables: how it was
	// measured, what limits the figures.
	Notes []string `json:"-"`
	// Order lists figure names in the order their tables appear; names
	// not listed follow in order of first appearance.
	Order []string `json:"-"`
	// Columns orders the parameter columns of the tables; keys not listed
	// follow, sorted.
	Columns []string `json:"-"`
	// Samples are per-seed measurements behind figures that aggregate
	// several (medians): NAME.txt lists them, so benchstat sees the
	// spread. Figures with no sample of their name are listed as they are.
	Samples []Figure `json:"-"`
}

// GoBenchFigures is what NAME.txt and the command print as Go benchmark
// lines: every sample, then every figure no sample stands for.
func (r *Report) GoBenchFigures() []Figure {
	out := slices.Clone(r.Samples)
	for _, f := range r.Figures {
		if !slices.ContainsFunc(r.Samples, func(s Figure) bool { return s.Name == f.Name }) {
			out = append(out, f)
		}
	}
	return out
}

// Add appends a figure and returns it.
func (r *Report) Add(name string, value float64, unit string, params map[string]any) Figure {
	f := NewFigure(name, value, unit, params)
	r.Figures = append(r.Figures, f)
	return f
}

// Find returns the first figure called name whose params include every
// key and value of match.
func (r *Report) Find(name string, match map[string]any) (Figure, bool) {
	for _, f := range r.Figures {
		if f.Name != name {
			continue
		}
		ok := true
		for k, v := range match {
			if fmt.Sprint(f.Params[k]) != fmt.Sprint(v) {
				ok = false
				break
			}
		}
		if ok {
			return f, true
		}
	}
	return Figure{}, false
}

// JSON is NAME.json's content.
func (r *Report) JSON() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return nil, fmt.Errorf("report %s: %w", r.Bench, err)
	}
	return buf.Bytes(), nil
}

// Write writes NAME.json, NAME.md, NAME.txt and the plots into dir, then
// rewrites dir's index.md. It returns the files written.
func (r *Report) Write(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var files []string
	put := func(name string, data []byte) error {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return err
		}
		files = append(files, path)
		return nil
	}
	js, err := r.JSON()
	if err != nil {
		return nil, err
	}
	if err := put(r.Bench+".json", js); err != nil {
		return nil, err
	}
	for _, p := range r.Plots {
		svg, err := p.Draw()
		if err != nil {
			return nil, fmt.Errorf("report %s: plot %s: %w", r.Bench, p.File, err)
		}
		if err := put(p.File, svg); err != nil {
			return nil, err
		}
	}
	if err := put(r.Bench+".md", r.Markdown()); err != nil {
		return nil, err
	}
	var txt bytes.Buffer
	WriteGoBenchHeader(&txt, r.Machine)
	for _, f := range r.GoBenchFigures() {
		WriteGoBenchLine(&txt, r.Bench, f, r.Machine.GOMAXPROCS)
	}
	if err := put(r.Bench+".txt", txt.Bytes()); err != nil {
		return nil, err
	}
	if err := WriteIndex(dir); err != nil {
		return nil, err
	}
	return append(files, filepath.Join(dir, "index.md")), nil
}

// figureNames lists the report's figure names in table order.
func (r *Report) figureNames() []string {
	var names []string
	for _, n := range r.Order {
		if slices.ContainsFunc(r.Figures, func(f Figure) bool { return f.Name == n }) {
			names = append(names, n)
		}
	}
	for _, f := range r.Figures {
		if !slices.Contains(names, f.Name) {
			names = append(names, f.Name)
		}
	}
	return names
}
