// Command swarmd is the swarmsim daemon and its client.
//
// Daemon:
//
//	swarmd init --listen 127.0.0.1:4242 --data-dir DIR     start a new cluster (first manager)
//	swarmd join --token TOKEN --listen ADDR --data-dir DIR MANAGER_ADDR
//	swarmd --data-dir DIR                                   resume the node a data directory holds
//
// Client (talks to the daemon of --data-dir over its owner-only socket,
// DATA_DIR/swarmd.sock, or to --host with a client certificate):
//
//	swarmd service create|ls|ps|inspect|scale|update|rollback|rm
//	swarmd node ls|inspect|promote|demote|update|rm
//	swarmd secret|config create|ls|inspect|rm
//	swarmd status | join-token [--rotate] worker|manager | leave [--force]
//	swarmd swarm update --autolock=true|false | swarm rotate-data-key | swarm ca --rotate
//	swarmd unlock-key [--rotate] | unlock
//
// Every client command takes --format json. Exit codes are stable: 0
// success, 1 the request failed, 2 bad usage, 3 the daemon could not be
// reached (or did not answer in time), 4 the object was not found.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitUnreachable = 3
	exitNotFound    = 4
)

// usageError marks an error as bad usage (exit 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

func main() {
	root := newRoot()
	err := root.Execute()
	os.Exit(exitCode(err))
}

func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(os.Stderr, "swarmd:", errorText(err))
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	if st, ok := status.FromError(unwrapStatus(err)); ok {
		switch st.Code() {
		case codes.Unavailable, codes.DeadlineExceeded:
			return exitUnreachable
		case codes.NotFound:
			return exitNotFound
		}
	}
	return exitFailed
}

// unwrapStatus finds a gRPC status error inside err.
func unwrapStatus(err error) error {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if _, ok := status.FromError(e); ok {
			return e
		}
	}
	return err
}

// errorText shows a gRPC error by its message only.
func errorText(err error) string {
	if st, ok := status.FromError(err); ok {
		return st.Message()
	}
	return err.Error()
}

func newRoot() *cobra.Command {
	var df daemonFlags
	root := &cobra.Command{
		Use:   "swarmd",
		Short: "The swarmsim daemon and its client",
		Long: `swarmd runs a swarmsim node (init, join, or --data-dir to resume one) and
talks to a running cluster (service, node, secret, config, status...).

Exit codes: 0 success, 1 the request failed, 2 bad usage, 3 the daemon could
not be reached, 4 not found.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if df.dataDir == "" {
				return usageError{errors.New("nothing to do: give --data-dir to resume a node, or a command (see swarmd --help)")}
			}
			return runDaemon(cmd, &df, modeResume)
		},
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	df.register(root)
	root.AddCommand(
		newInitCmd(), newJoinCmd(),
		newServiceCmd(), newNodeCmd(), newSecretCmd(), newConfigCmd(),
		newStatusCmd(), newJoinTokenCmd(), newLeaveCmd(), newWorkloadImageCmd(),
		newSwarmCmd(), newUnlockKeyCmd(), newUnlockCmd(),
	)
	return root
}
