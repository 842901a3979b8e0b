package scheduler

import (
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// TestFillLevelsMatchesHeap: fillLevels hands every task to the same node
// as fillHeap, in the same order, over random candidates (counts of the
// service's tasks and of all tasks, room, back-off, ranks, and k below,
// at or above the room there is).
func TestFillLevelsMatchesHeap(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		n := rapid.IntRange(0, 40).Draw(rt, "nodes")
		perm := make([]int32, n)
		for i := range perm {
			perm[i] = int32(i)
		}
		perm = rapid.Permutation(perm).Draw(rt, "ranks")
		base := make([]cand, n)
		room := 0
		for i := range base {
			svc := rapid.Int32Range(0, 6).Draw(rt, "svc")
			base[i] = cand{
				rank:    perm[i],
				svc:     svc,
				total:   svc + rapid.Int32Range(0, 6).Draw(rt, "others"),
				slots:   rapid.Int32Range(0, 5).Draw(rt, "slots"),
				backoff: rapid.IntRange(0, 4).Draw(rt, "backoff") == 0,
			}
			room += int(base[i].slots)
		}
		idx := make([]int32, 0, n)
		for i := range n {
			if rapid.IntRange(0, 5).Draw(rt, "in") > 0 {
				idx = append(idx, int32(i))
			}
		}
		k := rapid.IntRange(0, room+3).Draw(rt, "k")

		run := func(levels bool) ([]int32, []int32, int) {
			nodes := make([]nodeInfo, n)
			for i := range nodes {
				nodes[i].idx = int32(i)
			}
			s := &Scheduler{simple: !levels}
			s.turnBuf.cands = slices.Clone(base)
			for i := range s.turnBuf.cands {
				s.turnBuf.cands[i].n = &nodes[i]
			}
			g := &group{svc: &serviceInfo{counts: map[*nodeInfo]int32{}}}
			for range k {
				g.tasks = append(g.tasks, &ptask{})
			}
			placed := s.fill(g, idx, k)
			var seq []int32
			for _, d := range s.assign {
				seq = append(seq, d.node.idx)
			}
			per := make([]int32, n)
			for i := range nodes {
				per[i] = nodes[i].tasks
			}
			return seq, per, placed
		}
		hs, hp, hn := run(false)
		ls, lp, ln := run(true)
		if hn != ln || !slices.Equal(hs, ls) || !slices.Equal(hp, lp) {
			rt.Fatalf("heap placed %d %v (per node %v), levels placed %d %v (per node %v)", hn, hs, hp, ln, ls, lp)
		}
	})
}
