package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/swarmsim/swarmsim/realnet"
	"github.com/swarmsim/swarmsim/realnet/daemon"
	"github.com/swarmsim/swarmsim/realnet/rpc"
)

const (
	modeResume = daemon.ModeResume
	modeInit   = daemon.ModeInit
	modeJoin   = daemon.ModeJoin
)

// daemonFlags are the flags of init, join and resume.
type daemonFlags struct {
	listen, advertise, dataDir, httpAddr string
	executor, hostname                   string
	labels                               []string
	logFormat, logLevel                  string
	tlsMode, tlsCert, tlsKey, tlsCA      string
	raftTick, heartbeat                  time.Duration
	electionTicks                        int
	snapshotEvery                        uint64
	token                                string
	autolock                             bool // init only
}

func (f *daemonFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.dataDir, "data-dir", "", "directory holding the node's state (raft log, identity)")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:4242", "gRPC listen address (loopback only with --tls off); resuming, the one used before")
	fs.StringVar(&f.advertise, "advertise", "", "address other nodes dial (default: --listen)")
	fs.StringVar(&f.httpAddr, "http", "", "serve /metrics and /healthz on this address (loopback only)")
	fs.StringVar(&f.executor, "executor", daemon.ExecutorAuto, "container executor: auto (docker if it answers, else reject), docker, reject, memory (simulated containers, for tests)")
	fs.StringVar(&f.hostname, "hostname", "", "node hostname as the cluster shows it (default: the machine's)")
	fs.StringArrayVar(&f.labels, "label", nil, "engine label key=value (repeatable)")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&f.tlsMode, "tls", "ca", "connection security: ca (mutual TLS 1.3 on the cluster CA's certificates) or off (plain gRPC, loopback only, for debugging)")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "node certificate (PEM); with --tls-key and --tls-ca, mutual TLS on these static files instead of the cluster CA's")
	fs.StringVar(&f.tlsKey, "tls-key", "", "node private key (PEM)")
	fs.StringVar(&f.tlsCA, "tls-ca", "", "cluster CA certificate (PEM)")
	fs.DurationVar(&f.raftTick, "raft-tick", 0, "raft tick (default 100ms)")
	fs.IntVar(&f.electionTicks, "election-ticks", 0, "raft election timeout in ticks (default 10)")
	fs.Uint64Var(&f.snapshotEvery, "snapshot-every", 0, "raft snapshot every this many entries (default 10000)")
	fs.DurationVar(&f.heartbeat, "heartbeat-period", 0, "agents' heartbeat period (default 5s)")
}

func newInitCmd() *cobra.Command {
	var f daemonFlags
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Start a new cluster with this node as its first manager, and run it",
		Long: `init starts a new cluster: this node becomes its only manager (a raft group of
one), draws two distinct join tokens (one for managers, one for workers),
prints them, and keeps running in the foreground. On a data directory that
already holds a node, init resumes that node instead.

With --autolock, the new cluster starts autolocked, as after ` + "`swarmd swarm update --autolock=true`" + `:
init prints the unlock key, which a manager needs when it restarts. A
resumed node keeps the cluster's own setting.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runDaemon(cmd, &f, modeInit) },
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&f.autolock, "autolock", false, "start the new cluster autolocked and print its unlock key")
	return cmd
}

func newJoinCmd() *cobra.Command {
	var f daemonFlags
	cmd := &cobra.Command{
		Use:   "join --token TOKEN [flags] MANAGER_ADDR",
		Short: "Join a cluster as a worker or a manager (the token decides), and run",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.token == "" {
				return usagef("join needs --token (swarmd join-token worker|manager prints one)")
			}
			return runDaemon(cmd, &f, modeJoin, args[0])
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&f.token, "token", "", "join token: a manager token joins raft, a worker token runs tasks only")
	return cmd
}

// runDaemon runs a node until SIGTERM/SIGINT, a leave, or an error.
func runDaemon(cmd *cobra.Command, f *daemonFlags, mode daemon.Mode, joinAddr ...string) error {
	if f.dataDir == "" {
		return usagef("--data-dir is required")
	}
	log, err := newLogger(f.logFormat, f.logLevel)
	if err != nil {
		return usageError{err}
	}
	tc, err := loadTLS(f.tlsCert, f.tlsKey, f.tlsCA)
	if err != nil {
		return err
	}
	security := daemon.SecurityCA
	switch {
	case f.tlsMode != "ca" && f.tlsMode != "off":
		return usagef("--tls %q: want ca or off", f.tlsMode)
	case tc != nil && f.tlsMode == "off":
		return usagef("--tls off with --tls-cert: choose one")
	case tc != nil:
		security = daemon.SecurityStatic
	case f.tlsMode == "off":
		security = daemon.SecurityOff
	}
	labels := map[string]string{}
	for _, l := range f.labels {
		k, v, _ := strings.Cut(l, "=")
		labels[k] = v
	}
	opts := daemon.Options{
		Mode: mode, DataDir: f.dataDir, Listen: f.listen, Advertise: f.advertise, HTTPAddr: f.httpAddr,
		Executor: f.executor, Hostname: f.hostname, Labels: labels, Security: security, TLS: tc,
		RaftTick: f.raftTick, ElectionTicks: f.electionTicks, SnapshotEvery: f.snapshotEvery, HeartbeatPeriod: f.heartbeat,
		Token: f.token, Logger: log,
	}
	if len(joinAddr) > 0 {
		opts.JoinAddr = joinAddr[0]
	}
	if mode == modeResume && !cmd.Flags().Changed("listen") {
		opts.Listen = "" // where the node listened before
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	d, err := daemon.Start(ctx, opts)
	if err != nil {
		if errors.Is(err, realnet.ErrInsecureListen) {
			return usageError{err}
		}
		return err
	}
	if mode == modeInit && d.Created() {
		key := ""
		if f.autolock {
			if key, err = enableAutolock(ctx, f.dataDir); err != nil {
				d.Stop()
				return err
			}
		}
		printInit(cmd, d, f, key)
	} else if mode == modeInit && f.autolock {
		warnNotAutolocked(ctx, f.dataDir, log)
	}
	select {
	case <-ctx.Done():
		log.Info("signal received: stopping")
		d.Stop()
	case <-d.Done():
	}
	return d.Err()
}

// enableAutolock turns autolock on for the cluster this node just
// started, through its own local socket, once it leads, and returns the
// unlock key.
func enableAutolock(ctx context.Context, dataDir string) (string, error) {
	conn, err := dialSelf(dataDir)
	if err != nil {
		return "", fmt.Errorf("init --autolock: %w", err)
	}
	defer conn.Close()
	ctl := rpc.NewControlClient(conn)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		k, err := ctl.SetAutolock(ctx, &rpc.SetAutolockRequest{Autolock: true})
		if err == nil {
			return k.GetUnlockKey(), nil
		}
		// Until this node leads its raft group of one and has written the
		// cluster's object, the control API answers Unavailable or
		// FailedPrecondition.
		if c := status.Code(err); c != codes.Unavailable && c != codes.FailedPrecondition || ctx.Err() != nil {
			return "", fmt.Errorf("init --autolock: the cluster was started but not autolocked: %w", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// dialSelf connects to this node's own local socket.
func dialSelf(dataDir string) (*grpc.ClientConn, error) {
	sock, err := filepath.Abs(daemon.SocketPath(dataDir))
	if err != nil {
		return nil, err
	}
	return grpc.NewClient("unix://"+sock, realnet.DialOptions(nil, 0)...)
}

// warnNotAutolocked warns when init --autolock resumed a node whose
// cluster is not autolocked (an init whose autolock failed, say): the
// flag changes only a new cluster.
func warnNotAutolocked(ctx context.Context, dataDir string, log *slog.Logger) {
	conn, err := dialSelf(dataDir)
	if err != nil {
		return
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := rpc.NewDaemonClient(conn).Status(ctx, &rpc.Empty{})
	if err == nil && st.GetRole() == "manager" && !st.GetLocked() && st.GetUnlockKeyFingerprint() == "" {
		log.Warn("init --autolock resumed a node of a cluster that is not autolocked: the flag applies to a new cluster only; " +
			"swarmd swarm update --autolock=true turns it on")
	}
}

func printInit(cmd *cobra.Command, d *daemon.Daemon, f *daemonFlags, unlockKey string) {
	addr := f.advertise
	if addr == "" {
		addr = f.listen
	}
	t := d.JoinTokens()
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "Swarm initialized: current node (%s) is now a manager.\n\n", d.ID())
	fmt.Fprintf(out, "To add a worker to this swarm, run the following command:\n\n    swarmd join --token %s %s\n\n", t.Worker, addr)
	fmt.Fprintf(out, "To add a manager to this swarm, run the following command:\n\n    swarmd join --token %s %s\n\n", t.Manager, addr)
	fmt.Fprintf(out, "To manage it from this machine (over the owner-only socket in the data directory):\n\n    export SWARMD_DATA_DIR=%s\n    swarmd node ls\n\n", f.dataDir)
	if unlockKey != "" {
		fmt.Fprintf(out, "To unlock a manager after it restarts, run `swarmd unlock` and give it this key:\n\n    %s\n\nKeep it safe: a restarted manager cannot read its data without it.\n\n", unlockKey)
	}
}

func newLogger(format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	o := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, o)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// loadTLS builds mutual TLS 1.3 from PEM files: the node's certificate,
// which it presents as server and as client, and the cluster CA that
// every peer's certificate must chain to. No files: nil (plain gRPC).
func loadTLS(certFile, keyFile, caFile string) (*realnet.TLSConfig, error) {
	if certFile == "" && keyFile == "" && caFile == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" || caFile == "" {
		return nil, usagef("TLS needs --tls-cert, --tls-key and --tls-ca together")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("tls: no certificate in %s", caFile)
	}
	return &realnet.TLSConfig{
		Server: &tls.Config{
			MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert},
			ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool,
		},
		Client: &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}, RootCAs: pool},
	}, nil
}
