package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/swarmsim/swarmsim/scenarios"
)

type runFlags struct {
	seed    uint64
	seedSet bool
	seeds   string
	junit   string
	trace   string
	metrics string
	every   time.Duration
	real    bool
	json    bool
	quiet   bool
	cpuprof string
	log     string
}

func runCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run FILE...",
		Short: "Run scenario files and check their expectations and invariants",
		Long: `Run each scenario file in the simulator: one line per step as it happens,
then a summary with the trace hash. With --real, run it against swarmd
containers on the local Docker instead, in wall-clock time (files that use
steps real mode cannot do are refused, each use named, before anything
starts). The exit status is 0 only when every
expectation and invariant held in every file, 1 when one failed, 2 when a
file could not be run at all.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.seedSet = cmd.Flags().Changed("seed")
			return runFiles(cmd.OutOrStdout(), args, f)
		},
	}
	cmd.Flags().Uint64Var(&f.seed, "seed", 0, "seed for every file (default: each file's own seed)")
	cmd.Flags().StringVar(&f.seeds, "seeds", "", "run each file once per seed: `LIST` such as 1..20 or 3,7,9")
	cmd.Flags().StringVar(&f.junit, "junit", "", "write JUnit XML results to `FILE`")
	cmd.Flags().StringVar(&f.trace, "trace", "", "write the event trace to `FILE` (one file: the last scenario's trace wins if several run)")
	cmd.Flags().StringVar(&f.metrics, "metrics", "", "write metric samples in virtual time to `FILE` (OpenMetrics text; one scenario and one seed)")
	cmd.Flags().DurationVar(&f.every, "metrics-interval", 0, "virtual time between metric samples (default 1s; larger for big clusters)")
	cmd.Flags().BoolVar(&f.real, "real", false, "run against real swarmd containers on Docker instead of the simulator")
	cmd.Flags().BoolVar(&f.json, "json", false, "print one JSON result per file instead of text (for sweeps)")
	cmd.Flags().BoolVar(&f.quiet, "quiet", false, "print only the summaries")
	cmd.Flags().StringVar(&f.log, "log", "", "write the nodes' logs, stamped with virtual time, to `FILE`")
	cmd.Flags().StringVar(&f.cpuprof, "cpuprofile", "", "write a Go CPU profile of the run to `FILE`")
	return cmd
}

func runFiles(stdout io.Writer, files []string, f runFlags) error {
	// Unbuffered: a long run shows each step as it happens.
	out := stdout
	if f.cpuprof != "" {
		pf, err := os.Create(f.cpuprof)
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	var seeds []uint64
	switch {
	case f.seeds != "" && f.seedSet:
		return fmt.Errorf("--seed and --seeds exclude each other")
	case f.seeds != "":
		var err error
		if seeds, err = scenarios.ParseSeeds(f.seeds); err != nil {
			return err
		}
	case f.seedSet:
		seeds = []uint64{f.seed}
	default:
		seeds = []uint64{0} // 0: the file's own seed
	}

	var trace io.Writer
	if f.trace != "" {
		tf, err := os.Create(f.trace)
		if err != nil {
			return err
		}
		defer tf.Close()
		bw := bufio.NewWriterSize(tf, 1<<20)
		defer bw.Flush()
		trace = bw
	}
	var logw io.Writer
	if f.log != "" {
		lf, err := os.Create(f.log)
		if err != nil {
			return err
		}
		defer lf.Close()
		logw = lf // unbuffered: a run that hangs or is killed keeps its log
	}
	var metrics io.Writer
	if f.metrics != "" && (len(files) > 1 || len(seeds) > 1) {
		// One OpenMetrics document per file: several runs cannot share one.
		return fmt.Errorf("--metrics writes one run: give one scenario file and at most one seed")
	}
	if f.metrics != "" {
		mf, err := os.Create(f.metrics)
		if err != nil {
			return err
		}
		defer mf.Close()
		bw := bufio.NewWriterSize(mf, 1<<20)
		defer bw.Flush()
		metrics = bw
	}

	if f.real {
		// Real mode refuses every step it cannot do, in every file, before
		// it starts anything.
		refused := 0
		for _, file := range files {
			sc, err := scenarios.ParseFile(file)
			if err != nil {
				continue // reported below
			}
			for _, err := range scenarios.RealSupport(sc) {
				fmt.Fprintln(out, err)
				refused++
			}
		}
		if refused > 0 {
			fmt.Fprintf(out, "scenarios: nothing run: %d uses of what --real cannot do\n", refused)
			return exitError{2}
		}
		if f.trace != "" || f.metrics != "" {
			return fmt.Errorf("--trace and --metrics are for the simulator: a real run has no event trace or virtual-time samples")
		}
		// Interrupted, a real run removes what it created before exiting.
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(sig)
		go func() {
			if _, ok := <-sig; !ok {
				return
			}
			fmt.Fprintln(os.Stderr, "swarmsim: interrupted: removing the run's containers, networks and images")
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := scenarios.AbortReal(ctx); err != nil {
				fmt.Fprintln(os.Stderr, "swarmsim:", err)
			}
			os.Exit(130)
		}()
	}

	var results []*scenarios.Result
	passed, failed, broken := 0, 0, 0
	for _, file := range files {
		sc, err := scenarios.ParseFile(file)
		if err != nil {
			fmt.Fprintln(out, err)
			broken++
			continue
		}
		for _, seed := range seeds {
			opt := scenarios.Options{Trace: trace, Metrics: metrics, MetricsInterval: f.every, Log: logw}
			if !f.quiet && !f.json {
				opt.Out = out
			}
			run := sc
			if f.seedSet || f.seeds != "" {
				opt.Seed = &seed
				run = sc.WithSeed(seed) // the header and summary say which seed ran
			}
			if !f.json {
				fmt.Fprintf(out, "scenario %s\n", run.Summary())
			}
			var res *scenarios.Result
			if f.real {
				res, err = scenarios.RunReal(run, opt)
			} else {
				res, err = scenarios.RunSimulation(run, opt)
			}
			if err != nil {
				fmt.Fprintf(out, "%s: %v\n", file, err)
				broken++
				continue
			}
			results = append(results, res)
			if res.Passed {
				passed++
			} else {
				failed++
			}
			if f.json {
				if err := json.NewEncoder(out).Encode(res.JSON()); err != nil {
					return err
				}
			} else {
				scenarios.WriteSummary(out, res)
			}
		}
	}
	if f.junit != "" {
		if err := writeJUnit(f.junit, results); err != nil {
			return err
		}
	}
	if !f.json {
		fmt.Fprintf(out, "scenarios: %d passed, %d failed", passed, failed+broken)
		if broken > 0 {
			fmt.Fprintf(out, " (%d could not run)", broken)
		}
		fmt.Fprintln(out)
	}
	switch {
	case broken > 0:
		return exitError{2}
	case failed > 0:
		return exitError{1}
	}
	return nil
}

func writeJUnit(path string, results []*scenarios.Result) error {
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := scenarios.WriteJUnit(fh, "swarmsim", results); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}
