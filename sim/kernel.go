package sim

import (
	"fmt"
	"io"
	"math"
	"math/bits"
	"time"
)

// Epoch is the wall-clock instant virtual time 0 stands for. It is fixed so
// that certificates, timestamps and traces are the same on every machine.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Kind says what an event is, for the trace.
type Kind uint8

const (
	KindPost    Kind = iota // a function posted to a node's loop
	KindTimer               // an AfterFunc firing
	KindDeliver             // a message arriving
	KindSync                // a disk sync completing
	KindExec                // a container runtime event
	KindStep                // a scenario step
	numKinds
)

var kindNames = [numKinds]string{"post", "timer", "deliver", "sync", "exec", "step"}

func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// TimerID names a scheduled event so it can be cancelled. The zero TimerID
// names nothing.
type TimerID uint64

// noNode marks events that belong to no node (scenario steps, checks).
const noNode = -1

// heapItem is 16 bytes so the heap stays cache-friendly: key packs the
// sequence number (high 40 bits, so equal times keep scheduling order) and
// the slot index (low 24 bits).
type heapItem struct {
	at  int64
	key uint64
}

const (
	slotBits = 24
	slotMask = 1<<slotBits - 1
	maxSlots = 1 << slotBits
)

func (h heapItem) slot() int32 { return int32(h.key & slotMask) }

type slot struct {
	fn    func()
	arg   uint64
	gen   uint32
	node  int32
	epoch uint32
	kind  Kind
	// cancelled events stay in the heap until their time comes and are
	// skipped then: cancelling costs nothing and the heap never needs to
	// know where an event sits.
	cancelled bool
	queued    bool
}

// Kernel is the simulator's one event loop: a heap of events ordered by
// (virtual time, sequence number). Every timer, message delivery, disk sync
// and container event of every simulated node is an event on it, and one
// goroutine runs them all, so a seed fixes the whole run.
//
// A Kernel is not safe for use from several goroutines.
type Kernel struct {
	now int64 // virtual nanoseconds since Epoch
	seq uint64
	// heap is a 4-ary min-heap that starts heapPad items into its array
	// (growHeap), so that the four children of every item share one
	// 64-byte cache line.
	heap  []heapItem
	slots []slot
	// dlv holds the message of each delivery event, by slot: a delivery
	// carries its message here instead of in a closure, one allocation
	// fewer per message, and the other events' slots stay small.
	dlv  []delivery
	free []int32
	live int // queued events not cancelled

	nodes []*Node
	seed  uint64

	hash      uint64
	processed uint64
	trace     io.Writer
	traceErr  error

	// current is the node whose event is running, or nil.
	current *Node
	rand    *cryptoStream
	global  *Rand
}

// NewKernel returns a kernel at virtual time 0 whose randomness all derives
// from seed.
func NewKernel(seed uint64) *Kernel {
	k := &Kernel{seed: seed, hash: fnvOffset}
	k.global = k.NewRand("kernel")
	k.rand = newCryptoStream(k.NewRand("crypto/rand"))
	return k
}

// Seed is the seed the kernel was made with.
func (k *Kernel) Seed() uint64 { return k.seed }

// Now is the current virtual time since Epoch.
func (k *Kernel) Now() time.Duration { return time.Duration(k.now) }

// Processed is the number of events run so far.
func (k *Kernel) Processed() uint64 { return k.processed }

// Pending is the number of events waiting.
func (k *Kernel) Pending() int { return k.live }

// TraceHash is the running hash of every event processed so far. Two runs
// of one scenario and seed end with the same hash.
func (k *Kernel) TraceHash() uint64 { return k.hash }

// SetTrace makes the kernel write one line per processed event to w, or
// stops it when w is nil. The first write error stops tracing and is kept.
func (k *Kernel) SetTrace(w io.Writer) { k.trace = w }

// TraceErr is the first error writing the trace, if any.
func (k *Kernel) TraceErr() error { return k.traceErr }

// Tracing reports whether a trace is being written, so callers can skip
// building trace text nobody reads.
func (k *Kernel) Tracing() bool { return k.trace != nil }

// Tracef writes a free-form line to the trace (when tracing) and feeds it
// into the trace hash (always).
func (k *Kernel) Tracef(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	k.mixString(line)
	if k.trace != nil && k.traceErr == nil {
		_, k.traceErr = fmt.Fprintf(k.trace, "%s %s\n", fmtTime(k.now), line)
	}
}

// Note writes a line to the trace without touching the trace hash, so a
// traced run and an untraced one hash alike. Callers check Tracing first
// when the line is costly to build.
func (k *Kernel) Note(format string, args ...any) {
	if k.trace != nil && k.traceErr == nil {
		_, k.traceErr = fmt.Fprintf(k.trace, "%s   %s\n", fmtTime(k.now), fmt.Sprintf(format, args...))
	}
}

// Schedule runs fn at virtual time now+d, outside any node. It returns an
// ID that Cancel takes.
func (k *Kernel) Schedule(d time.Duration, kind Kind, fn func()) TimerID {
	return k.schedule(k.after(d), noNode, 0, kind, 0, fn)
}

// after is the virtual time d from now: now for a negative d, and the end
// of time for one that would run past it, so that no event time is ever
// negative (the heap's comparison counts on it).
func (k *Kernel) after(d time.Duration) int64 {
	if d <= 0 {
		return k.now
	}
	return k.now + min(int64(d), math.MaxInt64-k.now)
}

func (k *Kernel) schedule(at int64, node int32, epoch uint32, kind Kind, arg uint64, fn func()) TimerID {
	i := k.newSlot()
	s := &k.slots[i]
	s.fn, s.arg, s.node, s.epoch, s.kind = fn, arg, node, epoch, kind
	return k.enqueue(at, i)
}

// scheduleDelivery is schedule for a message: at its time the kernel
// hands d to its destination (Endpoint.deliver), on node's loop.
func (k *Kernel) scheduleDelivery(at int64, node int32, epoch uint32, arg uint64, d delivery) {
	i := k.newSlot()
	s := &k.slots[i]
	s.fn, s.arg, s.node, s.epoch, s.kind = nil, arg, node, epoch, KindDeliver
	for int(i) >= len(k.dlv) {
		k.dlv = append(k.dlv, delivery{})
	}
	k.dlv[i] = d
	k.enqueue(at, i)
}

func (k *Kernel) newSlot() int32 {
	var i int32
	if n := len(k.free); n > 0 {
		i = k.free[n-1]
		k.free = k.free[:n-1]
	} else {
		if len(k.slots) == maxSlots {
			panic("sim: more than 16M events pending")
		}
		k.slots = append(k.slots, slot{})
		i = int32(len(k.slots) - 1)
	}
	return i
}

func (k *Kernel) enqueue(at int64, i int32) TimerID {
	s := &k.slots[i]
	s.queued, s.cancelled = true, false
	k.seq++
	if len(k.heap) == cap(k.heap) {
		k.growHeap()
	}
	x := heapItem{at: at, key: k.seq<<slotBits | uint64(i)}
	k.heap = append(k.heap, x)
	k.up(len(k.heap)-1, x)
	k.live++
	return TimerID(uint64(s.gen)<<32 | uint64(uint32(i)+1))
}

// Cancel removes a scheduled event. It reports whether the event was still
// waiting.
func (k *Kernel) Cancel(id TimerID) bool {
	lo := uint32(id)
	if lo == 0 || int(lo) > len(k.slots) {
		return false
	}
	s := &k.slots[lo-1]
	if s.gen != uint32(uint64(id)>>32) || !s.queued || s.cancelled {
		return false
	}
	s.cancelled = true
	s.fn = nil
	k.live--
	return true
}

func (k *Kernel) release(i int32) {
	s := &k.slots[i]
	if s.fn == nil && s.kind == KindDeliver && int(i) < len(k.dlv) {
		k.dlv[i] = delivery{} // let the message go
	}
	s.fn = nil
	s.queued = false
	s.gen++
	k.free = append(k.free, i)
}

// Step runs the next event. It reports false when none is left.
func (k *Kernel) Step() bool {
	for len(k.heap) > 0 {
		top := k.pop()
		i := top.slot()
		s := &k.slots[i]
		if s.cancelled {
			k.release(i)
			continue
		}
		k.live--
		fn, node, epoch, kind, arg := s.fn, s.node, s.epoch, s.kind, s.arg
		var d delivery
		if fn == nil {
			d = k.dlv[i]
		}
		k.release(i)
		k.now = top.at
		var n *Node
		if node != noNode {
			n = k.nodes[node]
			if !n.up || n.epoch != epoch {
				continue // the node crashed or restarted since: its events died with it
			}
		}
		k.processed++
		k.mix(uint64(top.at))
		k.mix(uint64(kind)<<32 | uint64(uint32(node)))
		k.mix(arg)
		if k.trace != nil && k.traceErr == nil {
			name := "-"
			if n != nil {
				name = n.name
			}
			_, k.traceErr = fmt.Fprintf(k.trace, "%s %s %s %x\n", fmtTime(top.at), name, kind, arg)
		}
		k.current = n
		k.rand.use(n)
		if fn != nil {
			fn()
		} else {
			d.src.deliver(d)
		}
		k.current = nil
		return true
	}
	return false
}

// RunUntil runs events up to and including virtual time t, then sets the
// clock to t. It stops early, returning false, when stop reports true after
// an event.
func (k *Kernel) RunUntil(t time.Duration, stop func() bool) bool {
	for len(k.heap) > 0 && k.heap[0].at <= int64(t) {
		k.Step()
		if stop != nil && stop() {
			return false
		}
	}
	if int64(t) > k.now {
		k.now = int64(t)
	}
	return true
}

func fmtTime(ns int64) string {
	return fmt.Sprintf("%d.%09d", ns/1e9, ns%1e9)
}

// ---- 4-ary heap ordered by (at, key)

// less is 1 when a comes before b, else 0, without a branch: the borrow
// of the 128-bit subtraction (a.at, a.key) - (b.at, b.key). Times are
// never negative.
func less(a, b heapItem) uint64 {
	_, borrow := bits.Sub64(a.key, b.key, 0)
	_, borrow = bits.Sub64(uint64(a.at), uint64(b.at), borrow)
	return borrow
}

func (a heapItem) before(b heapItem) bool {
	return a.at < b.at || a.at == b.at && a.key < b.key
}

// up puts x into the hole at j, moving down every parent it comes before.
func (k *Kernel) up(j int, x heapItem) {
	h := k.heap
	for j > 0 {
		p := (j - 1) / 4
		if !x.before(h[p]) {
			break
		}
		h[j] = h[p]
		j = p
	}
	h[j] = x
}

// pop removes and returns the first item. It moves the hole the first
// item leaves down to a leaf, always to the smallest child, and then puts
// the last item in from there upwards (Floyd's method): the last item
// belongs near the bottom, so this saves comparing it on every level on
// the way down, one comparison in four.
func (k *Kernel) pop() heapItem {
	h := k.heap
	top := h[0]
	last := len(h) - 1
	x := h[last]
	h = h[:last]
	k.heap = h
	if last == 0 {
		return top
	}
	j := 0
	for {
		c := 4*j + 1
		if c+4 > last {
			break
		}
		// Which child is smallest is a coin toss the branch predictor
		// loses half the time: pick it without a branch, as a two-round
		// tournament (the &3 spares the bounds checks).
		g := (*[4]heapItem)(h[c : c+4])
		a := int(less(g[1], g[0]))
		b := 2 + int(less(g[3], g[2]))
		m := a + int(less(g[b&3], g[a&3]))*(b-a)
		h[j] = g[m&3]
		j = c + m
	}
	if c := 4*j + 1; c < last { // a last, partial family
		m := c
		for d := c + 1; d < last; d++ {
			if h[d].before(h[m]) {
				m = d
			}
		}
		h[j] = h[m]
		j = m
	}
	k.up(j, x)
	return top
}

// heapPad is how many unused items precede the heap's first item in its
// array. The children of item i are items 4i+1 to 4i+4: three items in,
// on an array that starts on a cache line (a large allocation starts on
// a page), they start 64(i+1) bytes in, at a cache line of their own, so
// that each level of a pop reads one line instead of two.
const heapPad = 3

// growHeap moves the heap to an array twice as large, heapPad items in.
func (k *Kernel) growHeap() {
	buf := make([]heapItem, heapPad+len(k.heap), heapPad+max(2*cap(k.heap), 64))
	copy(buf[heapPad:], k.heap)
	k.heap = buf[heapPad:]
}

// ---- trace hash: FNV-1a over 64-bit words

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func (k *Kernel) mix(x uint64) {
	h := k.hash
	for i := 0; i < 8; i++ {
		h ^= x & 0xff
		h *= fnvPrime
		x >>= 8
	}
	k.hash = h
}

func (k *Kernel) mixString(s string) {
	h := k.hash
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	k.hash = h
}

// HashString is FNV-1a of s, for callers that fold names into an event's
// trace argument.
func HashString(s string) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}
