package raft

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestWaitingProposals drives the waiting proposals through random steps,
// applies (in order, out of order, twice, unknown seqs), failures of a
// subset, and expiries, beside a model kept as a map and a stepping order
// (what the driver kept before): every proposal is answered once, by the
// same step, in the same order, and the count of waiting ones agrees.
func TestWaitingProposals(t *testing.T) {
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 7))
		n := &Node{cfg: Config{ProposalTimeout: time.Second}}
		model := map[uint64]bool{} // seq -> still waiting
		var order []uint64         // stepped seqs, in order
		var answered []uint64      // seqs answered, in order, by the code
		answers := map[uint64]int{}
		deadlines := map[uint64]uint64{}
		seq := uint64(0)
		errFail := errors.New("fail")
		for step := range 400 {
			switch op := r.IntN(10); {
			case op < 4: // step a few proposals
				for range r.IntN(5) + 1 {
					seq += uint64(r.IntN(3)) + 1 // seqs of proposals failed before stepping are skipped
					s := seq
					p := &proposal{seq: s, deadline: n.ticks + uint64(r.IntN(2)) + 3, done: DoneFunc(func(any, error) {
						answered = append(answered, s)
						answers[s]++
					})}
					// deadlines never decrease along the stepping order
					if len(order) > 0 && p.deadline < deadlines[order[len(order)-1]] {
						p.deadline = deadlines[order[len(order)-1]]
					}
					deadlines[s] = p.deadline
					n.props.add(p)
					model[s] = true
					order = append(order, s)
				}
			case op < 7: // apply a seq: mostly the oldest waiting one
				var s uint64
				if i := slices.IndexFunc(order, func(s uint64) bool { return model[s] }); i >= 0 && r.IntN(3) > 0 {
					s = order[i]
				} else {
					s = uint64(r.IntN(int(seq) + 3))
				}
				before := len(answered)
				n.props.applied(n, s, nil)
				want := 0
				if model[s] {
					want = 1
					model[s] = false
				}
				if len(answered)-before != want {
					t.Fatalf("seed %d step %d: applied(%d) answered %d, want %d", seed, step, s, len(answered)-before, want)
				}
			case op < 8: // fail those whose seq has a random residue
				m := uint64(r.IntN(3) + 2)
				res := uint64(r.IntN(int(m)))
				var want []uint64
				for _, s := range order {
					if model[s] && s%m == res {
						want = append(want, s)
						model[s] = false
					}
				}
				before := len(answered)
				n.props.failWhere(n, func(p *proposal) bool { return p.seq%m == res }, errFail)
				if got := answered[before:]; !slices.Equal(got, want) {
					t.Fatalf("seed %d step %d: failWhere answered %v, want %v", seed, step, got, want)
				}
			default: // a tick: expire what is due
				n.ticks++
				var want []uint64
				for _, s := range order {
					if model[s] && deadlines[s] <= n.ticks {
						want = append(want, s)
						model[s] = false
					}
				}
				before := len(answered)
				n.expireProposals()
				if got := answered[before:]; !slices.Equal(got, want) {
					t.Fatalf("seed %d step %d: expiry answered %v, want %v", seed, step, got, want)
				}
			}
			live := 0
			for _, w := range model {
				if w {
					live++
				}
			}
			if n.props.live != live {
				t.Fatalf("seed %d step %d: %d waiting, model %d", seed, step, n.props.live, live)
			}
		}
		for s, c := range answers {
			if c != 1 {
				t.Fatalf("seed %d: proposal %d answered %d times", seed, s, c)
			}
		}
	}
}
