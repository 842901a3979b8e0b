package scenarios

import (
	"strings"
	"testing"

	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/raft"
	"github.com/swarmsim/swarmsim/sim"
)

// committed-stays-committed compares what every manager applies at an
// index with what the first one applied there: the same bytes and term
// from another manager pass; other bytes, another term or a gap fail.
func TestCommittedStaysCommitted(t *testing.T) {
	entry := func(node string, index, term uint64, data string) raft.AppliedEntry {
		// Config-change entries skip the shadow store, which only the
		// digest comparison is under test here.
		return raft.AppliedEntry{Node: env.NodeID(node), Index: index, Term: term, Type: env.EntryConfChange, Data: []byte(data)}
	}
	for _, tc := range []struct {
		name    string
		applied []raft.AppliedEntry
		want    string // "" for no violation
	}{
		{"agree", []raft.AppliedEntry{entry("m1", 1, 1, "a"), entry("m1", 2, 1, "b"), entry("m2", 1, 1, "a"), entry("m2", 2, 1, "b")}, ""},
		{"other bytes", []raft.AppliedEntry{entry("m1", 1, 1, "a"), entry("m2", 1, 1, "A")}, "m2 applied a different entry at index 1"},
		{"other term", []raft.AppliedEntry{entry("m1", 1, 1, "a"), entry("m2", 1, 2, "a")}, "m2 applied a different entry at index 1"},
		{"gap", []raft.AppliedEntry{entry("m1", 1, 1, "a"), entry("m2", 3, 1, "c")}, "m2 applied index 3 before any manager applied index 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := sim.NewKernel(1)
			c := newChecker(k.Now, []Invariant{CommittedStaysCommitted}, kernelClock{k})
			for _, e := range tc.applied {
				c.EntryApplied(e)
			}
			switch {
			case tc.want == "" && c.broken != nil:
				t.Fatalf("violation: %s", c.broken.Detail)
			case tc.want != "" && (c.broken == nil || !strings.Contains(c.broken.Detail, tc.want)):
				t.Fatalf("violation %+v, want one saying %q", c.broken, tc.want)
			}
		})
	}
}
