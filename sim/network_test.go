package sim

import (
	"fmt"
	"testing"
	"time"

	"github.com/swarmsim/swarmsim/engine/env"
)

type seqMsg struct{ seq int }

func (seqMsg) Method() string { return "/test/Seq" }

// A FIFO link delivers in the order sent, whatever the latency drawn,
// for an endpoint that talks to a few nodes (kept in a list) and for one
// that talks to many (a map, as a manager to every worker); a link that
// may reorder does reorder.
func TestFIFOLinksKeepOrder(t *testing.T) {
	for _, peers := range []int{3, 3 * maxFifoList} {
		t.Run(fmt.Sprint(peers, " peers"), func(t *testing.T) {
			k := NewKernel(7)
			nw := NewNetwork(k, LinkModel{Latency: Range{Min: time.Millisecond, Max: 50 * time.Millisecond}})
			src := nw.Attach(k.AddNode("src"), "src", nil)
			got := map[env.NodeID][]int{}
			var ids []env.NodeID
			for i := range peers {
				id := env.NodeID(fmt.Sprint("p", i))
				ids = append(ids, id)
				nw.Attach(k.AddNode(string(id)), id, func(_ env.Peer, m env.Message) {
					got[id] = append(got[id], m.(seqMsg).seq)
				})
			}
			for seq := range 50 {
				for _, id := range ids {
					src.Send(id, seqMsg{seq})
				}
			}
			for k.Step() {
			}
			for _, id := range ids {
				if len(got[id]) != 50 {
					t.Fatalf("%s got %d messages", id, len(got[id]))
				}
				for i, s := range got[id] {
					if s != i {
						t.Fatalf("%s got %v: out of order", id, got[id])
					}
				}
			}
		})
	}
	k := NewKernel(7)
	nw := NewNetwork(k, LinkModel{Latency: Range{Min: time.Millisecond, Max: 50 * time.Millisecond}, Reorder: true})
	src := nw.Attach(k.AddNode("src"), "src", nil)
	var got []int
	nw.Attach(k.AddNode("dst"), "dst", func(_ env.Peer, m env.Message) { got = append(got, m.(seqMsg).seq) })
	for seq := range 50 {
		src.Send("dst", seqMsg{seq})
	}
	for k.Step() {
	}
	for i, s := range got {
		if s != i {
			return // reordered, as asked
		}
	}
	t.Fatalf("a reordering link kept the order: %v", got)
}
