package sim

import (
	"time"

	"github.com/swarmsim/swarmsim/engine/env"
)

// Node is one simulated machine's view of the kernel: its loop, its clock
// and its random streams. A crash kills every event the node had pending;
// a restart begins a new epoch with an empty queue.
type Node struct {
	k      *Kernel
	idx    int32
	name   string
	up     bool
	epoch  uint32
	skew   time.Duration
	crypto *Rand
}

// AddNode registers a machine called name, up. Names must be unique.
func (k *Kernel) AddNode(name string) *Node {
	n := &Node{
		k:      k,
		idx:    int32(len(k.nodes)),
		name:   name,
		up:     true,
		crypto: k.NewRand("node/" + name + "/crypto"),
	}
	k.nodes = append(k.nodes, n)
	return n
}

// Name is the node's name.
func (n *Node) Name() string { return n.name }

// Index is the node's position in the kernel's node list.
func (n *Node) Index() int { return int(n.idx) }

// Up reports whether the node is running.
func (n *Node) Up() bool { return n.up }

// Crash stops the node at once; every event it had pending is dropped.
func (n *Node) Crash() {
	n.up = false
	n.epoch++
}

// Start brings a stopped node back, with an empty event queue.
func (n *Node) Start() {
	n.up = true
	n.epoch++
}

// SetSkew sets how far the node's clock runs ahead of virtual time
// (behind, when negative).
func (n *Node) SetSkew(d time.Duration) { n.skew = d }

// Rand returns the node's stream for one purpose ("raft", "dispatcher").
func (n *Node) Rand(purpose string) *Rand {
	return n.k.NewRand(n.randName(purpose))
}

func (n *Node) randName(purpose string) string { return "node/" + n.name + "/" + purpose }

// Post runs f on the node's loop, after every event already due now.
func (n *Node) Post(f func()) {
	n.k.schedule(n.k.now, n.idx, n.epoch, KindPost, 0, f)
}

// At runs f on the node's loop after d, as an event of the given kind with
// arg folded into the trace hash. Network, disk and executor use it.
func (n *Node) At(d time.Duration, kind Kind, arg uint64, f func()) TimerID {
	return n.k.schedule(n.k.after(d), n.idx, n.epoch, kind, arg, f)
}

// Now is the node's clock: virtual time plus its skew.
func (n *Node) Now() time.Time {
	return Epoch.Add(time.Duration(n.k.now) + n.skew)
}

// Monotonic is virtual time: the node's skew moves Now, not this.
func (n *Node) Monotonic() time.Duration { return time.Duration(n.k.now) }

// AfterFunc runs f on the node's loop after d.
func (n *Node) AfterFunc(d time.Duration, f func()) env.Timer {
	return &timer{k: n.k, id: n.At(d, KindTimer, 0, f)}
}

type timer struct {
	k  *Kernel
	id TimerID
}

func (t *timer) Stop() bool { return t.k.Cancel(t.id) }

var (
	_ env.Loop  = (*Node)(nil)
	_ env.Clock = (*Node)(nil)
	_ env.Rand  = (*Rand)(nil)
)
