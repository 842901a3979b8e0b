package store

import "github.com/swarmsim/swarmsim/engine/env"

// StateMachine is what a Loopback applies to: a Store, or anything with
// the same Apply.
type StateMachine interface {
	Apply(index uint64, data []byte, own Proposal) (result any, err error)
	AppliedIndex() uint64
}

// Loopback is a Proposer that applies every proposal to one state machine
// through the real codec and Apply path, at index AppliedIndex()+1, with no
// raft in between: a single-node store for tests, benchmarks (the
// scheduler's, to commit its decisions) and tools.
type Loopback struct {
	sm   StateMachine
	loop env.Loop // nil: synchronous

	// synchronous mode: proposals made while one applies (from a watcher or
	// a done callback) wait here, so applies never nest.
	queue    []loopbackEntry
	applying bool
}

type loopbackEntry struct {
	data []byte
	done Proposal
}

// NewLoopback returns a Loopback that applies each proposal later, in a
// function Posted to loop, as a raft driver would after commit.
func NewLoopback(sm StateMachine, loop env.Loop) *Loopback {
	return &Loopback{sm: sm, loop: loop}
}

// NewSyncLoopback returns a Loopback that applies each proposal before
// Propose returns (unless one is being applied already: then right after
// it). For benchmarks and tests without a loop; done runs inside Propose,
// hence inside Store.Update.
func NewSyncLoopback(sm StateMachine) *Loopback {
	return &Loopback{sm: sm}
}

// Propose implements Proposer. Every proposal is applied as a node that
// did not propose it would: decoded from data, never from what done holds.
func (l *Loopback) Propose(data []byte, done Proposal) {
	if l.loop != nil {
		l.loop.Post(func() { l.apply(data, done) })
		return
	}
	l.queue = append(l.queue, loopbackEntry{data, done})
	if l.applying {
		return
	}
	l.applying = true
	defer func() { l.applying = false }()
	for len(l.queue) > 0 {
		e := l.queue[0]
		l.queue[0] = loopbackEntry{}
		l.queue = l.queue[1:]
		l.apply(e.data, e.done)
	}
	l.queue = nil
}

func (l *Loopback) apply(data []byte, done Proposal) {
	result, err := l.sm.Apply(l.sm.AppliedIndex()+1, data, nil)
	if done != nil {
		done.Done(result, err)
	}
}
