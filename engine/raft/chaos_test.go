package raft_test

import (
	"fmt"
	"testing"
	"time"

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
	forSeeds(t, 31, func(t *testing.T, k *sim.Kernel) {
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
				m.r.Propose([]byte(key+"=v"), func(_ any, err error) {
					inflight--
					if err == nil {
						acked[key] = true
					}
				})
			}
		}

		var actions []string
		end := k.Now() + 60*time.Second
		for k.Now() < end {
			switch rnd.Int63n(8) {
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
		c.waitConverged(l)
		missing := 0
		for key := range acked {
			for _, m := range c.ms {
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
	})
}
