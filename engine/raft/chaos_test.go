package raft_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/raft"
	"github.com/swarmsim/swarmsim/sim"
)

// TestChaos runs a safety phase of random faults (crashes with disk loss
// of unsynced writes, restarts, partitions, lossy and duplicating links)
// while a client writes through random members, then a liveness phase
// that heals everything and demands convergence. The checker enforces one
// leader per term and that an applied index never changes contents; at
// the end every write the client saw acknowledged must be on every
// replica.
func TestChaos(t *testing.T) {
	forSeeds(t, 31, func(t *testing.T, k *sim.Kernel) { chaos(t, k, false) })
}

// TestChaosMembership is TestChaos with membership churn on top: fresh
// machines are added, followers and leaders remove others and themselves.
// Members outside the final configuration are left out of the end check.
func TestChaosMembership(t *testing.T) {
	forSeeds(t, 41, func(t *testing.T, k *sim.Kernel) { chaos(t, k, true) })
}

func chaos(t *testing.T, k *sim.Kernel, churn bool) {
	cfg := testConfig()
	cfg.SnapshotEntries = 64
	cfg.LogTailEntries = 16
	c := newCluster(t, k, 5, cfg)
	c.waitLeader()
	rnd := k.NewRand("nemesis")
	lossy := sim.LinkModel{
		Latency:   sim.Range{Min: time.Millisecond, Max: 20 * time.Millisecond},
		Loss:      0.1,
		Duplicate: 0.05,
		Reorder:   true,
	}

	acked := map[string]bool{}
	writes := 0
	inflight := 0
	client := func() {
		for inflight < 8 {
			m := c.ms[rnd.Int63n(int64(len(c.ms)))]
			if !m.running() {
				return
			}
			key := fmt.Sprintf("w%d", writes)
			writes++
			inflight++
			m.r.Propose([]byte(key+"=v"), raft.DoneFunc(func(_ any, err error) {
				inflight--
				if err == nil {
					acked[key] = true
				}
			}))
		}
	}

	var actions []string
	joined := 0
	end := k.Now() + 60*time.Second
	for k.Now() < end {
		action := rnd.Int63n(8)
		if churn && rnd.Int63n(3) == 0 {
			action = 8 + rnd.Int63n(2)
		}
		switch action {
		case 8: // add a fresh machine
			l := c.leader()
			if l == nil || len(l.r.Members()) >= 7 {
				break
			}
			joined++
			m := c.addMachine(env.NodeID(fmt.Sprintf("j%d", joined)))
			m.start()
			l.r.AddMember(raft.Member{RaftID: m.rid, NodeID: m.name}, func(error) {})
			actions = append(actions, "add "+string(m.name))
		case 9: // remove a member, the leader itself now and then
			l := c.leader()
			if l == nil || len(l.r.Members()) <= 3 {
				break
			}
			ms := l.r.Members()
			victim := ms[rnd.Int63n(int64(len(ms)))]
			l.r.RemoveMember(victim.RaftID, func(error) {})
			actions = append(actions, "remove "+string(victim.NodeID))
		case 0, 1:
			m := c.ms[rnd.Int63n(int64(len(c.ms)))]
			if m.r != nil {
				m.crash()
				actions = append(actions, "crash "+string(m.name))
			}
		case 2, 3:
			for _, m := range c.ms {
				if m.r == nil {
					m.restart()
					actions = append(actions, "restart "+string(m.name))
					break
				}
			}
		case 4:
			var a, b []*sim.Node
			for _, m := range c.ms {
				if rnd.Int63n(2) == 0 {
					a = append(a, m.sn)
				} else {
					b = append(b, m.sn)
				}
			}
			c.net.Partition([][]*sim.Node{a, b})
			actions = append(actions, "partition")
		case 5:
			for _, x := range c.ms {
				for _, y := range c.ms {
					if x != y && rnd.Int63n(3) == 0 {
						c.net.SetLink(x.sn, y.sn, lossy)
					}
				}
			}
			actions = append(actions, "lossy links")
		default:
			c.net.Heal()
			actions = append(actions, "heal")
		}
		step := k.Now() + time.Duration(500+rnd.Int63n(2500))*time.Millisecond
		for k.Now() < step {
			client()
			k.RunUntil(k.Now()+20*time.Millisecond, nil)
		}
	}

	// Liveness: heal everything, bring everyone back, and converge.
	c.net.Heal()
	for _, x := range c.ms {
		for _, y := range c.ms {
			if x != y {
				c.net.SetLink(x.sn, y.sn, defaultLink)
			}
		}
	}
	for _, m := range c.ms {
		if m.r == nil {
			m.restart()
		}
	}
	l := c.waitLeader()
	c.write(l, "final=1")
	// Members outside the configuration (removed, or fresh machines
	// whose addition failed) have nothing to converge on.
	for _, m := range c.ms {
		if m.running() && !l.r.Status().HasMember(m.rid) {
			m.r.Stop()
		}
	}
	c.waitConverged(l)
	missing := 0
	for key := range acked {
		for _, m := range c.ms {
			if !m.running() {
				continue
			}
			if _, ok := m.sm.M[key]; !ok {
				missing++
				if missing <= 5 {
					t.Errorf("acknowledged write %s missing on %s", key, m.name)
				}
			}
		}
	}
	if len(acked) < 20 {
		t.Errorf("only %d of %d writes acknowledged; the client barely ran (actions %v)", len(acked), writes, actions)
	}
	if st := l.r.Status(); len(st.Voters) < 3 {
		t.Errorf("final configuration has %d voters", len(st.Voters))
	}
}
