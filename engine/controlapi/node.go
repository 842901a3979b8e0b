package controlapi

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/store"
)

// NodeFilter selects nodes in ListNodes; zero fields select all live
// nodes.
type NodeFilter struct {
	// NamePrefix matches the node's name or, when it has none, its
	// hostname.
	NamePrefix string
	// Roles, when not empty, lists the current roles wanted.
	Roles []api.NodeRole
	// Labels must all be on the node's spec; an empty value only asks for
	// the key.
	Labels map[string]string
	// IncludeRemoved lists removed nodes' tombstones too.
	IncludeRemoved bool
}

// GetNode returns a node by ID, name or hostname, from the local store.
// A removed node's tombstone is found by ID only.
func (s *Server) GetNode(ref string) (*api.Node, error) {
	return lookupNode(s.st, ref)
}

// ListNodes returns the nodes f selects, in ID order, from the local store.
func (s *Server) ListNodes(f NodeFilter) []*api.Node {
	var out []*api.Node
	for n := range s.st.EachNode() {
		if n.Removed && !f.IncludeRemoved {
			continue
		}
		if f.NamePrefix != "" && !strings.HasPrefix(nodeName(n), f.NamePrefix) {
			continue
		}
		if len(f.Roles) > 0 && !containsRole(f.Roles, n.Role) {
			continue
		}
		if !matchLabels(n.GetSpec().GetLabels(), f.Labels) {
			continue
		}
		out = append(out, n)
	}
	return out
}

func containsRole(rs []api.NodeRole, r api.NodeRole) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}

func nodeName(n *api.Node) string {
	if name := n.GetSpec().GetName(); name != "" {
		return name
	}
	return n.GetDescription().GetHostname()
}

// UpdateNode replaces a node's spec. version is the node's meta.version as
// the caller read it (optimistic concurrency). A demotion (desired_role
// from manager to worker) is refused when it would remove the last manager
// or leave fewer reachable managers than a quorum of those that remain;
// the raft membership change itself is the manager layer's, once the spec
// says so.
func (s *Server) UpdateNode(ref string, version uint64, spec *api.NodeSpec, done func(*api.Node, error)) {
	if err := api.ValidateNodeSpec(spec); err != nil {
		done(nil, invalidSpec("node", err))
		return
	}
	spec = proto.Clone(spec).(*api.NodeSpec)
	var result *api.Node
	s.st.Update(func(tx *store.Tx) error {
		cur, err := liveNode(tx, ref)
		if err != nil {
			return err
		}
		if v := cur.GetMeta().GetVersion(); v != version {
			return outOfSequence("node", nodeName(cur), v, version)
		}
		result, err = s.updateNodeSpec(tx, cur, spec)
		return err
	}, func(err error) {
		if err != nil {
			done(nil, storeError(fmt.Sprintf("update node %q", ref), err))
			return
		}
		done(s.storedNode(result), nil)
	})
}

// updateNodeSpec records cur with spec, after the demotion checks. An
// unchanged spec writes nothing.
func (s *Server) updateNodeSpec(tx *store.Tx, cur *api.Node, spec *api.NodeSpec) (*api.Node, error) {
	if proto.Equal(cur.Spec, spec) {
		return cur, nil
	}
	if spec.DesiredRole == api.NodeRole_NODE_ROLE_WORKER && cur.GetSpec().GetDesiredRole() == api.NodeRole_NODE_ROLE_MANAGER {
		if err := s.checkDemotion(tx, cur); err != nil {
			return nil, err
		}
	}
	c := cur.ShallowCopy()
	c.Spec = spec
	return c, tx.Update(c)
}

// checkDemotion refuses to demote the last manager, or a manager whose
// departure leaves fewer reachable managers than a quorum of the managers
// that stay (raft could then commit nothing, not even the removal).
// Managers are the live nodes whose role is manager; those already asked
// to step down do not count as staying.
func (s *Server) checkDemotion(r store.Reader, n *api.Node) error {
	if n.Role != api.NodeRole_NODE_ROLE_MANAGER {
		return nil // a promotion not carried out yet: cancelling it is safe
	}
	staying, reachable := 0, 0
	for _, m := range r.Nodes() {
		if m.Removed || m.Id == n.Id || m.Role != api.NodeRole_NODE_ROLE_MANAGER ||
			m.GetSpec().GetDesiredRole() != api.NodeRole_NODE_ROLE_MANAGER {
			continue
		}
		staying++
		if s.managerReachable(m) {
			reachable++
		}
	}
	name := nodeName(n)
	if staying == 0 {
		return errorf(ErrFailedPrecondition, nil, "cannot demote %s: it is the last manager", name)
	}
	if quorum := staying/2 + 1; reachable < quorum {
		return errorf(ErrFailedPrecondition, nil,
			"cannot demote %s: of the %d managers that would remain, %d are reachable, short of the quorum of %d",
			name, staying, reachable, quorum)
	}
	return nil
}

// managerReachable: what raft says of the manager on the leader (see
// SetReachability); else its recorded manager status, or, before any is
// recorded, whether the node is ready.
func (s *Server) managerReachable(n *api.Node) bool {
	if s.reach != nil {
		if r, ok := s.reach(n.Id); ok {
			return r
		}
	}
	if ms := n.GetManagerStatus(); ms != nil {
		return ms.Reachable
	}
	return n.GetStatus().GetState() == api.NodeState_NODE_STATE_READY
}

func (s *Server) storedNode(n *api.Node) *api.Node {
	if cur := s.st.Node(n.Id); cur != nil {
		return cur
	}
	return n
}

// editNode changes one thing of a node's spec, as it is now (no version:
// these are the operator's one-word commands).
func (s *Server) editNode(ref, what string, edit func(spec *api.NodeSpec), done func(*api.Node, error)) {
	var result *api.Node
	s.update(func(tx *store.Tx) error {
		cur, err := liveNode(tx, ref)
		if err != nil {
			return err
		}
		spec := proto.Clone(cur.GetSpec()).(*api.NodeSpec)
		if cur.Spec == nil {
			spec = &api.NodeSpec{}
		}
		edit(spec)
		result, err = s.updateNodeSpec(tx, cur, spec)
		return err
	}, func(err error) {
		if err != nil {
			done(nil, storeError(fmt.Sprintf("%s node %q", what, ref), err))
			return
		}
		done(s.storedNode(result), nil)
	})
}

// DrainNode sets a node's availability to drain: its tasks are moved off
// and none is scheduled there.
func (s *Server) DrainNode(ref string, done func(*api.Node, error)) {
	s.editNode(ref, "drain", func(spec *api.NodeSpec) { spec.Availability = api.NodeAvailability_NODE_AVAILABILITY_DRAIN }, done)
}

// PauseNode sets a node's availability to pause: its tasks stay, no new
// one is scheduled there.
func (s *Server) PauseNode(ref string, done func(*api.Node, error)) {
	s.editNode(ref, "pause", func(spec *api.NodeSpec) { spec.Availability = api.NodeAvailability_NODE_AVAILABILITY_PAUSE }, done)
}

// ActivateNode sets a node's availability back to active.
func (s *Server) ActivateNode(ref string, done func(*api.Node, error)) {
	s.editNode(ref, "activate", func(spec *api.NodeSpec) { spec.Availability = api.NodeAvailability_NODE_AVAILABILITY_ACTIVE }, done)
}

// PromoteNode asks for a node to become a manager (spec.desired_role);
// the manager layer adds it to raft.
func (s *Server) PromoteNode(ref string, done func(*api.Node, error)) {
	s.editNode(ref, "promote", func(spec *api.NodeSpec) { spec.DesiredRole = api.NodeRole_NODE_ROLE_MANAGER }, done)
}

// DemoteNode asks for a manager to become a worker, under UpdateNode's
// safety checks; the manager layer removes it from raft.
func (s *Server) DemoteNode(ref string, done func(*api.Node, error)) {
	s.editNode(ref, "demote", func(spec *api.NodeSpec) { spec.DesiredRole = api.NodeRole_NODE_ROLE_WORKER }, done)
}

// RemoveNode removes a node from the cluster. It is refused for a
// manager (demote it first) and, unless force, for a node that is READY.
// The node stays as a tombstone (removed, down, drained) so that its
// certificate is refused from now on; its tasks are the orchestrator's to
// replace.
func (s *Server) RemoveNode(ref string, force bool, done func(error)) {
	s.update(func(tx *store.Tx) error {
		cur, err := liveNode(tx, ref)
		if err != nil {
			return err
		}
		name := nodeName(cur)
		if cur.Role == api.NodeRole_NODE_ROLE_MANAGER || cur.GetSpec().GetDesiredRole() == api.NodeRole_NODE_ROLE_MANAGER {
			return errorf(ErrFailedPrecondition, nil, "node %s is a manager: demote it before removing it", name)
		}
		if !force && cur.GetStatus().GetState() == api.NodeState_NODE_STATE_READY {
			return errorf(ErrFailedPrecondition, nil, "node %s is ready: stop it first, or remove it with force", name)
		}
		c := cur.ShallowCopy()
		c.Removed = true
		spec := proto.Clone(cur.GetSpec()).(*api.NodeSpec)
		if cur.Spec == nil {
			spec = &api.NodeSpec{}
		}
		spec.Availability = api.NodeAvailability_NODE_AVAILABILITY_DRAIN
		c.Spec = spec
		st := cur.GetStatus().ShallowCopy()
		if st == nil {
			st = &api.NodeStatus{}
		}
		st.State, st.Message, st.Timestamp = api.NodeState_NODE_STATE_DOWN, "removed from the cluster", tx.Timestamp()
		c.Status = st
		return tx.Update(c)
	}, func(err error) {
		done(storeError(fmt.Sprintf("remove node %q", ref), err))
	})
}
