package metrics

import (
	"errors"
	"fmt"
	"time"

	"github.com/swarmsim/swarmsim/engine/agent"
	"github.com/swarmsim/swarmsim/engine/allocator"
	"github.com/swarmsim/swarmsim/engine/dispatcher"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/node"
	"github.com/swarmsim/swarmsim/engine/orchestrator"
	"github.com/swarmsim/swarmsim/engine/raft"
	"github.com/swarmsim/swarmsim/engine/scheduler"
	"github.com/swarmsim/swarmsim/engine/store"
)

// Snapshot is one node's statistics at one moment: plain copies of the
// engine components' Stats. A nil component is absent (a worker has no
// raft, store or leader subsystems) and exports nothing.
type Snapshot struct {
	// Up says the node's engine runs. When false, only swarm_node_up (0)
	// is exported and the components are ignored: a crashed simulated
	// machine has no engine to read.
	Up bool

	Raft         *raft.Stats
	RaftStatus   *raft.Status
	Store        *store.Stats
	Scheduler    *scheduler.Stats
	Dispatcher   *dispatcher.Stats
	Orchestrator *orchestrator.Stats
	Allocator    *allocator.Stats
	Agent        *agent.Stats
}

// Source gives a node's statistics when a collector asks (at scrape or
// sample time), never earlier: a collector holds a Source, not the
// components, so a node that restarts with new components is read afresh.
type Source interface {
	Snapshot() (Snapshot, error)
}

// SourceFunc is a Source made of a function.
type SourceFunc func() (Snapshot, error)

// Snapshot calls f.
func (f SourceFunc) Snapshot() (Snapshot, error) { return f() }

// FromNode reads every component of an engine node. It must run where the
// node's state may be read: on the node's loop in real mode (see OnLoop),
// or anywhere between events in the simulator, whose single goroutine runs
// every loop. A nil node (a machine that is down) gives a Snapshot that is
// not Up.
func FromNode(n *node.Node) Snapshot {
	if n == nil {
		return Snapshot{}
	}
	s := Snapshot{Up: true}
	a := n.Agent().Stats()
	s.Agent = &a
	m := n.Manager()
	if m == nil {
		return s
	}
	rs, st := m.Raft().Stats(), m.Raft().Status()
	ss, sch, d := m.Store().Stats(), m.Scheduler().Stats(), m.Dispatcher().Stats()
	o, al := m.Orchestrator().Stats(), m.Allocator().Stats()
	s.Raft, s.RaftStatus, s.Store = &rs, &st, &ss
	s.Scheduler, s.Dispatcher, s.Orchestrator, s.Allocator = &sch, &d, &o, &al
	return s
}

// ErrLoopTimeout is what an OnLoop source reports when the node's loop did
// not run the snapshot in time (it is stuck, or stopped).
var ErrLoopTimeout = errors.New("metrics: the node's loop did not answer in time")

// OnLoop is the Source for real mode, where a node's state belongs to the
// goroutine draining its loop: each Snapshot posts snap to loop and waits
// for its answer at most timeout. snap typically resolves the node when it
// runs, so a restarted engine is picked up:
//
//	src := metrics.OnLoop(loop, func() metrics.Snapshot { return metrics.FromNode(current()) }, 2*time.Second)
//
// A snapshot that is not taken in time is an error (ErrLoopTimeout), which
// the collector turns into an invalid metric: the scrape reports the stuck
// loop instead of serving stale or zero values. The posted function still
// runs later and its answer is dropped.
func OnLoop(loop env.Loop, snap func() Snapshot, timeout time.Duration) Source {
	return SourceFunc(func() (Snapshot, error) {
		ch := make(chan Snapshot, 1) // buffered: a late answer never blocks the loop
		loop.Post(func() { ch <- snap() })
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case s := <-ch:
			return s, nil
		case <-t.C:
			return Snapshot{}, fmt.Errorf("%w (waited %s)", ErrLoopTimeout, timeout)
		}
	})
}
