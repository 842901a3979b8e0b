package manager

import (
	"errors"
	"slices"
	"time"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/raft"
	"github.com/swarmsim/swarmsim/engine/store"
)

// roleRetry is how often the leader looks again at nodes whose role does
// not match their desired role yet (a promoted node still catching up, a
// demotion refused because it would cost the quorum).
const roleRetry = time.Second

// roles is the leader-only reconciler of node roles with raft membership.
// Promotion and demotion (the control API) only set a node's desired
// role. A promoted node hears it from the dispatcher, starts a manager and
// asks to join raft; once it votes, roles records it as a manager. A
// demoted manager is removed from raft here (refused, and retried later,
// while that would leave fewer reachable voters than a quorum), then
// recorded as a worker.
type roles struct {
	m       *Manager
	running bool
	epoch   uint64
	cancel  func()
	timer   env.Timer
	posted  bool
	// removing holds the raft IDs whose removal is in flight.
	removing map[uint64]bool
	writing  bool
	// mismatched holds the IDs of the nodes whose role and desired role
	// disagree (mismatched), kept from the store's change feed so that a
	// pass looks at those few and not at every node: a registration or
	// status write per worker would otherwise cost a pass over all of
	// them, quadratic while a large cluster joins. rescan asks the next
	// pass to rebuild it from the whole store (at start, after a restore).
	mismatched map[string]bool
	rescan     bool
}

func newRoles(m *Manager) *roles {
	return &roles{m: m, removing: map[uint64]bool{}, mismatched: map[string]bool{}}
}

// mismatched reports whether a pass has anything to do about n: a node
// that should be a manager and is not recorded as one, or the reverse.
func mismatched(n *api.Node) bool {
	if n == nil || n.GetRemoved() {
		return false
	}
	desired, role := n.GetSpec().GetDesiredRole(), n.GetRole()
	return (desired == api.NodeRole_NODE_ROLE_MANAGER) != (role == api.NodeRole_NODE_ROLE_MANAGER)
}

func (r *roles) Start() {
	if r.running {
		return
	}
	r.running = true
	r.epoch++
	r.rescan = true
	r.cancel = r.m.store.WatchKinds(store.KindSetOf(store.KindNode), func(evs []store.Event) {
		kick := false
		for _, ev := range evs {
			switch ev.Kind {
			case store.KindNone:
				r.rescan, kick = true, true
			case store.KindNode:
				// Any node change kicks, as a raft membership change
				// waits for one (or the retry) to be looked at again.
				kick = true
				if n, _ := ev.New.(*api.Node); mismatched(n) {
					r.mismatched[ev.ID] = true
				} else {
					delete(r.mismatched, ev.ID)
				}
			}
		}
		if kick {
			r.kick()
		}
	})
	r.kick()
}

func (r *roles) Stop() {
	if !r.running {
		return
	}
	r.running = false
	r.epoch++
	r.cancel()
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	r.posted, r.writing = false, false
	clear(r.removing)
	clear(r.mismatched)
}

func (r *roles) kick() {
	if r.posted || !r.running {
		return
	}
	r.posted = true
	epoch := r.epoch
	r.m.env.Loop.Post(func() {
		if r.epoch == epoch {
			r.posted = false
			r.pass()
		}
	})
}

func (r *roles) later() {
	if r.timer != nil || !r.running {
		return
	}
	epoch := r.epoch
	r.timer = r.m.env.Clock.AfterFunc(roleRetry, func() {
		r.timer = nil
		if r.epoch == epoch {
			r.kick()
		}
	})
}

// pass compares the role of every node whose role and desired role
// disagree with the raft membership, and acts on the differences.
func (r *roles) pass() {
	if r.writing {
		return // the answer of the write in flight kicks again
	}
	if r.rescan {
		r.rescan = false
		clear(r.mismatched)
		for n := range r.m.store.EachNode() {
			if mismatched(n) {
				r.mismatched[n.GetId()] = true
			}
		}
	}
	ids := make([]string, 0, len(r.mismatched))
	for id := range r.mismatched {
		ids = append(ids, id)
	}
	slices.Sort(ids) // the store's order, which the writes follow
	members := r.m.raft.Members()
	voter := func(id env.NodeID) (raft.Member, bool) {
		i := slices.IndexFunc(members, func(mb raft.Member) bool { return mb.NodeID == id })
		if i < 0 {
			return raft.Member{}, false
		}
		return members[i], true
	}
	var toManager, toWorker []string
	waiting := false
	for _, id := range ids {
		n := r.m.store.Node(id)
		if !mismatched(n) {
			delete(r.mismatched, id)
			continue
		}
		desired, role := n.GetSpec().GetDesiredRole(), n.GetRole()
		mb, isMember := voter(env.NodeID(n.GetId()))
		switch {
		case desired == api.NodeRole_NODE_ROLE_MANAGER && role != api.NodeRole_NODE_ROLE_MANAGER:
			if isMember && !mb.Learner {
				toManager = append(toManager, n.GetId())
			} else {
				waiting = true // the node joins on its own
			}
		case desired == api.NodeRole_NODE_ROLE_WORKER && role == api.NodeRole_NODE_ROLE_MANAGER:
			if !isMember {
				toWorker = append(toWorker, n.GetId())
				continue
			}
			waiting = true
			if !r.removing[mb.RaftID] {
				r.remove(mb)
			}
		}
	}
	// A member whose node is to be a worker and is recorded as one: a
	// promotion cancelled (a demotion) after the node joined raft but
	// before its role was recorded. Its role and desired role agree, so
	// nothing above sees it; it leaves raft as a demoted manager does.
	for _, mb := range members {
		n := r.m.store.Node(string(mb.NodeID))
		if n == nil || n.GetRemoved() || n.GetRole() == api.NodeRole_NODE_ROLE_MANAGER ||
			n.GetSpec().GetDesiredRole() != api.NodeRole_NODE_ROLE_WORKER {
			continue
		}
		waiting = true
		if !r.removing[mb.RaftID] {
			r.remove(mb)
		}
	}
	if len(toManager)+len(toWorker) > 0 {
		r.record(toManager, toWorker)
	}
	if waiting {
		r.later()
	}
}

// remove takes a demoted manager out of raft. A refusal (quorum at risk,
// no leader) is retried on the next pass.
func (r *roles) remove(mb raft.Member) {
	r.removing[mb.RaftID] = true
	epoch := r.epoch
	r.m.raft.RemoveMember(mb.RaftID, func(err error) {
		if r.epoch != epoch {
			return
		}
		delete(r.removing, mb.RaftID)
		if err != nil && !errors.Is(err, raft.ErrUnknownMember) {
			r.m.log.Info("demotion waits", "node", mb.NodeID, "err", err)
			r.later()
			return
		}
		r.kick()
	})
}

// record writes the roles that membership now backs.
func (r *roles) record(toManager, toWorker []string) {
	r.writing = true
	epoch := r.epoch
	r.m.store.Update(func(tx *store.Tx) error {
		set := func(id string, role api.NodeRole) error {
			n := tx.Node(id)
			if n == nil || n.GetRole() == role {
				return nil
			}
			c := n.ShallowCopy()
			c.Role = role
			if role == api.NodeRole_NODE_ROLE_WORKER {
				c.ManagerStatus = nil
			} else if mb, ok := r.m.raft.MemberByNode(env.NodeID(id)); ok {
				c.ManagerStatus = &api.ManagerStatus{RaftId: mb.RaftID, Addr: mb.Addr, Reachable: true}
			}
			return tx.Update(c)
		}
		for _, id := range toManager {
			if err := set(id, api.NodeRole_NODE_ROLE_MANAGER); err != nil {
				return err
			}
		}
		for _, id := range toWorker {
			if err := set(id, api.NodeRole_NODE_ROLE_WORKER); err != nil {
				return err
			}
		}
		return nil
	}, func(err error) {
		if r.epoch != epoch {
			return
		}
		r.writing = false
		if err != nil {
			r.later() // a concurrent change to a node: look again
			return
		}
		r.kick()
	})
}
