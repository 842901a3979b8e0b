package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/realnet/rpc"
)

func newNodeCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "Manage nodes"}
	cmd.AddCommand(newNodeLsCmd(), newNodeInspectCmd(), newNodeEditCmd("promote", rpc.NodeEdit_NODE_EDIT_PROMOTE, "Promote nodes to managers"),
		newNodeEditCmd("demote", rpc.NodeEdit_NODE_EDIT_DEMOTE, "Demote managers to workers"), newNodeUpdateCmd(), newNodeRmCmd())
	return cmd
}

func nodeName(n *api.Node) string {
	if name := n.GetSpec().GetName(); name != "" {
		return name
	}
	return n.GetDescription().GetHostname()
}

func enumWord(s, prefix string) string {
	w := strings.TrimPrefix(s, prefix)
	return strings.ToUpper(w[:1]) + strings.ToLower(w[1:])
}

// nodeRow is one line of `node ls --format json`.
type nodeRow struct {
	ID            string `json:"ID"`
	Self          bool   `json:"Self"`
	Hostname      string `json:"Hostname"`
	Status        string `json:"Status"`
	Availability  string `json:"Availability"`
	ManagerStatus string `json:"ManagerStatus"`
	Role          string `json:"Role"`
}

func newNodeLsCmd() *cobra.Command {
	var f clientFlags
	var quiet bool
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List nodes (* marks the node --host is)",
		Args:    cobra.NoArgs,
		RunE: withClient(&f, func(ctx context.Context, c *client, _ []string) error {
			resp, err := c.control.ListNodes(ctx, &rpc.ListNodesRequest{})
			if err != nil {
				return err
			}
			st, err := c.daemon.Status(ctx, &rpc.Empty{})
			if err != nil {
				return err
			}
			members := map[string]bool{}
			for _, m := range st.Members {
				members[m.NodeId] = true
			}
			var rows [][]string
			var js []any
			for _, n := range resp.Nodes {
				if quiet {
					fmt.Fprintln(c.out, n.Id)
					continue
				}
				ms := ""
				switch {
				case n.Id == st.Leader:
					ms = "Leader"
				case members[n.Id]:
					ms = "Reachable"
				case n.Role == api.NodeRole_NODE_ROLE_MANAGER:
					ms = "Unreachable"
				}
				r := nodeRow{
					ID: n.Id, Self: n.Id == st.NodeId, Hostname: nodeName(n),
					Status:        enumWord(n.GetStatus().GetState().String(), "NODE_STATE_"),
					Availability:  enumWord(n.GetSpec().GetAvailability().String(), "NODE_AVAILABILITY_"),
					ManagerStatus: ms, Role: strings.ToLower(strings.TrimPrefix(n.Role.String(), "NODE_ROLE_")),
				}
				js = append(js, r)
				id := n.Id
				if r.Self {
					id += " *"
				}
				rows = append(rows, []string{id, r.Hostname, r.Status, r.Availability, r.ManagerStatus})
			}
			if quiet {
				return nil
			}
			if c.json() {
				return c.jsonLines(js)
			}
			c.table([]string{"ID", "HOSTNAME", "STATUS", "AVAILABILITY", "MANAGER STATUS"}, rows)
			return nil
		}),
	}
	f.register(cmd)
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only print IDs")
	return cmd
}

func newNodeInspectCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "inspect NODE [NODE...]",
		Short: "Show nodes as JSON (self: the node --host is)",
		Args:  cobra.MinimumNArgs(1),
		RunE: withClient(&f, func(ctx context.Context, c *client, args []string) error {
			var objs []proto.Message
			for _, ref := range args {
				if ref == "self" {
					st, err := c.daemon.Status(ctx, &rpc.Empty{})
					if err != nil {
						return err
					}
					ref = st.NodeId
				}
				n, err := c.control.GetNode(ctx, &rpc.Ref{Ref: ref})
				if err != nil {
					return err
				}
				objs = append(objs, n)
			}
			return c.inspect(objs)
		}),
	}
	f.register(cmd)
	return cmd
}

func newNodeEditCmd(verb string, edit rpc.NodeEdit, short string) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   verb + " NODE [NODE...]",
		Short: short,
		Args:  cobra.MinimumNArgs(1),
		RunE: withClient(&f, func(ctx context.Context, c *client, args []string) error {
			var errs []error
			for _, ref := range args {
				n, err := c.control.UpdateNode(ctx, &rpc.UpdateNodeRequest{Ref: ref, Edit: edit})
				if err != nil {
					errs = append(errs, err)
					fmt.Fprintf(c.errOut, "%s: %s\n", ref, errorText(err))
					continue
				}
				c.editDone(n, verb)
			}
			return errors.Join(errs...)
		}),
	}
	f.register(cmd)
	return cmd
}

func (c *client) editDone(n *api.Node, verb string) {
	if c.json() {
		_ = c.inspect([]proto.Message{n})
		return
	}
	switch verb {
	case "promote":
		fmt.Fprintf(c.out, "Node %s promoted to a manager in the swarm.\n", n.Id)
	case "demote":
		fmt.Fprintf(c.out, "Manager %s demoted in the swarm.\n", n.Id)
	default:
		fmt.Fprintln(c.out, n.Id)
	}
}

func newNodeUpdateCmd() *cobra.Command {
	var f clientFlags
	var availability string
	var labelAdd, labelRm []string
	cmd := &cobra.Command{
		Use:   "update [--availability active|pause|drain] [--label-add K=V] [--label-rm K] NODE",
		Short: "Update a node",
		Args:  cobra.ExactArgs(1),
		RunE: withClient(&f, func(ctx context.Context, c *client, args []string) error {
			ref := args[0]
			if len(labelAdd)+len(labelRm) > 0 {
				for attempt := 0; ; attempt++ {
					cur, err := c.control.GetNode(ctx, &rpc.Ref{Ref: ref})
					if err != nil {
						return err
					}
					spec := &api.NodeSpec{}
					if cur.Spec != nil {
						spec = proto.Clone(cur.Spec).(*api.NodeSpec)
					}
					spec.Labels = editMap(spec.Labels, labelAdd, labelRm)
					n, err := c.control.UpdateNode(ctx, &rpc.UpdateNodeRequest{Ref: cur.Id, Version: cur.GetMeta().GetVersion(), Spec: spec})
					if err != nil && attempt < 3 && strings.Contains(errorText(err), "out of sequence") {
						continue
					}
					if err != nil {
						return err
					}
					if availability == "" {
						c.editDone(n, "update")
						return nil
					}
					break
				}
			}
			var edit rpc.NodeEdit
			switch availability {
			case "":
				if len(labelAdd)+len(labelRm) == 0 {
					return usagef("node update: nothing to change (give --availability or --label-add/--label-rm)")
				}
				return nil
			case "active":
				edit = rpc.NodeEdit_NODE_EDIT_ACTIVATE
			case "pause":
				edit = rpc.NodeEdit_NODE_EDIT_PAUSE
			case "drain":
				edit = rpc.NodeEdit_NODE_EDIT_DRAIN
			default:
				return usagef("--availability %q: want active, pause or drain", availability)
			}
			n, err := c.control.UpdateNode(ctx, &rpc.UpdateNodeRequest{Ref: ref, Edit: edit})
			if err != nil {
				return err
			}
			c.editDone(n, "update")
			return nil
		}),
	}
	f.register(cmd)
	cmd.Flags().StringVar(&availability, "availability", "", "active, pause or drain")
	cmd.Flags().StringArrayVar(&labelAdd, "label-add", nil, "add or replace a node label KEY=VALUE")
	cmd.Flags().StringArrayVar(&labelRm, "label-rm", nil, "remove a node label KEY")
	return cmd
}

func newNodeRmCmd() *cobra.Command {
	var f clientFlags
	var force bool
	cmd := &cobra.Command{
		Use:     "rm NODE [NODE...]",
		Aliases: []string{"remove"},
		Short:   "Remove nodes from the cluster (a manager must be demoted first)",
		Args:    cobra.MinimumNArgs(1),
		RunE: withClient(&f, func(ctx context.Context, c *client, args []string) error {
			var errs []error
			for _, ref := range args {
				if _, err := c.control.RemoveNode(ctx, &rpc.RemoveNodeRequest{Ref: ref, Force: force}); err != nil {
					errs = append(errs, err)
					fmt.Fprintf(c.errOut, "%s: %s\n", ref, errorText(err))
					continue
				}
				fmt.Fprintln(c.out, ref)
			}
			return errors.Join(errs...)
		}),
	}
	f.register(cmd)
	cmd.Flags().BoolVarP(&force, "force", "f", false, "remove a node that is still ready")
	return cmd
}

// ---- secrets and configs

func newSecretCmd() *cobra.Command { return newDataCmd("secret") }
func newConfigCmd() *cobra.Command { return newDataCmd("config") }

// newDataCmd builds the secret and config commands, which differ only in
// their calls.
func newDataCmd(kind string) *cobra.Command {
	cmd := &cobra.Command{Use: kind, Short: "Manage " + kind + "s"}
	var fc, fl, fi, fr clientFlags
	create := &cobra.Command{
		Use:   "create NAME FILE|-",
		Short: "Create a " + kind + " from a file or standard input",
		Args:  cobra.ExactArgs(2),
		RunE: withClient(&fc, func(ctx context.Context, c *client, args []string) error {
			var data []byte
			var err error
			if args[1] == "-" {
				data, err = io.ReadAll(os.Stdin)
			} else {
				data, err = os.ReadFile(args[1])
			}
			if err != nil {
				return err
			}
			var id string
			if kind == "secret" {
				x, err := c.control.CreateSecret(ctx, &api.SecretSpec{Name: args[0], Data: data})
				if err != nil {
					return err
				}
				id = x.Id
			} else {
				x, err := c.control.CreateConfig(ctx, &api.ConfigSpec{Name: args[0], Data: data})
				if err != nil {
					return err
				}
				id = x.Id
			}
			fmt.Fprintln(c.out, id)
			return nil
		}),
	}
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List " + kind + "s",
		Args:  cobra.NoArgs,
		RunE: withClient(&fl, func(ctx context.Context, c *client, _ []string) error {
			type row struct {
				ID, Name  string
				CreatedAt int64
			}
			var rs []row
			if kind == "secret" {
				resp, err := c.control.ListSecrets(ctx, &rpc.ListByNameRequest{})
				if err != nil {
					return err
				}
				for _, x := range resp.Secrets {
					rs = append(rs, row{x.Id, x.GetSpec().GetName(), x.GetMeta().GetCreatedAt()})
				}
			} else {
				resp, err := c.control.ListConfigs(ctx, &rpc.ListByNameRequest{})
				if err != nil {
					return err
				}
				for _, x := range resp.Configs {
					rs = append(rs, row{x.Id, x.GetSpec().GetName(), x.GetMeta().GetCreatedAt()})
				}
			}
			var rows [][]string
			var js []any
			for _, r := range rs {
				js = append(js, map[string]string{"ID": r.ID, "Name": r.Name, "CreatedAt": ago(r.CreatedAt)})
				rows = append(rows, []string{short(r.ID, false), r.Name, ago(r.CreatedAt)})
			}
			if c.json() {
				return c.jsonLines(js)
			}
			c.table([]string{"ID", "NAME", "CREATED"}, rows)
			return nil
		}),
	}
	inspect := &cobra.Command{
		Use:   "inspect NAME [NAME...]",
		Short: "Show " + kind + "s as JSON (a secret's data is never shown)",
		Args:  cobra.MinimumNArgs(1),
		RunE: withClient(&fi, func(ctx context.Context, c *client, args []string) error {
			var objs []proto.Message
			for _, ref := range args {
				var o proto.Message
				var err error
				if kind == "secret" {
					o, err = c.control.GetSecret(ctx, &rpc.Ref{Ref: ref})
				} else {
					o, err = c.control.GetConfig(ctx, &rpc.Ref{Ref: ref})
				}
				if err != nil {
					return err
				}
				objs = append(objs, o)
			}
			return c.inspect(objs)
		}),
	}
	rm := &cobra.Command{
		Use:   "rm NAME [NAME...]",
		Short: "Remove " + kind + "s no service uses",
		Args:  cobra.MinimumNArgs(1),
		RunE: withClient(&fr, func(ctx context.Context, c *client, args []string) error {
			var errs []error
			for _, ref := range args {
				var err error
				if kind == "secret" {
					_, err = c.control.RemoveSecret(ctx, &rpc.Ref{Ref: ref})
				} else {
					_, err = c.control.RemoveConfig(ctx, &rpc.Ref{Ref: ref})
				}
				if err != nil {
					errs = append(errs, err)
					fmt.Fprintf(c.errOut, "%s: %s\n", ref, errorText(err))
					continue
				}
				fmt.Fprintln(c.out, ref)
			}
			return errors.Join(errs...)
		}),
	}
	for _, p := range []struct {
		c *cobra.Command
		f *clientFlags
	}{{create, &fc}, {ls, &fl}, {inspect, &fi}, {rm, &fr}} {
		p.f.register(p.c)
		cmd.AddCommand(p.c)
	}
	return cmd
}
