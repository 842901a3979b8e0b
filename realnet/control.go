package realnet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/ca"
	"github.com/swarmsim/swarmsim/engine/controlapi"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/manager"
	"github.com/swarmsim/swarmsim/engine/raft"
	"github.com/swarmsim/swarmsim/engine/store"
	"github.com/swarmsim/swarmsim/realnet/rpc"
)

// ErrNotManager: a control call reached a node that runs no manager.
var ErrNotManager = errors.New("this node is not a manager: send control requests to a manager")

// ControlServer serves the Control service from a node's manager: every
// call is posted to the node's loop, and the handler waits for the
// engine's callback or for the request's deadline. It works on any
// manager: reads answer from the local store (a follower's may lag), writes
// go through raft.
type ControlServer struct {
	rpc.UnimplementedControlServer
	loop *Loop
	// manager returns the node's manager now, nil on a worker; it runs on
	// the loop.
	manager func() *manager.Manager
}

// NewControlServer returns a Control service over the manager that mgr
// returns (on the loop).
func NewControlServer(loop *Loop, mgr func() *manager.Manager) *ControlServer {
	return &ControlServer{loop: loop, manager: mgr}
}

// write runs an asynchronous control call on the loop.
func write[T any](ctx context.Context, s *ControlServer, f func(c *controlapi.Server, done func(T, error))) (T, error) {
	v, err := Call(ctx, s.loop, func(done func(T, error)) {
		m := s.manager()
		if m == nil {
			var zero T
			done(zero, ErrNotManager)
			return
		}
		f(m.Control(), done)
	})
	return v, GRPCError(err)
}

// read runs a synchronous call on the loop.
func read[T any](ctx context.Context, s *ControlServer, f func(m *manager.Manager) (T, error)) (T, error) {
	return write(ctx, s, func(c *controlapi.Server, done func(T, error)) {
		done(f(s.manager()))
	})
}

func done0(done func(*rpc.Empty, error)) func(error) {
	return func(err error) { done(&rpc.Empty{}, err) }
}

// GRPCError maps engine errors onto gRPC status codes: controlapi's
// sentinels onto the codes of the same names (a conflict is Aborted, or
// AlreadyExists for a name in use), and a write whose outcome is unknown
// (leadership lost, timeout) onto Unavailable, which tells a client to
// read before retrying.
func GRPCError(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := codes.Unknown
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, ErrNotManager):
		code = codes.FailedPrecondition
	case errors.Is(err, ErrLoopStopped):
		code = codes.Unavailable
	case errors.Is(err, controlapi.ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, controlapi.ErrInvalidArgument):
		code = codes.InvalidArgument
	case errors.Is(err, controlapi.ErrConflict) && (errors.Is(err, store.ErrNameConflict) || errors.Is(err, store.ErrExist)):
		code = codes.AlreadyExists
	case errors.Is(err, controlapi.ErrConflict):
		code = codes.Aborted
	case errors.Is(err, controlapi.ErrFailedPrecondition), errors.Is(err, raft.ErrQuorumAtRisk), errors.Is(err, ca.ErrRotationInProgress):
		code = codes.FailedPrecondition
	case manager.Ambiguous(err):
		code = codes.Unavailable
		err = fmt.Errorf("%w (the change may or may not have been made: read before retrying)", err)
	default:
		var nl *raft.NotLeaderError
		if errors.As(err, &nl) {
			code = codes.Unavailable
		}
	}
	return status.Error(code, err.Error())
}

// ---- services

func (s *ControlServer) CreateService(ctx context.Context, req *rpc.CreateServiceRequest) (*api.Service, error) {
	return write(ctx, s, func(c *controlapi.Server, done func(*api.Service, error)) { c.CreateService(req.GetSpec(), done) })
}

func (s *ControlServer) UpdateService(ctx context.Context, req *rpc.UpdateServiceRequest) (*api.Service, error) {
	return write(ctx, s, func(c *controlapi.Server, done func(*api.Service, error)) {
		c.UpdateService(req.GetRef(), req.GetVersion(), req.GetSpec(), done)
	})
}

func (s *ControlServer) ScaleService(ctx context.Context, req *rpc.ScaleServiceRequest) (*api.Service, error) {
	return write(ctx, s, func(c *controlapi.Server, done func(*api.Service, error)) {
		c.ScaleService(req.GetRef(), req.GetReplicas(), done)
	})
}

func (s *ControlServer) RollbackService(ctx context.Context, req *rpc.Ref) (*api.Service, error) {
	return write(ctx, s, func(c *controlapi.Server, done func(*api.Service, error)) { c.RollbackService(req.GetRef(), done) })
}

func (s *ControlServer) RemoveService(ctx context.Context, req *rpc.Ref) (*rpc.Empty, error) {
	return write(ctx, s, func(c *controlapi.Server, done func(*rpc.Empty, error)) { c.RemoveService(req.GetRef(), done0(done)) })
}

func (s *ControlServer) GetService(ctx context.Context, req *rpc.Ref) (*api.Service, error) {
	return read(ctx, s, func(m *manager.Manager) (*api.Service, error) { return m.Control().GetService(req.GetRef()) })
}

func (s *ControlServer) ListServices(ctx context.Context, req *rpc.ListServicesRequest) (*rpc.ListServicesResponse, error) {
	return read(ctx, s, func(m *manager.Manager) (*rpc.ListServicesResponse, error) {
		svcs := m.Control().ListServices(controlapi.ServiceFilter{NamePrefix: req.GetNamePrefix(), Labels: req.GetLabels()})
		out := &rpc.ListServicesResponse{Services: svcs}
		for _, svc := range svcs {
			out.Statuses = append(out.Statuses, serviceStatus(m.Store(), svc))
		}
		return out, nil
	})
}

// serviceStatus counts a service's tasks as `service ls` shows them:
// running is tasks running that should; desired is the replica count of a
// replicated service, else the tasks that should run.
func serviceStatus(st *store.Store, svc *api.Service) *rpc.ServiceStatus {
	out := &rpc.ServiceStatus{ServiceId: svc.Id}
	var desiredRunning uint64
	for t := range st.EachTaskByService(svc.Id) {
		if t.DesiredState == api.TaskState_TASK_STATE_RUNNING {
			desiredRunning++
			if t.GetStatus().GetState() == api.TaskState_TASK_STATE_RUNNING {
				out.Running++
			}
		}
		if t.GetStatus().GetState() == api.TaskState_TASK_STATE_COMPLETE {
			out.Completed++
		}
	}
	switch mode := svc.GetSpec().GetMode().(type) {
	case *api.ServiceSpec_Replicated:
		out.Desired = mode.Replicated.GetReplicas()
	case *api.ServiceSpec_ReplicatedJob:
		out.Desired = mode.ReplicatedJob.GetTotalCompletions()
	default:
		out.Desired = desiredRunning
	}
	return out
}

// ---- tasks

func (s *ControlServer) GetTask(ctx context.Context, req *rpc.Ref) (*api.Task, error) {
	return read(ctx, s, func(m *manager.Manager) (*api.Task, error) { return m.Control().GetTask(req.GetRef()) })
}

func (s *ControlServer) ListTasks(ctx context.Context, req *rpc.ListTasksRequest) (*rpc.ListTasksResponse, error) {
	return read(ctx, s, func(m *manager.Manager) (*rpc.ListTasksResponse, error) {
		ts, err := m.Control().ListTasks(controlapi.TaskFilter{Service: req.GetService(), Node: req.GetNode(), DesiredStates: req.GetDesiredStates()})
		return &rpc.ListTasksResponse{Tasks: ts}, err
	})
}

// ---- nodes

func (s *ControlServer) GetNode(ctx context.Context, req *rpc.Ref) (*api.Node, error) {
	return read(ctx, s, func(m *manager.Manager) (*api.Node, error) { return m.Control().GetNode(req.GetRef()) })
}

func (s *ControlServer) ListNodes(ctx context.Context, req *rpc.ListNodesRequest) (*rpc.ListNodesResponse, error) {
	return read(ctx, s, func(m *manager.Manager) (*rpc.ListNodesResponse, error) {
		ns := m.Control().ListNodes(controlapi.NodeFilter{
			NamePrefix: req.GetNamePrefix(), Roles: req.GetRoles(), Labels: req.GetLabels(), IncludeRemoved: req.GetIncludeRemoved(),
		})
		return &rpc.ListNodesResponse{Nodes: ns}, nil
	})
}

func (s *ControlServer) UpdateNode(ctx context.Context, req *rpc.UpdateNodeRequest) (*api.Node, error) {
	return write(ctx, s, func(c *controlapi.Server, done func(*api.Node, error)) {
		ref := req.GetRef()
		switch req.GetEdit() {
		case rpc.NodeEdit_NODE_EDIT_NONE:
			c.UpdateNode(ref, req.GetVersion(), req.GetSpec(), done)
		case rpc.NodeEdit_NODE_EDIT_DRAIN:
			c.DrainNode(ref, done)
		case rpc.NodeEdit_NODE_EDIT_PAUSE:
			c.PauseNode(ref, done)
		case rpc.NodeEdit_NODE_EDIT_ACTIVATE:
			c.ActivateNode(ref, done)
		case rpc.NodeEdit_NODE_EDIT_PROMOTE:
			c.PromoteNode(ref, done)
		case rpc.NodeEdit_NODE_EDIT_DEMOTE:
			c.DemoteNode(ref, done)
		default:
			done(nil, fmt.Errorf("%w: unknown node edit %d", controlapi.ErrInvalidArgument, req.GetEdit()))
		}
	})
}

func (s *ControlServer) RemoveNode(ctx context.Context, req *rpc.RemoveNodeRequest) (*rpc.Empty, error) {
	return write(ctx, s, func(c *controlapi.Server, done func(*rpc.Empty, error)) {
		c.RemoveNode(req.GetRef(), req.GetForce(), done0(done))
	})
}

// ---- secrets, configs, networks

func (s *ControlServer) CreateSecret(ctx context.Context, req *api.SecretSpec) (*api.Secret, error) {
	return write(ctx, s, func(c *controlapi.Server, done func(*api.Secret, error)) { c.CreateSecret(req, done) })
}

func (s *ControlServer) GetSecret(ctx context.Context, req *rpc.Ref) (*api.Secret, error) {
	return read(ctx, s, func(m *manager.Manager) (*api.Secret, error) { return m.Control().GetSecret(req.GetRef()) })
}

func (s *ControlServer) ListSecrets(ctx context.Context, req *rpc.ListByNameRequest) (*rpc.ListSecretsResponse, error) {
	return read(ctx, s, func(m *manager.Manager) (*rpc.ListSecretsResponse, error) {
		return &rpc.ListSecretsResponse{Secrets: m.Control().ListSecrets(req.GetNamePrefix())}, nil
	})
}

func (s *ControlServer) RemoveSecret(ctx context.Context, req *rpc.Ref) (*rpc.Empty, error) {
	return write(ctx, s, func(c *controlapi.Server, done func(*rpc.Empty, error)) { c.RemoveSecret(req.GetRef(), done0(done)) })
}

func (s *ControlServer) CreateConfig(ctx context.Context, req *api.ConfigSpec) (*api.Config, error) {
	return write(ctx, s, func(c *controlapi.Server, done func(*api.Config, error)) { c.CreateConfig(req, done) })
}

func (s *ControlServer) GetConfig(ctx context.Context, req *rpc.Ref) (*api.Config, error) {
	return read(ctx, s, func(m *manager.Manager) (*api.Config, error) { return m.Control().GetConfig(req.GetRef()) })
}

func (s *ControlServer) ListConfigs(ctx context.Context, req *rpc.ListByNameRequest) (*rpc.ListConfigsResponse, error) {
	return read(ctx, s, func(m *manager.Manager) (*rpc.ListConfigsResponse, error) {
		return &rpc.ListConfigsResponse{Configs: m.Control().ListConfigs(req.GetNamePrefix())}, nil
	})
}

func (s *ControlServer) RemoveConfig(ctx context.Context, req *rpc.Ref) (*rpc.Empty, error) {
	return write(ctx, s, func(c *controlapi.Server, done func(*rpc.Empty, error)) { c.RemoveConfig(req.GetRef(), done0(done)) })
}

func (s *ControlServer) CreateNetwork(ctx context.Context, req *api.NetworkSpec) (*api.Network, error) {
	return write(ctx, s, func(c *controlapi.Server, done func(*api.Network, error)) { c.CreateNetwork(req, done) })
}

func (s *ControlServer) GetNetwork(ctx context.Context, req *rpc.Ref) (*api.Network, error) {
	return read(ctx, s, func(m *manager.Manager) (*api.Network, error) { return m.Control().GetNetwork(req.GetRef()) })
}

func (s *ControlServer) ListNetworks(ctx context.Context, req *rpc.ListByNameRequest) (*rpc.ListNetworksResponse, error) {
	return read(ctx, s, func(m *manager.Manager) (*rpc.ListNetworksResponse, error) {
		return &rpc.ListNetworksResponse{Networks: m.Control().ListNetworks(req.GetNamePrefix())}, nil
	})
}

func (s *ControlServer) RemoveNetwork(ctx context.Context, req *rpc.Ref) (*rpc.Empty, error) {
	return write(ctx, s, func(c *controlapi.Server, done func(*rpc.Empty, error)) { c.RemoveNetwork(req.GetRef(), done0(done)) })
}

// ---- the key space

// KVGet reads a key linearizably (a ReadIndex round on this manager).
func (s *ControlServer) KVGet(ctx context.Context, req *rpc.KVGetRequest) (*rpc.KVValue, error) {
	return write(ctx, s, func(_ *controlapi.Server, done func(*rpc.KVValue, error)) {
		s.manager().KVRead(req.GetKey(), func(v string, err error) { done(&rpc.KVValue{Value: v}, err) })
	})
}

// KVPut writes a key; it answers once the write is committed and applied
// here, so an acknowledged write is durable on a quorum.
func (s *ControlServer) KVPut(ctx context.Context, req *rpc.KVPutRequest) (*rpc.Empty, error) {
	return write(ctx, s, func(_ *controlapi.Server, done func(*rpc.Empty, error)) {
		s.manager().KVWrite(req.GetKey(), req.GetValue(), done0(done))
	})
}

// KVCAS sets a key to value if it holds old.
func (s *ControlServer) KVCAS(ctx context.Context, req *rpc.KVCASRequest) (*rpc.KVCASResponse, error) {
	return write(ctx, s, func(_ *controlapi.Server, done func(*rpc.KVCASResponse, error)) {
		s.manager().KVCAS(req.GetKey(), req.GetOld(), req.GetValue(), func(ok bool, err error) {
			done(&rpc.KVCASResponse{Swapped: ok}, err)
		})
	})
}

// ---- autolock, keys and join tokens

// GetUnlockKey returns the cluster's unlock key, "" when autolock is off.
func (s *ControlServer) GetUnlockKey(ctx context.Context, _ *rpc.Empty) (*rpc.UnlockKey, error) {
	return read(ctx, s, func(m *manager.Manager) (*rpc.UnlockKey, error) {
		k, err := m.Control().GetUnlockKey()
		return &rpc.UnlockKey{UnlockKey: k}, err
	})
}

// SetAutolock turns autolock on (keeping the key in force, or taking the
// one given, or drawing one) or off; the answer is the key in force.
func (s *ControlServer) SetAutolock(ctx context.Context, req *rpc.SetAutolockRequest) (*rpc.UnlockKey, error) {
	return write(ctx, s, func(c *controlapi.Server, done func(*rpc.UnlockKey, error)) {
		c.SetAutolock(req.GetAutolock(), req.GetKey(), func(k string, err error) { done(&rpc.UnlockKey{UnlockKey: k}, err) })
	})
}

// RotateUnlockKey replaces the unlock key (a new drawn one when none is
// given).
func (s *ControlServer) RotateUnlockKey(ctx context.Context, req *rpc.RotateUnlockKeyRequest) (*rpc.UnlockKey, error) {
	return write(ctx, s, func(c *controlapi.Server, done func(*rpc.UnlockKey, error)) {
		c.RotateUnlockKey(req.GetKey(), func(k string, err error) { done(&rpc.UnlockKey{UnlockKey: k}, err) })
	})
}

// RotateDataKey makes every manager seal its raft records with a new data
// key from now on.
func (s *ControlServer) RotateDataKey(ctx context.Context, _ *rpc.Empty) (*rpc.RotateDataKeyResponse, error) {
	return write(ctx, s, func(c *controlapi.Server, done func(*rpc.RotateDataKeyResponse, error)) {
		c.RotateDataKey(func(n uint64, err error) { done(&rpc.RotateDataKeyResponse{Rotation: n}, err) })
	})
}

// RotateJoinToken replaces the worker or the manager join token.
func (s *ControlServer) RotateJoinToken(ctx context.Context, req *rpc.RotateJoinTokenRequest) (*api.JoinTokens, error) {
	var role env.Role
	switch req.GetRole() {
	case "worker":
		role = env.RoleWorker
	case "manager":
		role = env.RoleManager
	default:
		return nil, status.Errorf(codes.InvalidArgument, "role %q: want worker or manager", req.GetRole())
	}
	v, err := Call(ctx, s.loop, func(done func(*api.JoinTokens, error)) {
		m := s.manager()
		if m == nil {
			done(nil, ErrNotManager)
			return
		}
		m.CA().RotateJoinToken(role, func(err error) {
			if err != nil {
				done(nil, err)
				return
			}
			// Read from the store, which the committed change reached.
			done(m.Store().Cluster(manager.ClusterID).GetJoinTokens(), nil)
		})
	})
	return v, GRPCError(err)
}

// RotateRootCA starts a root rotation; it answers once the rotation is
// recorded, not finished.
func (s *ControlServer) RotateRootCA(ctx context.Context, _ *rpc.Empty) (*rpc.Empty, error) {
	v, err := Call(ctx, s.loop, func(done func(*rpc.Empty, error)) {
		m := s.manager()
		if m == nil {
			done(nil, ErrNotManager)
			return
		}
		m.CA().RotateRootCA(done0(done))
	})
	return v, GRPCError(err)
}

// UnlockKeyFingerprint names an unlock key without revealing it: the first
// 8 bytes of its SHA-256, in hex ("" for no key). A manager's status gives
// the fingerprint of the key its disk is wrapped under.
func UnlockKeyFingerprint(key string) string {
	if key == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:8])
}
