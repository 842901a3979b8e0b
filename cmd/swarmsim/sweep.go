package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/swarmsim/swarmsim/scenarios"
)

func sweepCmd() *cobra.Command {
	var (
		seeds string
		jobs  int
	)
	cmd := &cobra.Command{
		Use:   "sweep FILE --seeds 1..N",
		Short: "Run one scenario under many seeds, in parallel, and list the seeds that fail",
		Long: `Run FILE once per seed, several child processes at a time (one simulation
per process: the simulator swaps crypto/rand.Reader process-wide). Each
failure is printed with the exact command that replays it. The exit status
is 1 when any seed failed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := args[0]
			if _, err := scenarios.ParseFile(file); err != nil {
				return err
			}
			list, err := scenarios.ParseSeeds(seeds)
			if err != nil {
				return err
			}
			self, err := os.Executable()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			failed := 0
			results, err := scenarios.Sweep(list, jobs, func(s string) *exec.Cmd {
				return exec.Command(self, "run", file, "--seeds", s, "--json")
			}, func(r scenarios.ResultJSON) {
				if !r.Passed {
					failed++
					fmt.Fprintf(out, "seed %d: FAIL: %s\n  replay: swarmsim run %s --seed %d\n", r.Seed, r.Failure, file, r.Seed)
				}
			})
			fmt.Fprintf(out, "sweep %s: %d seeds, %d passed, %d failed\n", file, len(results), len(results)-failed, failed)
			if err != nil {
				return err
			}
			if failed > 0 {
				return exitError{1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&seeds, "seeds", "1..100", "seeds to run: `LIST` such as 1..200 or 3,7,9")
	cmd.Flags().IntVar(&jobs, "jobs", runtime.NumCPU(), "child processes at once")
	return cmd
}
