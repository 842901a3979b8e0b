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
// that talks to many (a slice by node index, as a manager to every
// worker); a link that may reorder does reorder.
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

// A message carries the identity its sender had when it was sent, is
// dropped when its destination crashed meanwhile, and goes to whoever
// holds the destination's name when it is sent, also after the name moved
// to another node (the sender's cached destination is voided).
func TestDeliveryKeepsWhatItWasSentWith(t *testing.T) {
	k := NewKernel(3)
	nw := NewNetwork(k, LinkModel{Latency: Fixed(time.Millisecond)})
	src := nw.Attach(k.AddNode("src"), "src", nil)
	var got []string
	recv := func(tag string) env.Handler {
		return func(from env.Peer, m env.Message) {
			got = append(got, fmt.Sprintf("%s:%s:%d", tag, from.ID, m.(seqMsg).seq))
		}
	}
	dstNode := k.AddNode("dst")
	nw.Attach(dstNode, "dst", recv("a"))
	src.SetIdentity(env.Peer{ID: "old"})
	src.Send("dst", seqMsg{1})
	src.SetIdentity(env.Peer{ID: "new"})
	src.Send("dst", seqMsg{2})
	for k.Step() {
	}
	src.Send("dst", seqMsg{3})
	dstNode.Crash()
	for k.Step() {
	}
	dstNode.Start()
	// The name dst now belongs to another node.
	nw.Attach(k.AddNode("dst2"), "dst", recv("b"))
	src.Send("dst", seqMsg{4})
	for k.Step() {
	}
	want := "[a:old:1 a:new:2 b:new:4]"
	if fmt.Sprint(got) != want {
		t.Fatalf("delivered %v, want %s", got, want)
	}
}

// Sending and delivering a message allocates nothing once the links are
// known: the message rides in its event.
func TestDeliveryAllocatesNothing(t *testing.T) {
	k := NewKernel(3)
	nw := NewNetwork(k, LinkModel{Latency: Fixed(time.Millisecond)})
	src := nw.Attach(k.AddNode("src"), "src", nil)
	n := 0
	nw.Attach(k.AddNode("dst"), "dst", func(env.Peer, env.Message) { n++ })
	msg := env.Message(seqMsg{1})
	round := func() {
		src.Send("dst", msg)
		k.Step()
	}
	for range 100 {
		round()
	}
	if a := testing.AllocsPerRun(1000, round); a != 0 {
		t.Fatalf("%v allocations per message", a)
	}
	if n != 1100+1 {
		t.Fatalf("delivered %d", n)
	}
}

// An answer goes to whoever holds the name it is addressed to: the
// sender of the message being answered while it still holds its name,
// the node that took the name over once one did, also when the old
// holder is the one being answered.
func TestAnswersFollowTheName(t *testing.T) {
	k := NewKernel(5)
	nw := NewNetwork(k, LinkModel{Latency: Fixed(time.Millisecond)})
	var got []string
	var srv *Endpoint
	srv = nw.Attach(k.AddNode("srv"), "srv", func(from env.Peer, m env.Message) {
		srv.Send(from.ID, m) // answer by name, as the dispatcher does
	})
	recv := func(tag string) env.Handler {
		return func(_ env.Peer, m env.Message) { got = append(got, fmt.Sprintf("%s:%d", tag, m.(seqMsg).seq)) }
	}
	a := nw.Attach(k.AddNode("a"), "a", recv("a"))
	a.Send("srv", seqMsg{1})
	for k.Step() {
	}
	a2 := nw.Attach(k.AddNode("a2"), "a", recv("a2"))
	a.Send("srv", seqMsg{2}) // the old holder asks; the answer goes to the name
	for k.Step() {
	}
	a2.Send("srv", seqMsg{3})
	for k.Step() {
	}
	if want := "[a:1 a2:2 a2:3]"; fmt.Sprint(got) != want {
		t.Fatalf("answers %v, want %s", got, want)
	}
}
