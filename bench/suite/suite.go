// Package suite is the set of named benchmarks `swarmsim bench` runs —
// raft, scheduler, failover, scale and realwrites — at their full sizes
// or, for CI, at their smallest. Each turns what bench/raftbench,
// bench/schedbench, bench/failover, bench/scale and bench/realwrites
// measure into a report.Report: figures, targets, plots and notes.
// realwrites alone runs real managers (realnet/daemon) on a real disk.
//
// Simulations that must not share a process (failover trials, which run
// many simulations; scale sizes, whose peak memory must be measured
// clean) run in child processes when Options.Child is set (the command
// re-executes itself through ChildMain), and one after another in this
// process otherwise (the Go tests).
//
// What it must never do: report a figure it did not measure in this run,
// or judge a target on anything but the figure shown beside it.
package suite

import (
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"slices"
	"strings"

	"github.com/swarmsim/swarmsim/bench/report"
)

// Names lists the benchmarks in the order `swarmsim bench all` runs them.
var Names = []string{"raft", "scheduler", "failover", "scale", "realwrites"}

// Options are how benchmarks run.
type Options struct {
	// Quick runs every benchmark once at its smallest size (CI).
	Quick bool
	// Seeds repeats each measurement with seeds 1..Seeds (default 1). A
	// figure is the median over seeds (wall-clock rates) or the pooled
	// sample (virtual-time distributions); each seed prints its own Go
	// benchmark lines, so benchstat sees the spread.
	Seeds int
	// ScaleWorkers, when set, are the scale benchmark's sizes instead of
	// 1k, 10k, 50k and 100k workers.
	ScaleWorkers []int
	// Trials is the failover trials per setting (default 1000; Quick: 3).
	Trials int
	// Scenario is the failover benchmark's scenario file ("": the
	// built-in one).
	Scenario string
	// Jobs is how many child processes run at once (default: the number
	// of CPUs). Wall-clock benchmarks always run one at a time.
	Jobs int
	// Child makes the command that runs ChildMain with args; nil runs
	// everything in this process.
	Child func(args ...string) *exec.Cmd
	// Progress shows the work left; nil shows nothing.
	Progress *report.Progress
	// Command is the command line that regenerates a report, for its
	// page; NAME in it stands for the benchmark's name.
	Command string
	// Commit and Machine describe the run; zero values are filled in.
	Commit  string
	Machine report.Machine
	// OnReport, when set, hears each report as soon as its benchmark is
	// done (to write it before the next one starts); an error stops Run.
	OnReport func(*report.Report) error
}

func (o *Options) setDefaults() {
	if o.Seeds <= 0 {
		o.Seeds = 1
	}
	if o.Trials <= 0 {
		o.Trials = 1000
		if o.Quick {
			o.Trials = 3
		}
	}
	if o.Jobs <= 0 {
		o.Jobs = runtime.NumCPU()
	}
	if o.Progress == nil {
		o.Progress = report.NewPlainProgress(io.Discard)
	}
	if o.Commit == "" {
		o.Commit = report.Commit(".")
	}
	if o.Machine.GoVersion == "" {
		o.Machine = report.ThisMachine()
	}
}

// bench is one named benchmark: plan adds its work to the progress
// display, run measures and reports.
type bench struct {
	plan func(o *Options)
	run  func(o *Options) (*report.Report, error)
}

var benches = map[string]bench{
	"raft":       {planRaft, runRaft},
	"scheduler":  {planScheduler, runScheduler},
	"failover":   {planFailover, runFailover},
	"scale":      {planScale, runScale},
	"realwrites": {planRealWrites, runRealWrites},
}

// Expand turns command-line names into benchmark names: "all" is every
// benchmark; unknown names are an error naming the known ones.
func Expand(names []string) ([]string, error) {
	var out []string
	for _, n := range names {
		if n == "all" {
			for _, m := range Names {
				if !slices.Contains(out, m) {
					out = append(out, m)
				}
			}
			continue
		}
		if _, ok := benches[n]; !ok {
			return nil, fmt.Errorf("unknown benchmark %q (want %s or all)", n, strings.Join(Names, ", "))
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// Run runs the named benchmarks one after another and returns their
// reports, in order. The progress display learns all their work first.
func Run(names []string, opt Options) ([]*report.Report, error) {
	opt.setDefaults()
	names, err := Expand(names)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		benches[n].plan(&opt)
	}
	var out []*report.Report
	for _, n := range names {
		r, err := benches[n].run(&opt)
		if err != nil {
			return out, fmt.Errorf("bench %s: %w", n, err)
		}
		r.Bench, r.Commit, r.Machine = n, opt.Commit, opt.Machine
		if r.Command == "" && opt.Command != "" {
			r.Command = strings.ReplaceAll(opt.Command, "NAME", n)
		}
		out = append(out, r)
		if opt.OnReport != nil {
			if err := opt.OnReport(r); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// seeds lists the seeds of a run.
func (o *Options) seedList() []uint64 {
	s := make([]uint64, o.Seeds)
	for i := range s {
		s[i] = uint64(i + 1)
	}
	return s
}

// sizeName is a node count as reports print it: 1k, 10k, 100k.
func sizeName(n int) string {
	if n >= 1000 && n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

// sizeRange names the span of sizes a fit covers: "1k-100k".
func sizeRange(sizes []int) string {
	return sizeName(sizes[0]) + "-" + sizeName(sizes[len(sizes)-1])
}
