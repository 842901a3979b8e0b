package daemon

import (
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/raft"
)

// ledKeep is how many of the latest terms a manager led it reports.
const ledKeep = 1024

// ledTerms is a raft.Observer that records the terms in which this
// manager became leader, so that whoever reads them (Daemon.LedTerms) can
// check one-leader-per-term from outside on every leadership, not only on
// those a status happened to catch. It runs on the node's loop, as the RPC
// that reads it does. What it holds is lost when the daemon stops.
type ledTerms struct {
	// ring holds the latest terms; ring[(first+i)%ledKeep] is the i-th
	// oldest of n.
	ring     [ledKeep]uint64
	first, n int
}

// StateChanged implements raft.Observer: a change to leader records its
// term once, however many changes of that term follow.
func (l *ledTerms) StateChanged(s raft.StateChange) {
	if s.Role != raft.RoleLeader {
		return
	}
	if l.n > 0 && l.ring[(l.first+l.n-1)%ledKeep] == s.Term {
		return
	}
	if l.n == ledKeep {
		l.first = (l.first + 1) % ledKeep
		l.n--
	}
	l.ring[(l.first+l.n)%ledKeep] = s.Term
	l.n++
}

// EntryApplied implements raft.Observer.
func (l *ledTerms) EntryApplied(raft.AppliedEntry) {}

// SnapshotRestored implements raft.Observer.
func (l *ledTerms) SnapshotRestored(env.NodeID, uint64, uint64) {}

// terms lists the terms kept, oldest first.
func (l *ledTerms) terms() []uint64 {
	out := make([]uint64, l.n)
	for i := range l.n {
		out[i] = l.ring[(l.first+i)%ledKeep]
	}
	return out
}

// observers hands every observation to each of its observers in turn.
type observers []raft.Observer

func (os observers) EntryApplied(e raft.AppliedEntry) {
	for _, o := range os {
		o.EntryApplied(e)
	}
}

func (os observers) StateChanged(s raft.StateChange) {
	for _, o := range os {
		o.StateChanged(s)
	}
}

func (os observers) SnapshotRestored(node env.NodeID, index, term uint64) {
	for _, o := range os {
		o.SnapshotRestored(node, index, term)
	}
}
