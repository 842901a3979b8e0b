package wal

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/swarmsim/swarmsim/engine/env"
)

// durable is the state besides entries that the log has made durable: what
// a checkpoint at the start of a new segment must carry.
type durable struct {
	hs                  env.HardState
	snapIndex, snapTerm uint64
	meta                map[string][]byte
}

func (d *durable) checkpoint() checkpoint {
	return checkpoint{hs: d.hs, snapIndex: d.snapIndex, snap: d.snapTerm, meta: d.meta}
}

// replayState is what the records build as replay applies them in order.
type replayState struct {
	durable
	ents []env.Entry
}

// applyEntry mirrors raft's log: an entry at an index the log holds
// replaces it and everything after it.
func (st *replayState) applyEntry(e env.Entry) {
	if e.Index <= st.snapIndex {
		return
	}
	if n := len(st.ents); n > 0 && e.Index >= st.ents[0].Index && e.Index <= st.ents[n-1].Index+1 {
		st.ents = append(st.ents[:e.Index-st.ents[0].Index], e)
		return
	}
	// What comes before e is unknown to replay: e follows a gap (segments
	// whose entries a snapshot covers were deleted), or replaces entries from
	// before the earliest one replay has seen. Start again at e; a gap that
	// no snapshot closes by the end is corruption (checked in replayDir).
	st.ents = append(st.ents[:0], e)
}

// applySnapshot moves the snapshot forward, keeping the entries after it
// when staging found the log agreeing with the snapshot (marker.keep).
func (st *replayState) applySnapshot(m snapshotMarker) error {
	if m.index <= st.snapIndex {
		return nil
	}
	if !m.keep {
		st.ents = st.ents[:0]
	} else if n := len(st.ents); n > 0 {
		first := st.ents[0].Index
		switch {
		case m.index < first:
			// The snapshot's index is in the part replay never saw.
		case m.index-first < uint64(n):
			if t := st.ents[m.index-first].Term; t != m.term {
				return fmt.Errorf("snapshot %d (term %d) kept a log whose entry %d has term %d", m.index, m.term, m.index, t)
			}
			st.ents = st.ents[m.index-first+1:]
		default:
			st.ents = st.ents[:0]
		}
	}
	st.snapIndex, st.snapTerm = m.index, m.term
	return nil
}

func (st *replayState) applyMeta(op metaOp) {
	if op.del {
		delete(st.meta, op.key)
		return
	}
	st.meta[op.key] = op.val
}

// segInfo is what the WAL knows of one segment file.
type segInfo struct {
	num, firstSeq uint64
	name          string
	size          int64  // bytes of complete batches
	maxIndex      uint64 // highest entry index in it; 0 when it holds none
}

// replayed is everything replayDir learned.
type replayed struct {
	state      env.DiskState
	dur        durable
	segs       []segInfo
	nextSeq    uint64 // batch number of the next batch to write
	nextSegNum uint64 // number of the next segment to create
}

// replayDir reads the whole directory back. Given repair (the fsyncs to
// use) it also cuts a torn tail off the last segment, or removes that
// segment when nothing in it is complete, so that new batches follow valid
// data.
func replayDir(dir string, repair *ioHooks) (*replayed, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var segs []segInfo
	for _, de := range des {
		if num, first, ok := parseSegmentName(de.Name()); ok && de.Type().IsRegular() {
			segs = append(segs, segInfo{num: num, firstSeq: first, name: de.Name()})
		}
	}
	slices.SortFunc(segs, func(a, b segInfo) int { return cmp.Compare(a.num, b.num) })

	st := replayState{durable: durable{meta: map[string][]byte{}}}
	r := &replayed{nextSeq: 1}
	for i := 0; i < len(segs); i++ {
		seg := &segs[i]
		path := filepath.Join(dir, seg.name)
		if i > 0 {
			prev := &segs[i-1]
			if seg.num != prev.num+1 {
				return nil, &CorruptError{File: path, Offset: -1, Reason: fmt.Sprintf(
					"segment %d missing between %s and this one", prev.num+1, prev.name)}
			}
			if seg.firstSeq != r.nextSeq {
				return nil, &CorruptError{File: path, Offset: -1, Reason: fmt.Sprintf(
					"name says it starts with batch %d, but %s ends before batch %d", seg.firstSeq, prev.name, r.nextSeq)}
			}
		} else {
			r.nextSeq = seg.firstSeq
		}
		last := i == len(segs)-1
		buf, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		firstBatch := true
		sc, err := scanSegment(buf, seg.firstSeq, func(b *batch) error {
			err := st.applyBatch(b, seg, firstBatch, i == 0)
			firstBatch = false
			return err
		})
		if err != nil {
			return nil, inFile(err, path)
		}
		if sc.damaged() {
			if !last {
				return nil, &CorruptError{File: path, Offset: int64(sc.damageOff), Reason: fmt.Sprintf(
					"%v, in a segment that later segments follow", sc.damage)}
			}
			if off, found := laterBatchAfter(buf, sc.damageOff, sc.nextSeq); found {
				return nil, &CorruptError{File: path, Offset: int64(sc.damageOff), Reason: fmt.Sprintf(
					"%v, yet a later batch follows at offset %d, so this was not a torn write", sc.damage, off)}
			}
		}
		// What follows the last complete batch, if anything, is a torn
		// write: the batch in progress was never acknowledged. A segment
		// without any complete batch (perhaps empty: created, then the
		// crash) goes, so that its name is free for the next segment.
		if repair != nil && (sc.damaged() || sc.validEnd == 0) {
			if err := cutTornTail(dir, path, sc.validEnd, repair); err != nil {
				return nil, err
			}
		}
		r.nextSeq = sc.nextSeq
		seg.size = int64(sc.validEnd)
		if sc.validEnd == 0 {
			// Only a torn first batch: the segment holds nothing.
			segs = segs[:i]
			r.nextSegNum = seg.num
			break
		}
		r.nextSegNum = seg.num + 1
	}
	r.segs = segs

	var snap env.Snapshot
	if st.snapIndex > 0 {
		snap, err = readSnapshotFile(filepath.Join(dir, snapName(st.snapIndex, st.snapTerm)), st.snapIndex, st.snapTerm)
		if err != nil {
			return nil, err
		}
	}
	if len(st.ents) > 0 && st.ents[0].Index != st.snapIndex+1 {
		return nil, &CorruptError{File: dir, Offset: -1, Reason: fmt.Sprintf(
			"log has a hole: entries start at %d, snapshot is at %d", st.ents[0].Index, st.snapIndex)}
	}
	r.state = env.DiskState{
		Snapshot:  snap,
		HardState: st.hs,
		Entries:   slices.Clip(slices.Clone(st.ents)),
	}
	if len(r.state.Entries) == 0 {
		r.state.Entries = nil
	}
	if len(st.meta) > 0 {
		r.state.Meta = maps.Clone(st.meta)
	}
	r.dur = st.durable
	return r, nil
}

// applyBatch applies one complete batch. The first batch of every segment
// starts with the segment header and a checkpoint; the checkpoint sets the
// state when replay starts at this segment, and must agree with it when
// earlier segments came first.
func (st *replayState) applyBatch(b *batch, seg *segInfo, firstBatch, firstSegment bool) error {
	recs := b.recs
	if firstBatch {
		if len(recs) < 2 || recs[0].typ != recSegment || recs[1].typ != recCheckpoint {
			return &CorruptError{Offset: int64(b.start), Reason: "segment does not open with a header and a checkpoint"}
		}
		h, err := decodeSegmentHeader(recs[0].payload)
		if err != nil {
			return &CorruptError{Offset: int64(recs[0].off), Reason: err.Error()}
		}
		if h.num != seg.num || h.firstSeq != seg.firstSeq {
			return &CorruptError{Offset: int64(recs[0].off), Reason: fmt.Sprintf(
				"header says segment %d from batch %d; the file name says segment %d from batch %d",
				h.num, h.firstSeq, seg.num, seg.firstSeq)}
		}
		cp, err := decodeCheckpoint(recs[1].payload)
		if err != nil {
			return &CorruptError{Offset: int64(recs[1].off), Reason: err.Error()}
		}
		if firstSegment {
			st.hs, st.meta = cp.hs, cp.meta
			st.snapIndex, st.snapTerm = cp.snapIndex, cp.snap
			st.ents = st.ents[:0]
		} else if cp.hs != st.hs || cp.snapIndex != st.snapIndex || cp.snap != st.snapTerm ||
			!maps.EqualFunc(cp.meta, st.meta, bytes.Equal) {
			return &CorruptError{Offset: int64(recs[1].off), Reason: "checkpoint disagrees with the segments before it"}
		}
		recs = recs[2:]
	}
	for i := range recs {
		rec := &recs[i]
		var err error
		switch rec.typ {
		case recEntry:
			var e env.Entry
			if e, err = decodeEntry(rec.payload); err == nil {
				st.applyEntry(e)
				seg.maxIndex = max(seg.maxIndex, e.Index)
			}
		case recHardState:
			st.hs, err = decodeHardState(rec.payload)
		case recMeta:
			var op metaOp
			if op, err = decodeMeta(rec.payload); err == nil {
				st.applyMeta(op)
			}
		case recSnapshot:
			var m snapshotMarker
			if m, err = decodeSnapshotMarker(rec.payload); err == nil {
				err = st.applySnapshot(m)
			}
		case recSegment, recCheckpoint:
			err = fmt.Errorf("%s record inside a segment", rec.typ)
		default:
			err = fmt.Errorf("unknown record %s (written by a newer version?)", rec.typ)
		}
		if err != nil {
			return &CorruptError{Offset: int64(rec.off), Reason: err.Error()}
		}
	}
	return nil
}

// cutTornTail drops a torn write: the segment is truncated to its last
// complete batch, or removed when it has none.
func cutTornTail(dir, path string, validEnd int, sync *ioHooks) error {
	if validEnd == 0 {
		if err := os.Remove(path); err != nil {
			return err
		}
		return sync.syncDir(dir)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	err = f.Truncate(int64(validEnd))
	if err == nil {
		err = sync.fsync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
