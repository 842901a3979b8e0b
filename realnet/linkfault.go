package realnet

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/realnet/rpc"
)

// LinkFault is what a fault-injection test does to the messages a node
// sends one peer, as the simulator's link models do: each waits Latency
// plus up to Jitter (drawn uniformly) before it goes, is lost with
// probability Loss and sent twice with probability Duplicate. Without
// Reorder a message never overtakes one sent before it. The zero value is
// a link without faults.
type LinkFault struct {
	Latency, Jitter time.Duration
	Loss, Duplicate float64
	Reorder         bool
}

// maxLinkDelay bounds a faulty link's latency plus jitter.
const maxLinkDelay = time.Hour

// Check rejects what no link can do: a negative delay, or one over an
// hour; a probability outside [0, 1].
func (f LinkFault) Check() error {
	switch {
	case f.Latency < 0 || f.Jitter < 0:
		return fmt.Errorf("link fault: negative latency %v or jitter %v", f.Latency, f.Jitter)
	case f.Latency > maxLinkDelay || f.Jitter > maxLinkDelay-f.Latency:
		return fmt.Errorf("link fault: latency %v plus jitter %v over %v", f.Latency, f.Jitter, maxLinkDelay)
	case !(f.Loss >= 0 && f.Loss <= 1) || !(f.Duplicate >= 0 && f.Duplicate <= 1):
		return fmt.Errorf("link fault: loss %v and duplicate %v must be within [0, 1]", f.Loss, f.Duplicate)
	}
	return nil
}

// SetLinkFault makes the messages this node sends to `to` suffer f from
// now on (the zero LinkFault ends it; messages already delayed still go
// when their time comes). Messages to itself are not affected.
func (t *Transport) SetLinkFault(to env.NodeID, f LinkFault) error {
	if err := f.Check(); err != nil {
		return err
	}
	if to == "" {
		return errors.New("link fault: no peer named")
	}
	t.faultMu.Lock()
	defer t.faultMu.Unlock()
	cur := t.faults.Load()
	next := map[env.NodeID]*faultyLink{}
	if cur != nil {
		for id, l := range *cur {
			next[id] = l
		}
	}
	if f == (LinkFault{}) {
		delete(next, to)
	} else if l := next[to]; l != nil {
		l.set(f)
	} else {
		next[to] = &faultyLink{t: t, to: to, f: f}
	}
	if len(next) == 0 {
		t.faults.Store(nil)
	} else {
		t.faults.Store(&next)
	}
	return nil
}

// faultyLink holds the messages delayed on their way to one peer, in the
// order they are due.
type faultyLink struct {
	t  *Transport
	to env.NodeID

	mu      sync.Mutex
	f       LinkFault
	queue   []delayed
	lastDue time.Time // the latest due time given, for FIFO
	timer   *time.Timer
}

type delayed struct {
	due time.Time
	e   *rpc.Envelope
}

func (l *faultyLink) set(f LinkFault) {
	l.mu.Lock()
	l.f = f
	l.mu.Unlock()
}

// send subjects e to the link's faults.
func (l *faultyLink) send(e *rpc.Envelope) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.f
	if f.Loss > 0 && rand.Float64() < f.Loss {
		l.t.faultLost.Add(1)
		return
	}
	l.schedule(e, f)
	if f.Duplicate > 0 && rand.Float64() < f.Duplicate {
		l.schedule(proto.Clone(e).(*rpc.Envelope), f)
	}
}

func (l *faultyLink) schedule(e *rpc.Envelope, f LinkFault) {
	d := f.Latency
	if f.Jitter > 0 {
		d += rand.N(f.Jitter + 1)
	}
	due := time.Now().Add(d)
	if !f.Reorder && due.Before(l.lastDue) {
		due = l.lastDue
	}
	if due.After(l.lastDue) {
		l.lastDue = due
	}
	// Stable: messages due at once keep the order they were sent in.
	i, _ := slices.BinarySearchFunc(l.queue, due, func(x delayed, t time.Time) int {
		if x.due.After(t) {
			return 1
		}
		return -1
	})
	l.queue = slices.Insert(l.queue, i, delayed{due, e})
	if i == 0 {
		l.arm()
	}
}

// arm sets the timer for the first message due; l.mu is held.
func (l *faultyLink) arm() {
	if l.timer != nil {
		l.timer.Stop()
	}
	l.timer = time.AfterFunc(time.Until(l.queue[0].due), l.flush)
}

// flush sends the messages that are due, in order.
func (l *faultyLink) flush() {
	l.mu.Lock()
	now := time.Now()
	n := 0
	for n < len(l.queue) && !l.queue[n].due.After(now) {
		n++
	}
	due := make([]*rpc.Envelope, n)
	for i := range n {
		due[i] = l.queue[i].e
	}
	l.queue = slices.Delete(l.queue, 0, n)
	if len(l.queue) > 0 {
		l.arm()
	}
	// Sent under the lock, so that two flushes cannot interleave.
	for _, e := range due {
		if ps := l.t.peer(l.to); ps != nil {
			ps.enqueue(e)
		}
	}
	l.mu.Unlock()
}
