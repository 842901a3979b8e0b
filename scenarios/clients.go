package scenarios

import (
	"fmt"
	"strconv"
	"time"

	"github.com/swarmsim/swarmsim/engine/manager"
	"github.com/swarmsim/swarmsim/sim"
	"github.com/swarmsim/swarmsim/sim/cluster"
)

// clientTimeout is how long a scenario client waits for an answer before
// it gives up on the operation (its outcome becomes unknown) and tries
// another manager.
const clientTimeout = 5 * time.Second

// clientCheckTimeout bounds the linearizability check of one run.
const clientCheckTimeout = 60 * time.Second

// clients are the scenario's load on the managers' key space: each client
// runs one operation at a time against one manager, moving to the next
// manager when an answer does not come; together they keep the file's
// rate. Their history is checked for linearizability when the run ends.
type clients struct {
	w        *SimWorld
	cfg      Clients
	rand     *sim.Rand
	interval time.Duration // between one client's operations
	list     []*client
	ops      []ClientOp
	open     map[int]int // client → index in ops of its unanswered op
	started  bool
}

type client struct {
	id      int
	target  int // index into the current managers
	seq     int
	pending bool
	// current is the index in the history of the client's operation in
	// flight: answers and timeouts of any other operation are stale.
	current int
}

func newClients(w *SimWorld, cfg Clients) *clients {
	cs := &clients{
		w:        w,
		cfg:      cfg,
		rand:     w.k.NewRand("scenario/clients"),
		interval: cfg.Rate.Interval() * time.Duration(cfg.Count),
		open:     map[int]int{},
	}
	for i := 0; i < cfg.Count; i++ {
		cs.list = append(cs.list, &client{id: i, target: i})
	}
	return cs
}

func (cs *clients) start() {
	if cs.started {
		return
	}
	cs.started = true
	for _, c := range cs.list {
		// Spread the clients' first operations over one interval.
		c := c
		offset := time.Duration(int64(cs.interval) * int64(c.id) / int64(max(cs.cfg.Count, 1)))
		cs.w.k.Schedule(offset, sim.KindStep, func() { cs.next(c) })
	}
}

// managers lists the machines that run managers, in order.
func (cs *clients) managers() []*cluster.Machine {
	var out []*cluster.Machine
	for _, m := range cs.w.c.Machines() {
		if m.Manager && m.Status != cluster.NodeRemoved {
			out = append(out, m)
		}
	}
	return out
}

func (cs *clients) next(c *client) {
	mgrs := cs.managers()
	if len(mgrs) == 0 {
		return
	}
	m := mgrs[c.target%len(mgrs)]
	c.seq++
	op := drawOp(cs.rand, cs.cfg.Keys, c.id, c.seq, cs.ops)
	op.Call = cs.w.Now()
	idx := len(cs.ops)
	cs.ops = append(cs.ops, op)
	cs.open[c.id] = idx
	c.pending = true
	c.current = idx
	started := cs.w.Now()

	finish := func(value string, ok bool, err error) {
		if c.current != idx || !c.pending {
			return // abandoned: its outcome stays unknown
		}
		c.pending = false
		delete(cs.open, c.id)
		o := &cs.ops[idx]
		o.Done = cs.w.Now()
		if err != nil {
			// Nothing happened or nobody knows: reads say nothing, writes
			// stay open forever.
			o.Unknown = manager.Ambiguous(err) || o.Kind == OpRead
			if !o.Unknown {
				// Definitely not applied: drop it from the history.
				o.Unknown = true
				o.Kind = OpRead
			}
			c.target++
		} else {
			if o.Kind == OpRead {
				o.Value = value
			}
			o.OK = ok
		}
		wait := max(cs.interval-(cs.w.Now()-started), 0)
		cs.w.k.Schedule(wait, sim.KindStep, func() { cs.next(c) })
	}
	// Give up after the timeout: the outcome is unknown.
	cs.w.k.Schedule(clientTimeout, sim.KindStep, func() {
		if c.current != idx || !c.pending {
			return
		}
		c.pending = false
		delete(cs.open, c.id)
		cs.ops[idx].Unknown = true
		c.target++
		cs.next(c)
	})
	if m.Status != cluster.NodeUp || m.Engine == nil {
		return // the call reaches nobody; the timeout answers it
	}
	eng := m.Engine
	m.Kernel.Post(func() {
		mgr := eng.Manager()
		if mgr == nil {
			return
		}
		switch op.Kind {
		case OpRead:
			mgr.KVRead(op.Key, func(v string, err error) { finish(v, false, err) })
		case OpWrite:
			mgr.KVWrite(op.Key, op.Value, func(err error) { finish("", false, err) })
		case OpCAS:
			mgr.KVCAS(op.Key, op.Old, op.Value, func(ok bool, err error) { finish("", ok, err) })
		}
	})
}

// finish stops the clients, marks unanswered operations unknown and
// checks the history. It returns notes for the summary.
func (cs *clients) finish() []string {
	for id, idx := range cs.open {
		cs.ops[idx].Unknown = true
		delete(cs.open, id)
	}
	for _, c := range cs.list {
		c.pending = false
	}
	notes, broken := checkHistory(cs.ops, cs.w.check.enabled[Linearizable])
	if broken != "" {
		cs.w.check.violate(Linearizable, "%s", broken)
	}
	return notes
}

// opRand is the randomness drawOp needs: the simulator's per-purpose
// stream, or real mode's per-client one.
type opRand interface {
	Int63n(n int64) int64
	Float64() float64
}

// drawOp draws a client's next operation on a key space of keys keys:
// half reads, 30% writes and 20% compare-and-swaps, each written value
// unique to the client and its seq. A cas expects, three times in four, a
// value some operation of history carried, and otherwise none.
func drawOp(r opRand, keys, client, seq int, history []ClientOp) ClientOp {
	key := "k" + strconv.Itoa(int(r.Int63n(int64(max(keys, 1)))))
	op := ClientOp{Client: client, Key: key}
	switch x := r.Float64(); {
	case x < 0.5:
		op.Kind = OpRead
	case x < 0.8:
		op.Kind = OpWrite
		op.Value = fmt.Sprintf("c%d-%d", client, seq)
	default:
		op.Kind = OpCAS
		op.Value = fmt.Sprintf("c%d-%d", client, seq)
		if r.Int63n(4) > 0 && len(history) > 0 {
			op.Old = history[r.Int63n(int64(len(history)))].Value
		}
	}
	return op
}

// checkHistory counts a finished history for the summary and, when the
// file checks linearizable, checks it: broken describes the violation.
func checkHistory(ops []ClientOp, linearizable bool) (notes []string, broken string) {
	var done, unknown int
	for _, op := range ops {
		if op.Unknown {
			unknown++
		} else {
			done++
		}
	}
	notes = []string{fmt.Sprintf("clients: %d operations answered, %d with unknown outcome", done, unknown)}
	if !linearizable {
		return notes, ""
	}
	ok, detail := CheckLinearizable(ops, clientCheckTimeout)
	if !ok {
		return notes, detail
	}
	if detail != "" {
		notes = append(notes, detail)
	}
	return notes, ""
}
