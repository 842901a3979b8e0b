package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/swarmsim/swarmsim/bench/report"
	"github.com/swarmsim/swarmsim/bench/suite"
)

type benchFlags struct {
	out      string
	seeds    int
	quick    bool
	trials   int
	scenario string
	jobs     int
	workers  []int
}

func benchCmd() *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "bench NAME... [--out DIR] [--seeds N]",
		Short: "Run named benchmarks and write their reports (JSON, Markdown, SVG plots)",
		Long: `Run the named benchmarks (` + strings.Join(suite.Names, ", ") + `, or all) and write, for each
NAME, DIR/NAME.json (its figures, with the machine and commit), DIR/NAME.md (the
same figures as tables, its targets, plots and method), DIR/NAME.txt (Go
benchmark lines) and SVG plots, then DIR/index.md linking every report in DIR.

Go benchmark format lines go to standard output as each benchmark finishes, so
benchstat can compare two runs: swarmsim bench raft > old.txt; ...;
benchstat old.txt new.txt. Progress goes to standard error: a bar on a terminal,
plain lines otherwise.

  raft       committed writes/s and commit latency through the store path on 3
             and 5 managers, batched and unbatched, links of 0.1, 1 and 10ms,
             beside raw raft RawNodes
  scheduler  tasks placed per second at 1k, 10k and 100k nodes (10 tasks per
             node), plain, with constraints and with spread; growth exponent
  failover   leader crash → a new leader accepts writes (5 managers, 1ms ticks,
             election timeouts 12, 24, 50, 150ms; --trials each), and worker
             crash → its tasks run elsewhere; --scenario sets the cluster
  scale      wall time, events/s, virtual/wall ratio and peak memory of 10
             virtual minutes at 1k, 10k, 50k and 100k workers; growth fit

--quick runs each at its smallest size (what CI runs, through go test).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, n := range f.workers {
				if n < 1 {
					return fmt.Errorf("--scale-workers: %d: a worker count must be at least 1", n)
				}
			}
			return runBench(cmd.OutOrStdout(), args, f)
		},
	}
	cmd.Flags().StringVar(&f.out, "out", "reports", "write the reports into `DIR`")
	cmd.Flags().IntVar(&f.seeds, "seeds", 1, "repeat every measurement with seeds 1..`N`; figures are medians (rates) or pooled samples (latencies)")
	cmd.Flags().BoolVar(&f.quick, "quick", false, "run each benchmark once at its smallest size")
	cmd.Flags().IntVar(&f.trials, "trials", 0, "failover trials per setting (default 1000; 3 with --quick)")
	cmd.Flags().StringVar(&f.scenario, "scenario", "", "failover: take the cluster from scenario `FILE` (default: the built-in one)")
	cmd.Flags().IntVar(&f.jobs, "jobs", runtime.NumCPU(), "failover: child processes at once")
	cmd.Flags().IntSliceVar(&f.workers, "scale-workers", nil, "scale: simulate these worker counts (default 1000,10000,50000,100000)")
	return cmd
}

// benchChildCmd is the other end of the benchmarks' child processes: it
// runs one job (failover trials, one scale size) and prints JSON lines.
func benchChildCmd() *cobra.Command {
	return &cobra.Command{
		Use:                "bench-child JOB [FLAGS]",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return suite.ChildMain(args, cmd.OutOrStdout())
		},
	}
}

func runBench(stdout io.Writer, args []string, f benchFlags) error {
	names, err := suite.Expand(args)
	if err != nil {
		return err
	}
	if f.seeds < 1 {
		return fmt.Errorf("--seeds %d: need at least 1", f.seeds)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	command := "swarmsim bench NAME --out " + f.out
	if f.quick {
		command += " --quick"
	}
	if f.seeds > 1 {
		command += fmt.Sprintf(" --seeds %d", f.seeds)
	}
	if f.trials > 0 {
		command += fmt.Sprintf(" --trials %d", f.trials)
	}
	if f.scenario != "" {
		command += " --scenario " + f.scenario
	}
	if len(f.workers) > 0 {
		ns := make([]string, len(f.workers))
		for i, n := range f.workers {
			ns[i] = strconv.Itoa(n)
		}
		command += " --scale-workers " + strings.Join(ns, ",")
	}
	progress := report.NewProgress(os.Stderr)
	machine := report.ThisMachine()
	report.WriteGoBenchHeader(stdout, machine)
	var missed []string
	opt := suite.Options{
		Quick:        f.quick,
		Seeds:        f.seeds,
		Trials:       f.trials,
		Scenario:     f.scenario,
		ScaleWorkers: f.workers,
		Jobs:         f.jobs,
		Progress:     progress,
		Command:      command,
		Machine:      machine,
		Child: func(args ...string) *exec.Cmd {
			return exec.Command(self, append([]string{"bench-child"}, args...)...)
		},
		OnReport: func(r *report.Report) error {
			for _, fig := range r.GoBenchFigures() {
				report.WriteGoBenchLine(stdout, r.Bench, fig, machine.GOMAXPROCS)
			}
			if _, err := r.Write(f.out); err != nil {
				return err
			}
			if err := report.Verify(f.out, r.Bench); err != nil {
				return fmt.Errorf("the report just written does not check out: %w", err)
			}
			progress.Printf("bench %s: wrote %s/%s.md, .json, .txt and %d plots\n", r.Bench, f.out, r.Bench, len(r.Plots))
			for _, t := range r.Targets {
				if !t.Met {
					missed = append(missed, fmt.Sprintf("%s: %s: %s %s", r.Bench, t.What, report.FormatValue(t.Figure.Value), t.Figure.Unit))
				}
			}
			return nil
		},
	}
	_, err = suite.Run(names, opt)
	progress.Finish()
	for _, m := range missed {
		fmt.Fprintf(os.Stderr, "bench: target missed: %s\n", m)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: reports in %s (%s)\n", f.out, f.out+"/index.md")
	return nil
}
