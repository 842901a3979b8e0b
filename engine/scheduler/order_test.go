package scheduler

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/swarmsim/swarmsim/engine/api"
)

// TestCandidateOrderMerge checks that the candidate list kept up to date
// by merging joins in equals the list rebuilt from scratch, through random
// joins, removals (Removed set and cleared), deletions and re-joins, with
// the list brought up to date at random points as scheduler turns do.
func TestCandidateOrderMerge(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		s := &Scheduler{nodes: map[string]*nodeInfo{}}
		ids := rapid.IntRange(1, 40).Draw(rt, "ids")
		for step := range rapid.IntRange(1, 120).Draw(rt, "steps") {
			id := fmt.Sprintf("n%02d", rapid.IntRange(0, ids-1).Draw(rt, "id"))
			var old *api.Node
			if ni := s.nodes[id]; ni != nil {
				old = ni.n
			}
			switch op := rapid.IntRange(0, 3).Draw(rt, "op"); {
			case op == 0 && old != nil: // deleted from the store
				s.onNode(id, old, nil)
			case op == 1 && old != nil: // Removed flips
				nw := &api.Node{Id: id, Removed: !old.Removed}
				s.onNode(id, old, nw)
			default: // joins, or an update that changes no membership
				removed := old != nil && old.Removed
				s.onNode(id, old, &api.Node{Id: id, Removed: removed})
			}
			if rapid.Bool().Draw(rt, "turn") {
				s.sortNodes()
				var want []string
				for _, n := range s.nodes {
					if n.n != nil && !n.n.Removed {
						want = append(want, n.id)
					}
				}
				slices.Sort(want)
				var got []string
				for _, n := range s.order {
					got = append(got, n.id)
				}
				if !slices.Equal(got, want) {
					rt.Fatalf("step %d: order %s, want %s", step, strings.Join(got, ","), strings.Join(want, ","))
				}
			}
		}
	})
}
