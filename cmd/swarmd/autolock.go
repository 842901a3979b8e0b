package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/swarmsim/swarmsim/realnet/rpc"
)

// ---- swarm update --autolock, unlock-key, unlock

func newSwarmCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "swarm", Short: "Manage the cluster's settings"}
	cmd.AddCommand(newSwarmUpdateCmd(), newSwarmRotateDataKeyCmd(), newSwarmCACmd())
	return cmd
}

func newSwarmUpdateCmd() *cobra.Command {
	var f clientFlags
	var autolock bool
	var cmd *cobra.Command
	cmd = &cobra.Command{
		Use:   "update --autolock=true|false",
		Short: "Turn autolock on or off",
		Long: `update --autolock=true makes every manager's encryption-at-rest key come from
the cluster's unlock key, which it prints: a restarted manager then stays
locked until ` + "`swarmd unlock`" + ` gives it the key. --autolock=false goes back to
keys kept on each manager's disk.`,
		Args: cobra.NoArgs,
		RunE: withClient(&f, func(ctx context.Context, c *client, _ []string) error {
			if !cmd.Flags().Changed("autolock") {
				return usagef("swarm update: nothing to update (give --autolock=true or --autolock=false)")
			}
			k, err := c.control.SetAutolock(ctx, &rpc.SetAutolockRequest{Autolock: autolock})
			if err != nil {
				return err
			}
			if c.json() {
				return c.jsonLines([]any{map[string]any{"autolock": autolock, "unlock_key": k.GetUnlockKey()}})
			}
			fmt.Fprintln(c.out, "Swarm updated.")
			if autolock {
				printUnlockKey(c.out, k.GetUnlockKey())
			}
			return nil
		}),
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&autolock, "autolock", false, "require the unlock key to start a stopped manager")
	return cmd
}

func newSwarmRotateDataKeyCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "rotate-data-key",
		Short: "Make every manager seal its raft log with a new data key from now on",
		Args:  cobra.NoArgs,
		RunE: withClient(&f, func(ctx context.Context, c *client, _ []string) error {
			r, err := c.control.RotateDataKey(ctx, &rpc.Empty{})
			if err != nil {
				return err
			}
			if c.json() {
				return c.jsonLines([]any{map[string]any{"rotation": r.GetRotation()}})
			}
			fmt.Fprintf(c.out, "Data key rotation %d requested: new records use the new key; old ones stay readable until the next snapshot.\n", r.GetRotation())
			return nil
		}),
	}
	f.register(cmd)
	return cmd
}

func newSwarmCACmd() *cobra.Command {
	var f clientFlags
	var rotate bool
	cmd := &cobra.Command{
		Use:   "ca --rotate",
		Short: "Rotate the cluster's root CA",
		Long: `ca --rotate starts a root rotation: a new root, cross-signed by the old one,
signs every certificate from then on; nodes renew, and once every live node
holds a certificate of the new root the old one is dropped and the join
tokens change (they name the root): print them again with join-token.`,
		Args: cobra.NoArgs,
		RunE: withClient(&f, func(ctx context.Context, c *client, _ []string) error {
			if !rotate {
				return usagef("swarm ca: nothing to do (give --rotate)")
			}
			if _, err := c.control.RotateRootCA(ctx, &rpc.Empty{}); err != nil {
				return err
			}
			if !c.json() {
				fmt.Fprintln(c.out, "Root rotation started: nodes renew their certificates; the join tokens change once all have.")
			}
			return nil
		}),
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&rotate, "rotate", false, "start a root rotation")
	return cmd
}

func printUnlockKey(w io.Writer, key string) {
	fmt.Fprintf(w, "To unlock a swarm manager after it restarts, run the `swarmd unlock`\ncommand and provide the following key:\n\n    %s\n\n", key)
	fmt.Fprintln(w, "Please remember to store this key in a password manager, since without it you\nwill not be able to restart the manager.")
}

func newUnlockKeyCmd() *cobra.Command {
	var f clientFlags
	var rotate, quiet bool
	cmd := &cobra.Command{
		Use:   "unlock-key [--rotate] [-q]",
		Short: "Print (or with --rotate, replace) the cluster's unlock key",
		Args:  cobra.NoArgs,
		RunE: withClient(&f, func(ctx context.Context, c *client, _ []string) error {
			var k *rpc.UnlockKey
			var err error
			if rotate {
				k, err = c.control.RotateUnlockKey(ctx, &rpc.RotateUnlockKeyRequest{})
			} else {
				k, err = c.control.GetUnlockKey(ctx, &rpc.Empty{})
			}
			if err != nil {
				return err
			}
			key := k.GetUnlockKey()
			switch {
			case c.json():
				return c.jsonLines([]any{map[string]string{"unlock_key": key}})
			case key == "":
				return fmt.Errorf("no unlock key: autolock is off (swarmd swarm update --autolock=true)")
			case quiet:
				fmt.Fprintln(c.out, key)
			default:
				if rotate {
					fmt.Fprintln(c.out, "Successfully rotated manager unlock key. Keep the old key until every manager has re-wrapped its keys (a manager down meanwhile needs the old one).")
					fmt.Fprintln(c.out)
				}
				printUnlockKey(c.out, key)
			}
			return nil
		}),
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&rotate, "rotate", false, "replace the unlock key with a new one")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only print the key")
	return cmd
}

func newUnlockCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "unlock",
		Short: "Give a restarted, locked manager the cluster's unlock key (read from the terminal or stdin)",
		Long: `unlock reads the unlock key (or passphrase) from the terminal without echo, or
from stdin's first line, and gives it to the locked manager of --data-dir
over its local socket. A wrong key is refused (exit 1) and the manager stays
locked.`,
		Args: cobra.NoArgs,
		RunE: withClient(&f, func(ctx context.Context, c *client, _ []string) error {
			key, err := readKey(c)
			if err != nil {
				return err
			}
			if _, err := c.daemon.Unlock(ctx, &rpc.UnlockRequest{Key: key}); err != nil {
				return err
			}
			if !c.json() {
				fmt.Fprintln(c.out, "Manager unlocked.")
			}
			return nil
		}),
	}
	f.register(cmd)
	return cmd
}

// readKey reads the key from the terminal without echo, or stdin's first
// line.
func readKey(c *client) (string, error) {
	if fd := int(os.Stdin.Fd()); term.IsTerminal(fd) {
		fmt.Fprint(c.errOut, "Enter unlock key: ")
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(c.errOut)
		if err != nil {
			return "", fmt.Errorf("read the unlock key: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("read the unlock key: %w", err)
	}
	key := strings.TrimSpace(line)
	if key == "" {
		return "", usagef("unlock: no key on stdin")
	}
	return key, nil
}
