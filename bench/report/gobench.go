package report

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
)

// WriteGoBenchHeader writes the configuration lines `go test -bench`
// prints before its results; benchstat reads them.
func WriteGoBenchHeader(w io.Writer, m Machine) {
	fmt.Fprintf(w, "goos: %s\ngoarch: %s\npkg: github.com/swarmsim/swarmsim/bench\n", m.OS, m.Arch)
	if m.CPU != "" {
		fmt.Fprintf(w, "cpu: %s\n", m.CPU)
	}
}

// GoBenchName is a figure's name in Go benchmark form:
// BenchmarkBench/figure/key=value/...-GOMAXPROCS, keys sorted.
func GoBenchName(bench string, f Figure, procs int) string {
	var b strings.Builder
	b.WriteString("Benchmark")
	b.WriteString(title(bench))
	b.WriteString("/")
	b.WriteString(clean(f.Name))
	for _, k := range sortedKeys(f.Params, nil) {
		b.WriteString("/" + clean(k) + "=" + clean(formatParam(f.Params[k])))
	}
	if procs > 0 {
		b.WriteString("-" + strconv.Itoa(procs))
	}
	return b.String()
}

// WriteGoBenchLine writes one figure as a Go benchmark result line, one
// iteration with the figure as its metric, so that benchstat compares two
// runs figure by figure (several lines of one name are several samples).
func WriteGoBenchLine(w io.Writer, bench string, f Figure, procs int) {
	fmt.Fprintf(w, "%s \t       1\t%s %s\n", GoBenchName(bench, f, procs),
		strconv.FormatFloat(f.Value, 'g', -1, 64), strings.ReplaceAll(f.Unit, " ", "_"))
}

func title(s string) string {
	if s == "" {
		return s
	}
	r := []rune(s)
	r[0] = unicode.ToUpper(r[0])
	return clean(string(r))
}

// clean keeps a name part free of what would split it: spaces and
// slashes (a slash inside a value would start another sub-benchmark).
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case unicode.IsSpace(r):
			return '_'
		case r == '/':
			return ':'
		}
		return r
	}, s)
}
