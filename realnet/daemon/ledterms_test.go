package daemon

import (
	"slices"
	"testing"

	"github.com/swarmsim/swarmsim/engine/raft"
)

// TestLedTerms: each term the manager became leader in is recorded once,
// in order, whatever else changes; the oldest go past ledKeep; observers
// hand every observation to each observer.
func TestLedTerms(t *testing.T) {
	l := &ledTerms{}
	var o raft.Observer = observers{newAppliedDigests(), l}
	change := func(term uint64, role raft.Role) {
		o.StateChanged(raft.StateChange{Node: "m1", Term: term, Role: role})
	}
	change(1, raft.RoleFollower)
	change(2, raft.RoleCandidate)
	change(2, raft.RoleLeader)
	change(2, raft.RoleLeader) // the leader's view changes, not its term
	change(3, raft.RoleFollower)
	change(5, raft.RoleLeader)
	if got := l.terms(); !slices.Equal(got, []uint64{2, 5}) {
		t.Fatalf("led terms %v, want [2 5]", got)
	}
	for term := uint64(6); term < 6+ledKeep; term++ {
		change(term, raft.RoleLeader)
	}
	got := l.terms()
	if len(got) != ledKeep || got[0] != 6 || got[ledKeep-1] != 5+ledKeep {
		t.Fatalf("after %d more terms: %d kept, from %d to %d", ledKeep, len(got), got[0], got[len(got)-1])
	}
}
