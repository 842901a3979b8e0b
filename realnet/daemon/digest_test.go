package daemon

import (
	"fmt"
	"testing"

	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/raft"
	"github.com/swarmsim/swarmsim/realnet/rpc"
)

const b = digestBlock

func entry(i uint64) raft.AppliedEntry {
	return raft.AppliedEntry{Index: i, Term: 1 + i/100, Type: env.EntryNormal, Data: []byte(fmt.Sprintf("entry %d", i))}
}

func feed(d *appliedDigests, from, to uint64, edit func(*raft.AppliedEntry)) {
	for i := from; i <= to; i++ {
		e := entry(i)
		if edit != nil {
			edit(&e)
		}
		d.EntryApplied(e)
	}
}

func byLast(ds []*rpc.AppliedDigest) map[uint64]uint64 {
	out := map[uint64]uint64{}
	for _, d := range ds {
		out[d.GetLastIndex()] = d.GetHash()
	}
	return out
}

func TestAppliedDigests(t *testing.T) {
	// Blocks b, 2b and 3b, and part of the fourth.
	a, s := newAppliedDigests(), newAppliedDigests()
	feed(a, 1, 3*b+b/2, nil)
	// s starts mid-block (as after a snapshot at b+b/2): blocks before 3b
	// are not its to report.
	s.SnapshotRestored("m2", b+b/2, 2)
	feed(s, b+b/2+1, 3*b+b/2, nil)
	da, ds := byLast(a.digests()), byLast(s.digests())
	if len(da) != 3 || da[b] == 0 || da[2*b] == 0 || da[3*b] == 0 {
		t.Fatalf("a's blocks = %v, want %d, %d and %d", da, b, 2*b, 3*b)
	}
	if len(ds) != 1 || ds[3*b] != da[3*b] {
		t.Fatalf("s's blocks = %v, want only %d, as a's (%x)", ds, 3*b, da[3*b])
	}

	// One byte, term or type changed anywhere in a block changes its
	// digest, and no other.
	at := uint64(2*b + 3)
	for name, edit := range map[string]func(*raft.AppliedEntry){
		"data": func(e *raft.AppliedEntry) {
			if e.Index == at {
				e.Data[0] ^= 1
			}
		},
		"term": func(e *raft.AppliedEntry) {
			if e.Index == at {
				e.Term++
			}
		},
		"type": func(e *raft.AppliedEntry) {
			if e.Index == at {
				e.Type = env.EntryConfChange
			}
		},
	} {
		c := newAppliedDigests()
		feed(c, 1, 3*b+b/2, edit)
		if dc := byLast(c.digests()); dc[b] != da[b] || dc[2*b] != da[2*b] || dc[3*b] == da[3*b] {
			t.Errorf("%s of entry %d changed: digests %v, unchanged %v; want only block %d to differ", name, at, dc, da, 3*b)
		}
	}

	// A gap (a restart that resumes elsewhere) ends the block: it is not
	// reported, and hashing resumes at the next block's start.
	g := newAppliedDigests()
	feed(g, 1, b+2, nil)
	feed(g, b+5, 3*b+b/2, nil)
	if dg := byLast(g.digests()); len(dg) != 2 || dg[b] != da[b] || dg[3*b] != da[3*b] {
		t.Fatalf("after a gap at %d-%d: %v, want %d and %d as before", b+3, b+4, dg, b, 3*b)
	}

	// Only the latest digestKeep blocks are kept, oldest first.
	k := newAppliedDigests()
	feed(k, 1, (digestKeep+3)*b, nil)
	kept := k.digests()
	if len(kept) != digestKeep || kept[0].GetLastIndex() != 4*b || kept[len(kept)-1].GetLastIndex() != (digestKeep+3)*b {
		t.Fatalf("kept %d blocks from %d to %d", len(kept), kept[0].GetLastIndex(), kept[len(kept)-1].GetLastIndex())
	}
}
