package daemon

import (
	"context"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/manager"
	"github.com/swarmsim/swarmsim/realnet"
	"github.com/swarmsim/swarmsim/realnet/rpc"
)

// admission is what the join-token check needs from the engine, copied
// on the loop (refreshLoop) for the transport's goroutines to read.
type admission struct {
	// manager: this node runs a manager; otherwise peers are taken at
	// their word (a worker can check no one).
	manager bool
	tokens  *api.JoinTokens
	nodes   map[env.NodeID]knownNode
	members map[env.NodeID]bool
	leader  env.NodeID
}

type knownNode struct {
	manager, removed bool
}

// snapshotAdmission copies what admit needs. Managers are the raft
// members and the managers of the address book: a manager still joining
// knows none from raft, only those its join answer (given for a valid
// manager token) named, and must admit them to hear from its leader.
func snapshotAdmission(m *manager.Manager, initTokens *api.JoinTokens, managers []*rpc.PeerAddress) *admission {
	a := &admission{manager: true, tokens: initTokens, nodes: map[env.NodeID]knownNode{}, members: map[env.NodeID]bool{}}
	st := m.Store()
	if c := st.Cluster(manager.ClusterID); c != nil && c.GetJoinTokens().GetWorker() != "" {
		a.tokens = c.GetJoinTokens()
	}
	for n := range st.EachNode() {
		a.nodes[env.NodeID(n.Id)] = knownNode{
			manager: n.Role == api.NodeRole_NODE_ROLE_MANAGER || n.GetSpec().GetDesiredRole() == api.NodeRole_NODE_ROLE_MANAGER,
			removed: n.Removed,
		}
	}
	for _, mb := range m.Raft().Members() {
		a.members[mb.NodeID] = true
	}
	for _, p := range managers {
		a.members[env.NodeID(p.GetNodeId())] = true
	}
	a.leader = m.LeaderID()
	return a
}

// admit is the join-token check, the Admitter of a node's transport when
// TLS is off. On a manager, a peer is admitted as:
//
//   - refused, if the cluster removed it (its tombstone is in the store);
//   - a manager, if it is a raft member, or the store knows it as a
//     manager or wants it to become one (promotion);
//   - a worker, if the store knows it;
//   - otherwise what its join token grants (compared in constant time),
//     and refused without a valid one.
//
// Roles come from the cluster, never from the peer's claim. The security
// work replaces this with certificates, which carry the role.
func (d *Daemon) admit(h realnet.Hello) (env.Peer, error) {
	a := d.adm.Load()
	if a == nil || !a.manager {
		return realnet.TrustClaims.Admit(h)
	}
	if h.NodeID == "" {
		return env.Peer{}, fmt.Errorf("%w: no node ID in the hello", realnet.ErrUnauthenticated)
	}
	p := env.Peer{ID: h.NodeID}
	n, known := a.nodes[h.NodeID]
	switch {
	case known && n.removed:
		return env.Peer{}, fmt.Errorf("%w: node %s was removed from the cluster", realnet.ErrUnauthenticated, h.NodeID)
	case a.members[h.NodeID] || known && n.manager:
		p.Role = env.RoleManager
	case known:
		p.Role = env.RoleWorker
	default:
		p.Role = realnet.RoleOfToken(h.Token, a.tokens)
		if p.Role == env.RoleNone {
			return env.Peer{}, fmt.Errorf("%w: node %s presented no valid join token", realnet.ErrUnauthenticated, h.NodeID)
		}
	}
	return p, nil
}

// join answers the Peer service's Join: a new node checks its token and
// learns the managers before it starts.
func (d *Daemon) join(ctx context.Context, req *rpc.JoinRequest) (*rpc.JoinResponse, error) {
	a := d.adm.Load()
	if a == nil || !a.manager {
		return nil, status.Error(codes.FailedPrecondition, "this node is not a manager: join through a manager's address")
	}
	if n, ok := a.nodes[env.NodeID(req.GetNodeId())]; ok && n.removed {
		return nil, status.Errorf(codes.PermissionDenied, "node %s was removed from the cluster", req.GetNodeId())
	}
	// The tokens of the store now, not of the last snapshot: a token
	// printed right after a rotation must work at once.
	tokens := a.tokens
	if err := d.loop.Do(ctx, func() {
		if m := d.manager(); m != nil {
			if c := m.Store().Cluster(manager.ClusterID); c != nil && c.GetJoinTokens().GetWorker() != "" {
				tokens = c.GetJoinTokens()
			}
		}
	}); err != nil {
		return nil, realnet.GRPCError(err)
	}
	role := realnet.RoleOfToken(req.GetToken(), tokens)
	if role == env.RoleNone {
		return nil, status.Error(codes.PermissionDenied, "invalid join token")
	}
	return &rpc.JoinResponse{
		NodeId:   string(d.id),
		Manager:  role == env.RoleManager,
		Leader:   string(a.leader),
		Managers: d.tr.Book().Managers(),
	}, nil
}
