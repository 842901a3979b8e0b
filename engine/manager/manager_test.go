package manager_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/manager"
	"github.com/swarmsim/swarmsim/engine/raft"
	"github.com/swarmsim/swarmsim/engine/store"
	"github.com/swarmsim/swarmsim/sim"
	"github.com/swarmsim/swarmsim/sim/cluster"
)

func newCluster(t *testing.T, seed uint64, managers, workers []string) (*sim.Kernel, *cluster.Cluster) {
	t.Helper()
	k := sim.NewKernel(seed)
	t.Cleanup(k.Activate())
	c := cluster.NewCluster(k, cluster.ClusterConfig{
		Network:  sim.LinkModel{Latency: sim.Fixed(time.Millisecond)},
		DiskSync: sim.Fixed(time.Millisecond),
		Raft:     raft.Config{Tick: 100 * time.Millisecond, ElectionTicks: 10, HeartbeatTicks: 1},
		Cluster:  &api.ClusterSpec{Name: "test"},
	})
	if err := c.Bootstrap(managers, workers, nil); err != nil {
		t.Fatal(err)
	}
	return k, c
}

func leader(t *testing.T, k *sim.Kernel, c *cluster.Cluster) *cluster.Machine {
	t.Helper()
	var m *cluster.Machine
	k.RunUntil(k.Now()+30*time.Second, func() bool {
		var ok bool
		m, ok = c.Leader()
		return ok
	})
	if m == nil {
		t.Fatal("no leader within 30s")
	}
	return m
}

// call runs f on machine m's loop and runs the kernel until done is
// called.
func call(t *testing.T, k *sim.Kernel, m *cluster.Machine, f func(mgr *manager.Manager, done func())) {
	t.Helper()
	finished := false
	m.Kernel.Post(func() { f(m.Engine.Manager(), func() { finished = true }) })
	k.RunUntil(k.Now()+30*time.Second, func() bool { return finished })
	if !finished {
		t.Fatal("call did not finish within 30s")
	}
}

func TestKeySpaceAcrossManagers(t *testing.T) {
	k, c := newCluster(t, 1, []string{"m1", "m2", "m3"}, nil)
	l := leader(t, k, c)
	var follower *cluster.Machine
	for _, m := range c.Machines() {
		if m != l {
			follower = m
			break
		}
	}
	// A write through a follower is forwarded to the leader.
	call(t, k, follower, func(mgr *manager.Manager, done func()) {
		mgr.KVWrite("k", "v1", func(err error) {
			if err != nil {
				t.Errorf("write via follower: %v", err)
			}
			done()
		})
	})
	// A linearizable read anywhere sees it.
	for _, m := range c.Machines() {
		call(t, k, m, func(mgr *manager.Manager, done func()) {
			mgr.KVRead("k", func(v string, err error) {
				if err != nil || v != "v1" {
					t.Errorf("%s read = %q, %v; want v1", m.Name, v, err)
				}
				done()
			})
		})
	}
	cas := func(m *cluster.Machine, old, val string, want bool) {
		call(t, k, m, func(mgr *manager.Manager, done func()) {
			mgr.KVCAS("k", old, val, func(ok bool, err error) {
				if err != nil || ok != want {
					t.Errorf("cas(%q→%q) on %s = %v, %v; want %v", old, val, m.Name, ok, err, want)
				}
				done()
			})
		})
	}
	cas(follower, "v1", "v2", true)
	cas(l, "v1", "v3", false)
	cas(l, "v2", "v3", true)
	// A missing key reads as "" and a cas from "" creates it.
	cas(follower, "", "fresh", false) // k holds v3
	call(t, k, l, func(mgr *manager.Manager, done func()) {
		mgr.KVCAS("other", "", "x", func(ok bool, err error) {
			if err != nil || !ok {
				t.Errorf("cas on a missing key = %v, %v; want true", ok, err)
			}
			done()
		})
	})
}

func TestAddedManagerJoinsThroughAnyManager(t *testing.T) {
	k, c := newCluster(t, 2, []string{"m1", "m2", "m3"}, nil)
	leader(t, k, c)
	m4, err := c.AddManager("m4", cluster.NodeShape{})
	if err != nil {
		t.Fatal(err)
	}
	k.RunUntil(k.Now()+30*time.Second, func() bool {
		l, ok := c.Leader()
		if !ok {
			return false
		}
		mb, ok := l.Engine.Manager().Raft().MemberByNode("m4")
		return ok && !mb.Learner
	})
	l, _ := c.Leader()
	mb, ok := l.Engine.Manager().Raft().MemberByNode("m4")
	if !ok || mb.Learner || mb.RaftID != m4.RaftID() {
		t.Fatalf("m4 is not a voter with its raft ID: %+v, %v", mb, ok)
	}
}

func TestWorkerMayNotJoinRaftUnpromoted(t *testing.T) {
	k, c := newCluster(t, 3, []string{"m1"}, []string{"w1"})
	l := leader(t, k, c)
	// Wait for w1 to register as a worker.
	k.RunUntil(k.Now()+30*time.Second, func() bool { return l.Engine.Manager().Store().Node("w1") != nil })
	w1 := c.Machine("w1")
	var resp *api.RaftJoinResponse
	w1.Endpoint.SetHandler(func(from env.Peer, m env.Message) {
		if r, ok := m.(*api.RaftJoinResponse); ok {
			resp = r
		}
	})
	w1.Kernel.Post(func() {
		w1.Endpoint.Send("m1", &api.RaftJoinRequest{RequestId: 7, Member: &api.RaftMember{RaftId: 99, NodeId: "w1"}})
	})
	k.RunUntil(k.Now()+5*time.Second, func() bool { return resp != nil })
	// A worker's certificate may not use raft membership at all: the
	// request is refused before it reaches the manager (no answer), or
	// answered with an error.
	if resp != nil && resp.GetError() == "" {
		t.Fatalf("an unpromoted worker was let into raft: %v", resp)
	}
	if _, ok := l.Engine.Manager().Raft().MemberByNode("w1"); ok {
		t.Fatal("w1 became a raft member")
	}
}

// promote waits for a leader and for worker name to register, and has
// the leader promote it.
func promote(t *testing.T, k *sim.Kernel, c *cluster.Cluster, name string) {
	t.Helper()
	l := leader(t, k, c)
	k.RunUntil(k.Now()+30*time.Second, func() bool { return l.Engine.Manager().Store().Node(name) != nil })
	call(t, k, l, func(mgr *manager.Manager, done func()) {
		mgr.Control().PromoteNode(name, func(_ *api.Node, err error) {
			if err != nil {
				t.Errorf("promote %s: %v", name, err)
			}
			done()
		})
	})
}

func TestPromoteThenDemote(t *testing.T) {
	k, c := newCluster(t, 4, []string{"m1", "m2", "m3"}, []string{"w1"})
	promote(t, k, c, "w1")
	voter := func(name string) bool {
		l, ok := c.Leader()
		if !ok {
			return false
		}
		mb, ok := l.Engine.Manager().Raft().MemberByNode(env.NodeID(name))
		return ok && !mb.Learner
	}
	k.RunUntil(k.Now()+30*time.Second, func() bool {
		l, ok := c.Leader()
		return ok && voter("w1") && l.Engine.Manager().Store().Node("w1").GetRole() == api.NodeRole_NODE_ROLE_MANAGER
	})
	if !voter("w1") || !c.Machine("w1").Manager {
		t.Fatal("promoted w1 does not vote")
	}
	l, _ := c.Leader()
	call(t, k, l, func(mgr *manager.Manager, done func()) {
		mgr.Control().DemoteNode("w1", func(_ *api.Node, err error) {
			if err != nil {
				t.Errorf("demote: %v", err)
			}
			done()
		})
	})
	k.RunUntil(k.Now()+30*time.Second, func() bool {
		l, ok := c.Leader()
		return ok && l.Engine.Manager().Store().Node("w1").GetRole() == api.NodeRole_NODE_ROLE_WORKER
	})
	l, _ = c.Leader()
	if _, ok := l.Engine.Manager().Raft().MemberByNode("w1"); ok || c.Machine("w1").Manager {
		t.Fatal("demoted w1 is still a raft member")
	}
	if c.Machine("w1").Engine.Manager() != nil {
		t.Fatal("demoted w1 still runs a manager")
	}
}

// TestMemberRecordedAsWorkerLeaves: a raft member whose node is recorded
// as a worker that is to stay one (its promotion cancelled after it had
// joined raft, before the role was recorded) is taken out of raft, though
// its role and desired role agree.
func TestMemberRecordedAsWorkerLeaves(t *testing.T) {
	k, c := newCluster(t, 5, []string{"m1", "m2", "m3"}, []string{"w1"})
	promote(t, k, c, "w1")
	member := func() bool {
		l, ok := c.Leader()
		if !ok {
			return true // no leader to ask: not done yet
		}
		_, ok = l.Engine.Manager().Raft().MemberByNode("w1")
		return ok
	}
	k.RunUntil(k.Now()+30*time.Second, member)
	if !member() {
		t.Fatal("promoted w1 did not join raft")
	}
	l, _ := c.Leader()
	call(t, k, l, func(mgr *manager.Manager, done func()) {
		mgr.Store().Update(func(tx *store.Tx) error {
			n := tx.Node("w1").ShallowCopy()
			n.Role = api.NodeRole_NODE_ROLE_WORKER
			spec := proto.Clone(n.Spec).(*api.NodeSpec)
			spec.DesiredRole = api.NodeRole_NODE_ROLE_WORKER
			n.Spec = spec
			return tx.Update(n)
		}, func(err error) {
			if err != nil {
				t.Errorf("recording w1 as a worker: %v", err)
			}
			done()
		})
	})
	k.RunUntil(k.Now()+30*time.Second, func() bool { return !member() })
	if member() {
		t.Fatal("w1, recorded as a worker, is still a raft member")
	}
}
