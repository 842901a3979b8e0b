package daemon

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/manager"
	"github.com/swarmsim/swarmsim/realnet"
	"github.com/swarmsim/swarmsim/realnet/rpc"
)

// daemonServer is the Daemon service: the node's own administration.
type daemonServer struct {
	rpc.UnimplementedDaemonServer
	d *Daemon
	// local: served on the node's local socket, to its operator.
	local bool
}

// Status says what this node is, from its loop.
func (s *daemonServer) Status(ctx context.Context, _ *rpc.Empty) (*rpc.StatusResponse, error) {
	var out *rpc.StatusResponse
	if err := s.d.loop.Do(ctx, func() { out = s.d.status(s.local) }); err != nil {
		return nil, realnet.GRPCError(err)
	}
	return out, nil
}

// status runs on the loop. Only the local socket's caller hears the
// unlock key's fingerprint: a passphrase set as the key could be guessed
// from it offline.
func (d *Daemon) status(local bool) *rpc.StatusResponse {
	out := &rpc.StatusResponse{NodeId: string(d.id), Role: "worker", DataDir: d.opts.DataDir}
	if addr, ok := d.tr.Book().Lookup(d.id); ok {
		out.Addr = addr
	}
	if d.node == nil {
		return out
	}
	if d.node.Locked() {
		out.Role, out.Locked = "manager", true
		return out
	}
	a := d.node.Agent()
	out.SessionManager = string(a.Manager())
	out.SessionOpen = a.SessionID() != ""
	for _, m := range a.Managers() {
		out.Managers = append(out.Managers, string(m))
	}
	m := d.node.Manager()
	if m == nil {
		return out
	}
	st := m.Raft().Status()
	out.Role = "manager"
	out.Leader = string(st.Leader)
	out.IsLeader = m.IsLeader()
	out.RaftId, out.Term, out.Applied, out.Commit = st.RaftID, st.Term, st.Applied, st.Commit
	for _, mb := range m.Raft().Members() {
		out.Members = append(out.Members, &rpc.RaftMemberStatus{
			RaftId: mb.RaftID, NodeId: string(mb.NodeID), Addr: mb.Addr, Learner: mb.Learner, Leader: mb.RaftID == st.LeaderID,
		})
	}
	if c := m.Store().Cluster(manager.ClusterID); c != nil {
		out.ClusterId = c.Id
	}
	if disk := d.node.Disk(); disk != nil && local {
		out.UnlockKeyFingerprint = realnet.UnlockKeyFingerprint(disk.UnlockKey())
		out.KeysDurable = disk.KeysDurable()
	}
	return out
}

// AppliedDigests hashes the entries this manager applied, block by block.
func (s *daemonServer) AppliedDigests(ctx context.Context, _ *rpc.Empty) (*rpc.AppliedDigestsResponse, error) {
	var out *rpc.AppliedDigestsResponse
	if err := s.d.loop.Do(ctx, func() {
		if s.d.manager() != nil && s.d.digests != nil {
			out = &rpc.AppliedDigestsResponse{Block: digestBlock, Digests: s.d.digests.digests()}
		}
	}); err != nil {
		return nil, realnet.GRPCError(err)
	}
	if out == nil {
		return nil, status.Error(codes.FailedPrecondition, "this node is not a manager: it applies no raft entries")
	}
	return out, nil
}

// LedTerms lists the terms this manager became leader in.
func (s *daemonServer) LedTerms(ctx context.Context, _ *rpc.Empty) (*rpc.LedTermsResponse, error) {
	var out *rpc.LedTermsResponse
	if err := s.d.loop.Do(ctx, func() {
		if s.d.manager() != nil && s.d.led != nil {
			out = &rpc.LedTermsResponse{Terms: s.d.led.terms()}
		}
	}); err != nil {
		return nil, realnet.GRPCError(err)
	}
	if out == nil {
		return nil, status.Error(codes.FailedPrecondition, "this node is not a manager: it leads no raft term")
	}
	return out, nil
}

// JoinTokens returns the cluster's join tokens; managers only.
func (s *daemonServer) JoinTokens(ctx context.Context, _ *rpc.Empty) (*api.JoinTokens, error) {
	var out *api.JoinTokens
	err := s.d.loop.Do(ctx, func() {
		if m := s.d.manager(); m != nil {
			if c := m.Store().Cluster(manager.ClusterID); c != nil && c.GetJoinTokens().GetWorker() != "" {
				out = c.GetJoinTokens()
				return
			}
			out = s.d.initTokens
		}
	})
	if err != nil {
		return nil, realnet.GRPCError(err)
	}
	if out == nil {
		return nil, status.Error(codes.FailedPrecondition, "this node is not a manager, or does not know the join tokens yet")
	}
	return out, nil
}

// Leave makes the node leave: a worker at once; a manager only with force,
// after the leader removed it from raft. The daemon then stops and forgets
// its state.
func (s *daemonServer) Leave(ctx context.Context, req *rpc.LeaveRequest) (*rpc.Empty, error) {
	d := s.d
	var isManager, isLeader bool
	var leader env.NodeID
	if err := d.loop.Do(ctx, func() {
		if m := d.manager(); m != nil {
			isManager, isLeader, leader = true, m.IsLeader(), m.LeaderID()
		}
	}); err != nil {
		return nil, realnet.GRPCError(err)
	}
	if isManager {
		if !req.GetForce() {
			return nil, status.Error(codes.FailedPrecondition,
				"this node is a manager: demote it first (swarmd node demote), or leave with --force, which removes it from raft (refused if that would cost the quorum)")
		}
		if err := d.removeSelf(ctx, isLeader, leader); err != nil {
			return nil, err
		}
	}
	d.leaving.Store(true)
	d.log.Info("leaving the cluster")
	go func() {
		time.Sleep(100 * time.Millisecond) // let the answer reach the caller
		d.Stop()
	}()
	return &rpc.Empty{}, nil
}

// removeSelf takes this manager out of raft, through the leader.
func (d *Daemon) removeSelf(ctx context.Context, isLeader bool, leader env.NodeID) error {
	if isLeader {
		_, err := realnet.Call(ctx, d.loop, func(done func(struct{}, error)) {
			m := d.manager()
			if m == nil {
				done(struct{}{}, nil)
				return
			}
			m.RemoveManager(d.id, func(err error) { done(struct{}{}, err) })
		})
		return realnet.GRPCError(err)
	}
	if leader == "" {
		return status.Error(codes.Unavailable, "no leader is known: cannot leave the raft group now")
	}
	addr, ok := d.tr.Book().Lookup(leader)
	if !ok {
		return status.Errorf(codes.Unavailable, "the leader %s has no known address", leader)
	}
	conn, err := grpc.NewClient(addr, realnet.DialOptions(d.tls, 0)...)
	if err != nil {
		return status.Errorf(codes.Unavailable, "dial the leader at %s: %v", addr, err)
	}
	defer conn.Close()
	ctx = metadata.AppendToOutgoingContext(ctx, realnet.HeaderNodeID, string(d.id), realnet.HeaderRole, "manager")
	if _, err := rpc.NewDaemonClient(conn).RemoveManager(ctx, &rpc.Ref{Ref: string(d.id)}); err != nil {
		return err
	}
	return nil
}

// RemoveManager takes a manager out of raft; it must reach the leader.
func (s *daemonServer) RemoveManager(ctx context.Context, req *rpc.Ref) (*rpc.Empty, error) {
	_, err := realnet.Call(ctx, s.d.loop, func(done func(struct{}, error)) {
		m := s.d.manager()
		if m == nil {
			done(struct{}{}, realnet.ErrNotManager)
			return
		}
		m.RemoveManager(env.NodeID(req.GetRef()), func(err error) { done(struct{}{}, err) })
	})
	if err != nil {
		return nil, realnet.GRPCError(fmt.Errorf("remove manager %s: %w", req.GetRef(), err))
	}
	return &rpc.Empty{}, nil
}
