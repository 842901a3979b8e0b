// Command swarmsim runs scenario files against a simulated (or real)
// swarm cluster, sweeps seeds, and runs benchmarks.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// exitError carries a process exit status out of a command without
// printing anything more: the command already said what went wrong.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	root := &cobra.Command{
		Use:           "swarmsim",
		Short:         "Run swarm orchestration scenarios in a deterministic simulator or on real nodes",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(runCmd(), sweepCmd(), benchCmd(), benchChildCmd())
	if err := root.Execute(); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "swarmsim:", err)
		os.Exit(2)
	}
}
