package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/swarmsim/swarmsim/engine/ca"
	"github.com/swarmsim/swarmsim/engine/crypt"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/realnet"
	"github.com/swarmsim/swarmsim/realnet/rpc"
)

// SocketName is the daemon's local socket in its data directory: the CLI
// on the node's machine talks to it (as docker's CLI to docker.sock), and
// the socket's file permissions (owner only) are the credential. A caller
// there acts as the node itself: the control API answers it only on a
// manager, and Unlock, Leave are served there only.
const SocketName = "swarmd.sock"

// SocketPath is the local socket of the node whose data directory is dir.
func SocketPath(dir string) string { return filepath.Join(dir, SocketName) }

// The RPCs that are the daemon's, not the engine's: who may call them on
// the network port (the local socket's caller may call all of them).
const (
	methodStatus        = "/swarm.Daemon/Status"
	methodJoinTokens    = "/swarm.Daemon/JoinTokens"
	methodLeave         = "/swarm.Daemon/Leave"
	methodRemoveManager = "/swarm.Daemon/RemoveManager"
	methodUnlock        = "/swarm.Daemon/Unlock"
	methodDigests       = "/swarm.Daemon/AppliedDigests"
	methodLedTerms      = "/swarm.Daemon/LedTerms"
	methodSkewClock     = "/swarm.Daemon/SkewClock"
	methodSetLinkFault  = "/swarm.Daemon/SetLinkFault"
	methodJoin          = "/swarm.Peer/Join"
	methodStream        = "/swarm.Peer/Stream"
)

var (
	managersOnly = []env.Role{env.RoleManager}
	members      = []env.Role{env.RoleWorker, env.RoleManager}
	anyone       = []env.Role{env.RoleNone, env.RoleWorker, env.RoleManager}
	localOnly    = []env.Role{}
)

// daemonTable lists the realnet RPCs that engine/ca's table does not
// know; every other method goes to ca.Authorize, which refuses what it
// does not list.
var daemonTable = map[string][]env.Role{
	methodStatus:           members,
	methodJoinTokens:       managersOnly,
	methodRemoveManager:    managersOnly,
	methodLeave:            localOnly,
	methodUnlock:           localOnly,
	methodDigests:          localOnly,
	methodLedTerms:         localOnly,
	methodSkewClock:        localOnly,
	methodSetLinkFault:     localOnly,
	methodJoin:             anyone, // the token is the credential, checked by the handler
	methodStream:           anyone, // every message on it is authorized on its own
	"/swarm.Control/KVGet": managersOnly,
	"/swarm.Control/KVPut": managersOnly,
	"/swarm.Control/KVCAS": managersOnly,
}

// servedLocked are the local socket's methods a locked node serves: its
// status, its unlock, and the fault injections that stand for its
// machine's clock and network, which a locked daemon does not change.
var servedLocked = map[string]bool{methodStatus: true, methodUnlock: true, methodSkewClock: true, methodSetLinkFault: true}

// ErrLocked: the node is an autolocked manager waiting for its unlock
// key.
var ErrLocked = errors.New("this manager is locked: give it the unlock key with `swarmd unlock`")

// authorizeRPC decides a unary RPC on the network port under the CA's TLS:
// the caller is who its certificate names (RoleNone without one). Locked,
// the node serves nothing; a removed node's certificate, or one of another
// cluster, is refused whatever it says.
func (d *Daemon) authorizeRPC(p env.Peer, method string) error {
	if d.locked.Load() {
		return status.Error(codes.FailedPrecondition, ErrLocked.Error())
	}
	if roles, ok := daemonTable[method]; ok {
		if !slices.Contains(roles, p.Role) {
			return fmt.Errorf("%w: %s may not call %s as %s over the network", ca.ErrPermissionDenied, who(p), method, p.Role)
		}
	} else if err := ca.Authorize(method, p); err != nil {
		return err
	}
	if p.Role == env.RoleNone {
		return nil
	}
	if org := d.tr.Org(); org != "" && p.Org != org {
		return fmt.Errorf("%w: %s belongs to cluster %q", ca.ErrPermissionDenied, p.ID, p.Org)
	}
	if a := d.adm.Load(); a != nil {
		if n, ok := a.nodes[p.ID]; ok && n.removed {
			return fmt.Errorf("%w: node %s was removed from the cluster", ca.ErrPermissionDenied, p.ID)
		}
	}
	return nil
}

func who(p env.Peer) string {
	if p.ID == "" {
		return "a caller without a certificate"
	}
	return string(p.ID)
}

// serveLocal serves the Control and Daemon services on the data
// directory's socket, owner only.
func (d *Daemon) serveLocal() error {
	path := SocketPath(d.opts.DataDir)
	// A socket left by a crash; the WAL's lock says no daemon runs here.
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("local socket: %w", err)
	}
	lis, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("local socket %s: %w", path, err)
	}
	// Between Listen and Chmod the socket has the umask's mode; the data
	// directory swarmd creates is 0700 (realnet/wal), which covers it.
	if err := os.Chmod(path, 0o600); err != nil {
		lis.Close()
		return fmt.Errorf("local socket: %w", err)
	}
	d.localLis = lis
	d.local = grpc.NewServer(
		realnet.KeepaliveEnforcement(), // callers dial with realnet.DialOptions
		grpc.MaxRecvMsgSize(realnet.DefaultMaxMessageBytes), grpc.MaxSendMsgSize(realnet.DefaultMaxMessageBytes),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if d.locked.Load() && !servedLocked[info.FullMethod] {
				return nil, status.Error(codes.FailedPrecondition, ErrLocked.Error())
			}
			if _, daemonRPC := daemonTable[info.FullMethod]; !daemonRPC {
				// The control API: as the node itself, so a worker's
				// socket is refused it as its certificate would be.
				self := env.Peer{ID: d.id, Role: d.tr.Role(), Org: d.tr.Org()}
				if err := ca.Authorize(info.FullMethod, self); err != nil {
					return nil, status.Error(codes.PermissionDenied, err.Error())
				}
			}
			return h(ctx, req)
		}),
	)
	rpc.RegisterControlServer(d.local, realnet.NewControlServer(d.loop, d.manager))
	rpc.RegisterDaemonServer(d.local, &daemonServer{d: d, local: true})
	go func() {
		if err := d.local.Serve(lis); err != nil {
			d.log.Error("local socket server stopped", "err", err)
		}
	}()
	return nil
}

// SkewClock sets how far the node's wall clock runs from the machine's.
// It is served on the local socket only (daemonTable), even while the
// node is locked (servedLocked).
// TLS checks certificates at the handshake only, so the node also drops
// its connections to its peers: its next handshakes check them by the new
// clock, as they would on a machine whose clock was wrong when it
// connected.
func (s *daemonServer) SkewClock(_ context.Context, req *rpc.SkewClockRequest) (*rpc.Empty, error) {
	by := time.Duration(req.GetBy())
	s.d.loop.SetSkew(by)
	s.d.tr.Reconnect()
	s.d.log.Warn("wall clock skewed for a fault-injection test; connections to peers dropped", "by", by.String())
	return &rpc.Empty{}, nil
}

// SetLinkFault makes the messages the node sends one peer suffer a link
// fault. It is served on the local socket only (daemonTable), even while
// the node is locked (servedLocked).
func (s *daemonServer) SetLinkFault(_ context.Context, req *rpc.SetLinkFaultRequest) (*rpc.Empty, error) {
	f := realnet.LinkFault{
		Latency: time.Duration(req.GetLatency()), Jitter: time.Duration(req.GetJitter()),
		Loss: req.GetLoss(), Duplicate: req.GetDuplicate(), Reorder: req.GetReorder(),
	}
	if err := s.d.tr.SetLinkFault(env.NodeID(req.GetTo()), f); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	s.d.log.Warn("link to a peer made faulty for a fault-injection test", "to", req.GetTo(),
		"latency", f.Latency.String(), "jitter", f.Jitter.String(), "loss", f.Loss, "duplicate", f.Duplicate, "reorder", f.Reorder)
	return &rpc.Empty{}, nil
}

// Unlock gives a locked manager the cluster's unlock key. It is served
// on the local socket only (daemonTable).
func (s *daemonServer) Unlock(ctx context.Context, req *rpc.UnlockRequest) (*rpc.Empty, error) {
	d := s.d
	var err error
	if lerr := d.loop.Do(ctx, func() {
		err = d.node.Unlock(req.GetKey())
		d.locked.Store(d.node.Locked())
	}); lerr != nil {
		return nil, realnet.GRPCError(lerr)
	}
	switch {
	case errors.Is(err, crypt.ErrWrongKey):
		return nil, status.Error(codes.PermissionDenied, "wrong unlock key: the node stays locked")
	case errors.Is(err, crypt.ErrNotLocked):
		return nil, status.Error(codes.FailedPrecondition, "this node is not locked")
	case err != nil:
		return nil, status.Error(codes.Internal, err.Error())
	}
	d.log.Info("unlocked")
	return &rpc.Empty{}, nil
}
