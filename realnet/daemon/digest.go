package daemon

import (
	"encoding/binary"
	"hash"
	"hash/fnv"

	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/raft"
	"github.com/swarmsim/swarmsim/realnet/rpc"
)

const (
	// digestBlock is how many consecutive entries one digest covers:
	// entries k*digestBlock+1 to (k+1)*digestBlock. Small, since writes
	// share entries (raft.Config packs them by default): a short run applies
	// few.
	digestBlock = 16
	// digestKeep is how many of the latest complete blocks a manager
	// reports (16,384 entries).
	digestKeep = 1024
)

// appliedDigests is a raft.Observer that hashes the entries the manager
// applies, block by block, so that whoever samples the managers
// (Daemon.AppliedDigests) can check committed-stays-committed from
// outside: managers that applied the same entries report the same digest
// for a block, and a manager that restarted from its disk applies its log
// again and must report the same digests as before. A block is hashed
// only if this manager applied all of it in order since it started: after
// a start or a snapshot, hashing resumes at the next block's first index.
// It runs on the node's loop, as the RPC that reads it does.
type appliedDigests struct {
	h hash.Hash64
	// next is the index that continues the block being hashed (0: none).
	next uint64
	// ring holds the latest complete blocks; ring[(first+i)%digestKeep] is
	// the i-th oldest of n.
	ring     [digestKeep]blockDigest
	first, n int
	buf      [32]byte
}

type blockDigest struct{ last, sum uint64 }

func newAppliedDigests() *appliedDigests { return &appliedDigests{h: fnv.New64a()} }

// EntryApplied implements raft.Observer.
func (d *appliedDigests) EntryApplied(e raft.AppliedEntry) {
	if e.Index == 0 {
		return
	}
	if e.Index != d.next {
		d.h.Reset()
		d.next = 0
		if (e.Index-1)%digestBlock != 0 {
			return // mid-block: wait for the next block's first entry
		}
	}
	binary.LittleEndian.PutUint64(d.buf[0:], e.Index)
	binary.LittleEndian.PutUint64(d.buf[8:], e.Term)
	binary.LittleEndian.PutUint64(d.buf[16:], uint64(e.Type))
	binary.LittleEndian.PutUint64(d.buf[24:], uint64(len(e.Data)))
	d.h.Write(d.buf[:])
	d.h.Write(e.Data)
	d.next = e.Index + 1
	if e.Index%digestBlock == 0 {
		d.push(e.Index, d.h.Sum64())
		d.h.Reset()
	}
}

func (d *appliedDigests) push(last, sum uint64) {
	if d.n == digestKeep {
		d.first = (d.first + 1) % digestKeep
		d.n--
	}
	d.ring[(d.first+d.n)%digestKeep] = blockDigest{last, sum}
	d.n++
}

// StateChanged implements raft.Observer.
func (d *appliedDigests) StateChanged(raft.StateChange) {}

// SnapshotRestored implements raft.Observer: the entries after a snapshot
// continue no block hashed before it.
func (d *appliedDigests) SnapshotRestored(env.NodeID, uint64, uint64) {
	d.h.Reset()
	d.next = 0
}

// digests lists the complete blocks kept, oldest first.
func (d *appliedDigests) digests() []*rpc.AppliedDigest {
	out := make([]*rpc.AppliedDigest, d.n)
	for i := range d.n {
		b := d.ring[(d.first+i)%digestKeep]
		out[i] = &rpc.AppliedDigest{LastIndex: b.last, Hash: b.sum}
	}
	return out
}
