package sim

import (
	"github.com/swarmsim/swarmsim/engine/env"
)

// LinkModel is how one direction of a link treats messages.
type LinkModel struct {
	Latency   Range
	Loss      float64 // chance a message is lost, in [0, 1]
	Duplicate float64 // chance a message is delivered twice
	// Reorder lets messages overtake each other when latency varies;
	// without it a link is FIFO, like a TCP stream.
	Reorder bool
}

// Network connects simulated nodes. Every message is an event on the
// destination node; loss, duplication and latency are drawn from the
// sender's own stream, so one node's traffic does not shift another's
// draws.
type Network struct {
	k    *Kernel
	def  LinkModel
	eps  []*Endpoint // by node index
	byID map[env.NodeID]*Endpoint
	// byIDGen changes whenever byID does, which voids the endpoints'
	// cached destinations.
	byIDGen uint64
	links   map[linkKey]*link // links with their own model (SetLink)
	cuts    []cut

	methodHash map[string]uint64

	// Counters for metrics and reports.
	Sent, Delivered, Dropped, Duplicated uint64
}

type linkKey struct{ from, to int32 }

type link struct {
	model *LinkModel
}

// fifoLink is the newest delivery time scheduled on a FIFO link from an
// endpoint to the node with index dst.
type fifoLink struct {
	dst    int32
	lastAt int64
}

// maxFifoList is how many FIFO links an endpoint keeps in a list before it
// keeps them in a slice by node index: a worker talks to a few managers, a
// manager to every worker.
const maxFifoList = 8

// cut is one partition or isolation in force.
type cut struct {
	group    []int16 // by node index: 0 = not part of this cut
	isolated int32   // node cut from everyone, or -1
}

// NewNetwork returns a network whose links all follow def.
func NewNetwork(k *Kernel, def LinkModel) *Network {
	return &Network{
		k:          k,
		def:        def,
		byID:       make(map[env.NodeID]*Endpoint),
		links:      make(map[linkKey]*link),
		methodHash: make(map[string]uint64),
	}
}

// Endpoint is one node's attachment to the network: its env.Transport.
//
// At 10,000 workers nearly every endpoint a message touches is out of the
// cache, so the fields of Send and deliver come first and hold their data
// in place (the random stream, the identity, the first FIFO links): each
// pointer followed to a separate object was one more miss per message.
type Endpoint struct {
	// The first cache line holds what a manager's answer reads of the
	// worker it goes to, and what delivering it writes: the name, the
	// node, the reply shortcut and the handler.
	net  *Network
	node *Node
	id   env.NodeID
	// The endpoint the last message delivered here came from, valid while
	// byIDGen is replyGen: a manager answers most messages at once, to
	// one of thousands of workers, which then costs no lookup either.
	replyTo  *Endpoint
	replyGen uint64
	// handlerFrom, when set, is handler's form that is also told which
	// node sent the message, so the receiver finds the sender without a
	// lookup by name.
	handlerFrom func(src int, from env.Peer, m env.Message)
	// superseded: another endpoint took this one's name since.
	superseded bool
	// The destination of the last send, valid while the network's byIDGen
	// is lastGen: a worker sends nearly everything to one manager, which
	// then costs no lookup by name.
	lastDst *Endpoint
	lastGen uint64
	lastTo  env.NodeID
	// identity is what the endpoint's messages say they come from; each
	// message carries a copy.
	identity env.Peer
	rand     Rand
	// The newest delivery time per FIFO link from this endpoint: a short
	// list (in fifoBuf while it fits), then a slice by destination node
	// index. They were in one map of every link of the network, whose
	// lookups, at 10,000 workers, missed the cache on every message.
	fifos   []fifoLink
	fifoBuf [2]fifoLink
	fifoAll []int64
	// sentMethod is the method of the last message sent and sentHash its
	// hash (Network.hashMethod): an endpoint sends one kind of message
	// again and again (a worker, heartbeats).
	sentMethod string
	sentHash   uint64

	handler env.Handler
}

// fifoAt returns when a message scheduled at at on the FIFO link to dst
// is delivered (never before one sent earlier), and records it.
func (ep *Endpoint) fifoAt(dst int32, at int64) int64 {
	if ep.fifoAll != nil {
		for int(dst) >= len(ep.fifoAll) {
			ep.fifoAll = append(ep.fifoAll, 0)
		}
		at = max(at, ep.fifoAll[dst])
		ep.fifoAll[dst] = at
		return at
	}
	for i := range ep.fifos {
		if f := &ep.fifos[i]; f.dst == dst {
			at = max(at, f.lastAt)
			f.lastAt = at
			return at
		}
	}
	if len(ep.fifos) < maxFifoList {
		ep.fifos = append(ep.fifos, fifoLink{dst: dst, lastAt: at})
		return at
	}
	ep.fifoAll = make([]int64, len(ep.net.eps))
	for _, f := range ep.fifos {
		ep.fifoAll[f.dst] = f.lastAt
	}
	ep.fifos = nil
	return ep.fifoAt(dst, at)
}

// Attach connects node n, known to others as id, delivering its inbound
// messages to h. Attaching a node again replaces its handler (a restart).
func (nw *Network) Attach(n *Node, id env.NodeID, h env.Handler) *Endpoint {
	for int(n.idx) >= len(nw.eps) {
		nw.eps = append(nw.eps, nil)
	}
	ep := nw.eps[n.idx]
	if ep == nil {
		ep = &Endpoint{net: nw, node: n, id: id}
		n.k.initRand(&ep.rand, n.randName("net"))
		ep.fifos = ep.fifoBuf[:0]
		nw.eps[n.idx] = ep
		if old := nw.byID[id]; old != nil {
			old.superseded = true
		}
		nw.byID[id] = ep
		nw.byIDGen++
	}
	ep.handler = h
	if ep.identity.ID == "" {
		ep.identity = env.Peer{ID: id}
	}
	return ep
}

// Endpoint returns the endpoint of id, or nil.
func (nw *Network) Endpoint(id env.NodeID) *Endpoint { return nw.byID[id] }

// SetHandler sets where the endpoint's inbound messages go; nil drops
// them (a machine that is down).
func (ep *Endpoint) SetHandler(h env.Handler) { ep.handler, ep.handlerFrom = h, nil }

// SetHandlerFrom is SetHandler for a handler that is also given the index
// (Node.Index) of the node whose endpoint sent the message; nil drops
// messages.
func (ep *Endpoint) SetHandlerFrom(h func(src int, from env.Peer, m env.Message)) {
	ep.handler, ep.handlerFrom = nil, h
}

// SetIdentity sets who the endpoint's messages say they come from (what
// its certificate proves).
func (ep *Endpoint) SetIdentity(p env.Peer) { ep.identity = p }

// Identity is what the endpoint's messages say they come from.
func (ep *Endpoint) Identity() env.Peer { return ep.identity }

// Send queues m for delivery to the node called to. It never blocks.
func (ep *Endpoint) Send(to env.NodeID, m env.Message) {
	nw := ep.net
	nw.Sent++
	var dst *Endpoint
	switch {
	case ep.replyTo != nil && ep.replyGen == nw.byIDGen && to == ep.replyTo.id:
		dst = ep.replyTo
	case ep.lastDst != nil && ep.lastGen == nw.byIDGen && to == ep.lastTo:
		dst = ep.lastDst
	default:
		dst = nw.byID[to]
		ep.lastTo, ep.lastDst, ep.lastGen = to, dst, nw.byIDGen
	}
	if dst == nil || nw.isCut(ep.node.idx, dst.node.idx) {
		nw.Dropped++
		return
	}
	model := &nw.def
	if len(nw.links) > 0 {
		if l := nw.links[linkKey{ep.node.idx, dst.node.idx}]; l != nil && l.model != nil {
			model = l.model
		}
	}
	if model.Loss > 0 && ep.rand.Float64() < model.Loss {
		nw.Dropped++
		return
	}
	copies := 1
	if model.Duplicate > 0 && ep.rand.Float64() < model.Duplicate {
		copies = 2
		nw.Duplicated++
	}
	from := ep.identity
	arg := uint64(ep.node.idx)<<32 | uint64(uint32(dst.node.idx))
	if meth := m.Method(); meth != ep.sentMethod || ep.sentHash == 0 {
		ep.sentMethod, ep.sentHash = meth, nw.hashMethod(meth)
	}
	arg ^= ep.sentHash
	for range copies {
		at := nw.k.now + int64(model.Latency.Draw(&ep.rand))
		if !model.Reorder {
			at = ep.fifoAt(dst.node.idx, at)
		}
		nw.k.scheduleDelivery(max(at, nw.k.now), dst.node.idx, dst.node.epoch, arg, delivery{src: ep, dst: dst, from: from, msg: m})
	}
}

// delivery is a message on its way: the kernel keeps it with the event
// and hands it to deliver when its time comes.
type delivery struct {
	src, dst *Endpoint
	from     env.Peer
	msg      env.Message
}

// deliver hands a message that arrived to its destination's handler.
func (ep *Endpoint) deliver(d delivery) {
	nw := ep.net
	nw.Delivered++
	if !ep.superseded {
		d.dst.replyTo, d.dst.replyGen = ep, nw.byIDGen
	}
	if nw.k.trace != nil {
		nw.k.Note("%s -> %s %s", d.from.ID, d.dst.id, describe(d.msg))
	}
	if d.dst.handlerFrom != nil {
		d.dst.handlerFrom(int(ep.node.idx), d.from, d.msg)
	} else if d.dst.handler != nil {
		d.dst.handler(d.from, d.msg)
	}
}

func (nw *Network) hashMethod(m string) uint64 {
	h, ok := nw.methodHash[m]
	if !ok {
		h = HashString(m)
		nw.methodHash[m] = h
	}
	return h
}

func describe(m env.Message) string {
	if s, ok := m.(interface{ TraceString() string }); ok {
		return s.TraceString()
	}
	return m.Method()
}

func (nw *Network) isCut(a, b int32) bool {
	for i := range nw.cuts {
		c := &nw.cuts[i]
		if c.isolated >= 0 {
			if (a == c.isolated) != (b == c.isolated) {
				return true
			}
			continue
		}
		var ga, gb int16
		if int(a) < len(c.group) {
			ga = c.group[a]
		}
		if int(b) < len(c.group) {
			gb = c.group[b]
		}
		if ga != 0 && gb != 0 && ga != gb {
			return true
		}
	}
	return false
}

// Partition cuts every link between nodes of different groups. Nodes in
// no group keep their links.
func (nw *Network) Partition(groups [][]*Node) {
	c := cut{group: make([]int16, len(nw.k.nodes)), isolated: -1}
	for gi, g := range groups {
		for _, n := range g {
			c.group[n.idx] = int16(gi + 1)
		}
	}
	nw.cuts = append(nw.cuts, c)
}

// Isolate cuts n from every other node, including nodes added later.
func (nw *Network) Isolate(n *Node) {
	nw.cuts = append(nw.cuts, cut{isolated: n.idx})
}

// Heal restores every cut link. Per-link models set by SetLink stay.
func (nw *Network) Heal() { nw.cuts = nil }

// SetLink changes the model of the link from a to b (one direction).
func (nw *Network) SetLink(a, b *Node, m LinkModel) {
	key := linkKey{a.idx, b.idx}
	l := nw.links[key]
	if l == nil {
		l = &link{}
		nw.links[key] = l
	}
	l.model = &m
}

// Default is the model of links without their own.
func (nw *Network) Default() LinkModel { return nw.def }

var _ env.Transport = (*Endpoint)(nil)
