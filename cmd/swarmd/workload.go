package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/swarmsim/swarmsim/realnet/docker"
)

// newWorkloadImageCmd builds the test workload's image into the local
// Docker daemon: a machine without a registry still has an image to run.
func newWorkloadImageCmd() *cobra.Command {
	var b docker.Behaviour
	cmd := &cobra.Command{
		Use:   "workload-image [TAG]",
		Short: "Build the test workload image (FROM scratch, no registry needed) into the local Docker",
		Long: `workload-image builds cmd/workload into an image FROM scratch and tags it
(default swarmsim/workload:latest). Run it inside the swarmsim source tree
(it runs go build), or set SWARMSIM_WORKLOAD_BINARY to a static build of
cmd/workload. The container runs until stopped; its health check is
` + "`/workload health`.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tag := "swarmsim/workload:latest"
			if len(args) == 1 {
				tag = args[0]
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Minute)
			defer cancel()
			cli, err := docker.Connect(ctx)
			if err != nil {
				return err
			}
			defer cli.Close()
			if err := docker.BuildWorkloadImage(ctx, cli, tag, b); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tag)
			return nil
		},
	}
	cmd.Flags().BoolVar(&b.FailAtStart, "fail-at-start", false, "the container exits 1 at once")
	cmd.Flags().DurationVar(&b.ExitAfter, "exit-after", 0, "the container exits on its own after this long")
	cmd.Flags().IntVar(&b.ExitCode, "exit-code", 0, "the code it exits with after --exit-after")
	cmd.Flags().BoolVar(&b.Unhealthy, "unhealthy", false, "every health check fails")
	return cmd
}
