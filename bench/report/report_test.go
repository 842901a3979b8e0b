package report

import (
	"bytes"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func sample() *Report {
	r := &Report{Bench: "demo", Commit: "abc123", Machine: Machine{OS: "linux", Arch: "amd64", Cores: 2, GOMAXPROCS: 2, GoVersion: "go1.26"},
		Title: "a demonstration", Headline: []string{"fast"}}
	for _, n := range []int{1000, 10000, 100000} {
		r.Add("rate", 123456.789/float64(n)*1000, "ops/s", P("nodes", n, "mode", "plain"))
		r.Add("latency", 1.23456789*float64(n)/1000, "ms", P("nodes", n))
	}
	r.Targets = []Target{{What: "rate ≥ 1000", Figure: r.Figures[0], Met: true}}
	r.Plots = []Plot{withName(LinePlot("rate", "nodes", "ops/s", true, true,
		[]Series{{Name: "plain", X: []float64{1e3, 1e4, 1e5}, Y: []float64{3, 30, 300}}}, []PowerFit{{Exponent: 1, Coeff: 0.003}}), "demo-rate.svg"),
		withName(CDFPlot("cdf", "ms", true, []CDF{{Name: "a", Values: []float64{1, 2, 3, 10}}}), "demo-cdf.svg"),
		withName(BarPlot("bars", "ops/s", []string{"x", "y"}, []BarGroup{{Label: "g1", Values: []float64{1, 2}}, {Label: "g2", Values: []float64{3, 4}}}), "demo-bars.svg")}
	r.Samples = []Figure{NewFigure("rate", 1, "ops/s", P("nodes", 1000, "mode", "plain"))}
	return r
}

func withName(p Plot, f string) Plot { p.File = f; return p }

// TestWriteVerify writes a report and checks that its files agree: every
// JSON figure in the Markdown with the same printed value, the plots
// present, the index linking the page.
func TestWriteVerify(t *testing.T) {
	dir := t.TempDir()
	r := sample()
	if _, err := r.Write(dir); err != nil {
		t.Fatal(err)
	}
	if err := Verify(dir, "demo"); err != nil {
		t.Fatal(err)
	}
	svg, err := os.ReadFile(filepath.Join(dir, "demo-rate.svg"))
	if err != nil || !bytes.Contains(svg, []byte("<svg")) {
		t.Fatalf("plot: %v %.100s", err, svg)
	}
	idx, _ := os.ReadFile(filepath.Join(dir, "index.md"))
	if !strings.Contains(string(idx), "- fast") || !strings.Contains(string(idx), "demo-cdf.svg") {
		t.Fatalf("index:\n%s", idx)
	}
	txt, _ := os.ReadFile(filepath.Join(dir, "demo.txt"))
	if !strings.Contains(string(txt), "BenchmarkDemo/rate/mode=plain/nodes=1000-2 \t       1\t1 ops/s") ||
		!strings.Contains(string(txt), "BenchmarkDemo/latency/nodes=100000-2") {
		t.Fatalf("go bench lines:\n%s", txt)
	}

	// A Markdown value that differs from the JSON is caught.
	md, _ := os.ReadFile(filepath.Join(dir, "demo.md"))
	bad := strings.Replace(string(md), "| "+FormatValue(r.Figures[0].Value)+" |", "| 1 |", 1)
	os.WriteFile(filepath.Join(dir, "demo.md"), []byte(bad), 0o644)
	if err := Verify(dir, "demo"); err == nil {
		t.Fatal("a changed value passed")
	}
}

func TestRound(t *testing.T) {
	for _, c := range []struct{ in, want float64 }{{123456.789, 123500}, {0.00123456, 0.001235}, {math.NaN(), 0}, {0, 0}, {-2.34567, -2.346}} {
		if got := Round(c.in); got != c.want {
			t.Errorf("Round(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestFitPower(t *testing.T) {
	x := []float64{1e3, 1e4, 5e4, 1e5}
	y := make([]float64, len(x))
	for i := range x {
		y[i] = 2e-6 * math.Pow(x[i], 1.3)
	}
	f, err := FitPower(x, y)
	if err != nil || math.Abs(f.Exponent-1.3) > 1e-9 || math.Abs(f.Coeff-2e-6) > 1e-12 || f.R2 < 0.999999 {
		t.Fatalf("%+v %v", f, err)
	}
	if _, err := FitPower([]float64{1}, []float64{1}); err == nil {
		t.Fatal("one point fitted")
	}
}

func TestSummarize(t *testing.T) {
	var xs []float64
	for i := 100; i >= 1; i-- {
		xs = append(xs, float64(i))
	}
	s := Summarize(xs)
	if s.N != 100 || s.P50 != 50 || s.P99 != 99 || s.Max != 100 || s.Mean != 50.5 || xs[0] != 100 {
		t.Fatalf("%+v", s)
	}
}

func TestProgressPlain(t *testing.T) {
	var b bytes.Buffer
	p := NewPlainProgress(&b)
	p.Plan(4, 4)
	p.Stage("one")
	for range 4 {
		p.Done(1)
	}
	p.Finish()
	out := b.String()
	if strings.Contains(out, "\r") || !strings.Contains(out, "100% (4 of 4 jobs") || !strings.Contains(out, "4 jobs done") {
		t.Fatalf("%q", out)
	}
}

func TestCommitWithoutGit(t *testing.T) {
	if c := Commit(t.TempDir()); c != "unknown" {
		t.Fatalf("a directory outside any repository: %q", c)
	}
}

// A report being rewritten does not make the source dirty; a changed
// source file does.
func TestCommitIgnoresReports(t *testing.T) {
	dir := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Skipf("git %v: %v: %s", args, err, out)
		}
	}
	write := func(name, text string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git("init", "-q")
	write("main.go", "package main\n")
	write("reports/raft.md", "old\n")
	git("add", ".")
	git("commit", "-q", "-m", "x")
	write("reports/raft.md", "new\n")
	if c := Commit(dir); strings.HasSuffix(c, "-dirty") || c == "unknown" {
		t.Fatalf("only a report changed: %q", c)
	}
	write("main.go", "package main // changed\n")
	if c := Commit(dir); !strings.HasSuffix(c, "-dirty") {
		t.Fatalf("a source file changed: %q", c)
	}
}
