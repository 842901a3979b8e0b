package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/realnet"
	"github.com/swarmsim/swarmsim/realnet/daemon"
	"github.com/swarmsim/swarmsim/realnet/rpc"
)

// clientFlags are every client command's flags.
type clientFlags struct {
	host, dataDir          string
	format                 string
	timeout                time.Duration
	tlsCert, tlsKey, tlsCA string
}

func defaultHost() string {
	if h := os.Getenv("SWARMD_HOST"); h != "" {
		return h
	}
	return "127.0.0.1:4242"
}

func (f *clientFlags) register(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.StringVarP(&f.host, "host", "H", defaultHost(), "daemon to talk to: host:port (needs a client certificate: --tls-*), or unix:///DATA_DIR/swarmd.sock ($SWARMD_HOST)")
	pf.StringVarP(&f.dataDir, "data-dir", "D", os.Getenv("SWARMD_DATA_DIR"), "talk to the daemon of this data directory, on this machine, over its owner-only socket ($SWARMD_DATA_DIR; the usual way)")
	pf.StringVar(&f.format, "format", "table", "output format: table or json")
	pf.DurationVar(&f.timeout, "timeout", 15*time.Second, "how long to wait for the daemon")
	pf.StringVar(&f.tlsCert, "tls-cert", "", "client certificate (PEM), for a daemon with TLS")
	pf.StringVar(&f.tlsKey, "tls-key", "", "client private key (PEM)")
	pf.StringVar(&f.tlsCA, "tls-ca", "", "cluster CA certificate (PEM)")
}

// client is one command's connection to a daemon.
type client struct {
	flags   *clientFlags
	conn    *grpc.ClientConn
	control rpc.ControlClient
	daemon  rpc.DaemonClient
	out     io.Writer
	errOut  io.Writer
}

func (f *clientFlags) dial(cmd *cobra.Command) (*client, context.Context, func(), error) {
	if f.format != "table" && f.format != "json" {
		return nil, nil, nil, usagef("--format %q: want table or json", f.format)
	}
	tc, err := loadTLS(f.tlsCert, f.tlsKey, f.tlsCA)
	if err != nil {
		return nil, nil, nil, err
	}
	target, err := f.target(cmd)
	if err != nil {
		return nil, nil, nil, err
	}
	conn, err := grpc.NewClient(target, realnet.DialOptions(tc, 0)...)
	if err != nil {
		return nil, nil, nil, usagef("--host %q: %v", target, err)
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
	c := &client{flags: f, conn: conn, control: rpc.NewControlClient(conn), daemon: rpc.NewDaemonClient(conn), out: cmd.OutOrStdout(), errOut: cmd.ErrOrStderr()}
	return c, ctx, func() { cancel(); conn.Close() }, nil
}

// target is where the command connects: the data directory's socket
// when --data-dir (or $SWARMD_DATA_DIR) is given and --host is not,
// else --host.
func (f *clientFlags) target(cmd *cobra.Command) (string, error) {
	hostSet, dirSet := cmd.Flags().Changed("host"), cmd.Flags().Changed("data-dir")
	switch {
	case hostSet && dirSet:
		return "", usagef("give --host or --data-dir, not both")
	case hostSet || f.dataDir == "":
		return f.host, nil
	}
	abs, err := filepath.Abs(daemon.SocketPath(f.dataDir))
	if err != nil {
		return "", usagef("--data-dir %q: %v", f.dataDir, err)
	}
	return "unix://" + abs, nil
}

// withClient wraps a command's body with a connection.
func withClient(f *clientFlags, body func(ctx context.Context, c *client, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, ctx, done, err := f.dial(cmd)
		if err != nil {
			return err
		}
		defer done()
		err = body(ctx, c, args)
		if code := status.Code(unwrapStatus(err)); err != nil && !strings.HasPrefix(c.conn.Target(), "unix:") &&
			f.tlsCert == "" && (code == codes.Unavailable || code == codes.PermissionDenied) {
			// Without a certificate the network port answers nothing.
			return fmt.Errorf("%w (the network port wants a client certificate: on the node's machine, use --data-dir DATA_DIR)", err)
		}
		return err
	}
}

func (c *client) json() bool { return c.flags.format == "json" }

// table writes rows under a header, tab-aligned.
func (c *client) table(header []string, rows [][]string) {
	w := tabwriter.NewWriter(c.out, 0, 4, 3, ' ', 0)
	fmt.Fprintln(w, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(w, strings.Join(r, "\t"))
	}
	w.Flush()
}

// jsonLines writes one JSON object per line, as docker's --format json.
func (c *client) jsonLines(rows []any) error {
	enc := json.NewEncoder(c.out)
	for _, r := range rows {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}

// inspect writes objects as one indented JSON array (docker inspect's
// shape), each object in protobuf's JSON mapping.
func (c *client) inspect(objs []proto.Message) error {
	parts := make([]json.RawMessage, 0, len(objs))
	for _, o := range objs {
		b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(o)
		if err != nil {
			return err
		}
		parts = append(parts, b)
	}
	b, err := json.MarshalIndent(parts, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(c.out, string(b))
	return err
}

// short truncates an ID for tables, as docker does.
func short(id string, noTrunc bool) string {
	if noTrunc || len(id) <= 12 {
		return id
	}
	return id[:12]
}

// ago says how long ago a Unix-nanosecond time was, roughly.
func ago(ns int64) string {
	if ns == 0 {
		return ""
	}
	d := time.Since(time.Unix(0, ns))
	switch {
	case d < time.Second:
		return "less than a second ago"
	case d < 2*time.Second:
		return "1 second ago"
	case d < time.Minute:
		return fmt.Sprintf("%d seconds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d minutes ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d hours ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}

// ---- status, join-token, leave

func newStatusCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show what the node at --host is: ID, role, leader, raft members",
		Args:  cobra.NoArgs,
		RunE: withClient(&f, func(ctx context.Context, c *client, _ []string) error {
			st, err := c.daemon.Status(ctx, &rpc.Empty{})
			if err != nil {
				return err
			}
			if c.json() {
				b, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(st)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintln(c.out, string(b))
				return err
			}
			fmt.Fprintf(c.out, "Node ID:    %s\nRole:       %s\nAddress:    %s\nData dir:   %s\n", st.NodeId, st.Role, st.Addr, st.DataDir)
			if st.Role == "manager" {
				fmt.Fprintf(c.out, "Leader:     %s (this node: %v)\nRaft:       ID %x, term %d, applied %d, commit %d\nMembers:\n",
					st.Leader, st.IsLeader, st.RaftId, st.Term, st.Applied, st.Commit)
				for _, m := range st.Members {
					extra := ""
					if m.Leader {
						extra = " leader"
					}
					if m.Learner {
						extra += " learner"
					}
					fmt.Fprintf(c.out, "  %s  %s  %x%s\n", m.NodeId, m.Addr, m.RaftId, extra)
				}
			}
			fmt.Fprintf(c.out, "Session:    %s (open: %v)\n", st.SessionManager, st.SessionOpen)
			return nil
		}),
	}
	f.register(cmd)
	return cmd
}

func newJoinTokenCmd() *cobra.Command {
	var f clientFlags
	var quiet, rotate bool
	cmd := &cobra.Command{
		Use:   "join-token worker|manager",
		Short: "Print the command (or with -q the token) that joins a node",
		Args:  cobra.ExactArgs(1),
		RunE: withClient(&f, func(ctx context.Context, c *client, args []string) error {
			role := args[0]
			if role != "worker" && role != "manager" {
				return usagef("join-token: want worker or manager, not %q", role)
			}
			var t *api.JoinTokens
			var err error
			if rotate {
				t, err = c.control.RotateJoinToken(ctx, &rpc.RotateJoinTokenRequest{Role: role})
				if err == nil && !c.json() && !quiet {
					fmt.Fprintf(c.out, "Successfully rotated %s join token.\n\n", role)
				}
			} else {
				t, err = c.daemon.JoinTokens(ctx, &rpc.Empty{})
			}
			if err != nil {
				return err
			}
			tok := t.Worker
			if role == "manager" {
				tok = t.Manager
			}
			st, err := c.daemon.Status(ctx, &rpc.Empty{})
			if err != nil {
				return err
			}
			switch {
			case c.json():
				return c.jsonLines([]any{map[string]string{"role": role, "token": tok, "addr": st.Addr}})
			case quiet:
				fmt.Fprintln(c.out, tok)
			default:
				fmt.Fprintf(c.out, "To add a %s to this swarm, run the following command:\n\n    swarmd join --token %s %s\n\n", role, tok, st.Addr)
			}
			return nil
		}),
	}
	f.register(cmd)
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only print the token")
	cmd.Flags().BoolVar(&rotate, "rotate", false, "replace the token first: the old one admits nobody from then on")
	return cmd
}

func newLeaveCmd() *cobra.Command {
	var f clientFlags
	var force bool
	cmd := &cobra.Command{
		Use:   "leave",
		Short: "Make the node at --host leave the cluster and its daemon exit",
		Long: `leave makes the node at --host leave the cluster: its daemon stops and forgets
its state (its containers keep running). A manager leaves only with --force,
which first removes it from the raft group (refused if that would cost the
quorum); demoting it first is gentler.`,
		Args: cobra.NoArgs,
		RunE: withClient(&f, func(ctx context.Context, c *client, _ []string) error {
			if _, err := c.daemon.Leave(ctx, &rpc.LeaveRequest{Force: force}); err != nil {
				return err
			}
			if !c.json() {
				fmt.Fprintln(c.out, "Node left the swarm.")
			}
			return nil
		}),
	}
	f.register(cmd)
	cmd.Flags().BoolVarP(&force, "force", "f", false, "let a manager leave (removes it from raft)")
	return cmd
}
