package sim

import (
	"slices"
	"time"

	"github.com/swarmsim/swarmsim/engine/env"
)

// Range is a duration drawn uniformly from [Min, Max] (fixed when equal).
type Range struct{ Min, Max time.Duration }

// Fixed is a Range that always gives d.
func Fixed(d time.Duration) Range { return Range{d, d} }

// Draw returns a duration from the range.
func (r Range) Draw(rnd *Rand) time.Duration {
	if r.Max <= r.Min {
		return r.Min
	}
	return r.Min + time.Duration(rnd.Int63n(int64(r.Max-r.Min)+1))
}

// Disk is a node's simulated disk, an env.Storage. Writes are staged in
// memory; Sync makes them durable after a latency drawn from the disk's
// model, in the order the syncs were asked for. A crash loses whatever was
// staged or still syncing, exactly as a real machine loses what it had not
// fsynced.
type Disk struct {
	node    *Node
	latency Range
	rand    *Rand

	durable image
	staged  []diskOp
	// lastDone is when the newest sync in flight completes: syncs finish in
	// order, as one device's flushes do.
	lastDone int64

	Syncs uint64 // syncs completed, for metrics
}

type image struct {
	snap    env.Snapshot
	hs      env.HardState
	entries []env.Entry
	meta    map[string][]byte
}

type diskOpKind uint8

const (
	opAppend diskOpKind = iota
	opHardState
	opSnapshot
	opMeta
)

type diskOp struct {
	kind diskOpKind
	ents []env.Entry
	hs   env.HardState
	snap env.Snapshot
	key  string
	val  []byte
}

// NewDisk returns an empty disk on node n whose syncs take latency.
func NewDisk(n *Node, latency Range) *Disk {
	return &Disk{node: n, latency: latency, rand: n.Rand("disk")}
}

// SetLatency changes how long a sync takes from now on.
func (d *Disk) SetLatency(r Range) { d.latency = r }

// Load returns what completed syncs made durable.
func (d *Disk) Load() (env.DiskState, error) {
	st := env.DiskState{
		Snapshot:  d.durable.snap,
		HardState: d.durable.hs,
		Entries:   slices.Clone(d.durable.entries),
	}
	if len(d.durable.meta) > 0 {
		st.Meta = make(map[string][]byte, len(d.durable.meta))
		for k, v := range d.durable.meta {
			st.Meta[k] = v
		}
	}
	return st, nil
}

// Append stages entries.
func (d *Disk) Append(ents []env.Entry) error {
	if len(ents) > 0 {
		d.staged = append(d.staged, diskOp{kind: opAppend, ents: slices.Clone(ents)})
	}
	return nil
}

// SetHardState stages the hard state.
func (d *Disk) SetHardState(hs env.HardState) error {
	d.staged = append(d.staged, diskOp{kind: opHardState, hs: hs})
	return nil
}

// SaveSnapshot stages a snapshot.
func (d *Disk) SaveSnapshot(s env.Snapshot) error {
	d.staged = append(d.staged, diskOp{kind: opSnapshot, snap: s})
	return nil
}

// SetMeta stages a named value.
func (d *Disk) SetMeta(key string, value []byte) error {
	d.staged = append(d.staged, diskOp{kind: opMeta, key: key, val: slices.Clone(value)})
	return nil
}

// Sync makes everything staged so far durable once the sync's latency has
// passed, then calls done on the node's loop.
func (d *Disk) Sync(done func(error)) {
	batch := d.staged
	d.staged = nil
	k := d.node.k
	at := max(k.now+int64(d.latency.Draw(d.rand)), d.lastDone)
	d.lastDone = at
	d.node.At(time.Duration(at-k.now), KindSync, uint64(len(batch)), func() {
		for i := range batch {
			d.durable.apply(&batch[i])
		}
		d.Syncs++
		done(nil)
	})
}

// Crash drops everything staged; syncs in flight die with the node's
// events (the caller crashes the node too).
func (d *Disk) Crash() {
	d.staged = nil
	d.lastDone = 0
}

// Flush makes everything staged durable at once: a clean shutdown. Syncs
// in flight are not completed by it; their callers' node is stopping.
func (d *Disk) Flush() {
	for i := range d.staged {
		d.durable.apply(&d.staged[i])
	}
	d.staged = nil
}

// Wipe erases the disk entirely (a node that leaves and comes back new).
func (d *Disk) Wipe() {
	d.durable = image{}
	d.staged = nil
}

func (im *image) apply(op *diskOp) {
	switch op.kind {
	case opAppend:
		ents := op.ents
		// Entries the snapshot already covers are dropped.
		for len(ents) > 0 && ents[0].Index <= im.snap.Index {
			ents = ents[1:]
		}
		if len(ents) == 0 {
			return
		}
		first := ents[0].Index
		base := im.snap.Index + 1
		switch {
		case len(im.entries) == 0:
			if first != base {
				panic("sim: disk append leaves a gap after the snapshot")
			}
		case first > im.entries[len(im.entries)-1].Index+1:
			panic("sim: disk append leaves a gap in the log")
		default:
			// Truncate from first on: raft replaces a conflicting suffix.
			im.entries = im.entries[:first-im.entries[0].Index]
		}
		im.entries = append(im.entries, ents...)
	case opHardState:
		im.hs = op.hs
	case opSnapshot:
		if op.snap.Index <= im.snap.Index {
			return
		}
		// Keep the entries after the snapshot only when the log agrees with
		// it at its index; otherwise the log is replaced by the snapshot.
		keep := -1
		for i := range im.entries {
			if im.entries[i].Index == op.snap.Index && im.entries[i].Term == op.snap.Term {
				keep = i + 1
				break
			}
		}
		if keep < 0 {
			keep = len(im.entries)
		}
		// Compact in place: the log grows back to about the same length
		// before the next snapshot, and a fresh array per snapshot made
		// every manager regrow it by doubling (a fifth of the store
		// path's allocations). Load hands out copies, so nothing else
		// shares the array; the tail is cleared so its data can go.
		n := copy(im.entries, im.entries[keep:])
		clear(im.entries[n:])
		im.entries = im.entries[:n]
		im.snap = op.snap
	case opMeta:
		if op.val == nil {
			delete(im.meta, op.key)
			return
		}
		if im.meta == nil {
			im.meta = make(map[string][]byte)
		}
		im.meta[op.key] = op.val
	}
}

var _ env.Storage = (*Disk)(nil)
