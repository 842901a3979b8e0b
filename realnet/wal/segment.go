package wal

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Segment file names carry the segment number and the first batch in it,
// both fixed-width hex so that names sort in log order.
const segmentSuffix = ".wal"

func segmentName(num, firstSeq uint64) string {
	return fmt.Sprintf("%016x-%016x%s", num, firstSeq, segmentSuffix)
}

func parseSegmentName(name string) (num, firstSeq uint64, ok bool) {
	base, found := strings.CutSuffix(name, segmentSuffix)
	if !found || len(base) != 33 || base[16] != '-' {
		return 0, 0, false
	}
	num, err1 := strconv.ParseUint(base[:16], 16, 64)
	firstSeq, err2 := strconv.ParseUint(base[17:], 16, 64)
	return num, firstSeq, err1 == nil && err2 == nil
}

// batch is one complete batch found in a segment: its records without the
// commit record that ended it.
type batch struct {
	seq        uint64
	recs       []record
	start, end int
}

// segmentScan is what scanSegment found.
type segmentScan struct {
	// validEnd is where the last complete batch ends; everything from
	// there on is not in effect.
	validEnd int
	// nextSeq is the batch number the next batch must carry.
	nextSeq uint64
	// When the segment does not end exactly at validEnd, damageOff is the
	// first offset that is not an intact record of the batch in progress
	// (the segment's length when the stream simply stops before a commit
	// record) and damage says what was wrong there.
	damageOff int
	damage    error
}

var (
	errIncomplete = errors.New("batch has no commit record")
	errSeqOrder   = errors.New("record out of batch order")
)

// damaged reports whether the segment holds anything after its last
// complete batch.
func (s *segmentScan) damaged() bool { return s.damage != nil }

// scanSegment walks buf, a whole segment whose first batch must be
// firstSeq, and calls apply for each complete batch in order. apply's
// batch is reused: it must not keep b or b.recs. The scan stops at the
// first damage (recorded in the result) or at apply's first error, which
// it returns. A commit record whose checksum holds but whose count is wrong
// is an error, never damage: a torn write cannot produce it.
func scanSegment(buf []byte, firstSeq uint64, apply func(b *batch) error) (segmentScan, error) {
	s := segmentScan{nextSeq: firstSeq}
	var cur batch
	open := false
	off := 0
	for off < len(buf) {
		rec, n, err := decodeRecord(buf[off:])
		if err != nil {
			s.damageOff, s.damage = off, err
			return s, nil
		}
		rec.off = off
		if !open {
			if rec.seq != s.nextSeq {
				s.damageOff = off
				s.damage = fmt.Errorf("%w: batch %d where batch %d was due", errSeqOrder, rec.seq, s.nextSeq)
				return s, nil
			}
			cur = batch{seq: rec.seq, recs: cur.recs[:0], start: off}
			open = true
		} else if rec.seq != cur.seq {
			s.damageOff = off
			s.damage = fmt.Errorf("%w: batch %d inside batch %d", errSeqOrder, rec.seq, cur.seq)
			return s, nil
		}
		off += n
		if rec.typ != recCommit {
			cur.recs = append(cur.recs, rec)
			continue
		}
		count, err := decodeCommit(rec.payload)
		if err != nil {
			return s, &CorruptError{Offset: int64(rec.off), Reason: err.Error()}
		}
		if int(count) != len(cur.recs) {
			return s, &CorruptError{Offset: int64(rec.off), Reason: fmt.Sprintf(
				"batch %d: commit record counts %d records, found %d", cur.seq, count, len(cur.recs))}
		}
		cur.end = off
		open = false
		if err := apply(&cur); err != nil {
			return s, err
		}
		s.validEnd = off
		s.nextSeq++
	}
	if open {
		s.damageOff, s.damage = len(buf), errIncomplete
	}
	return s, nil
}

// laterBatchAfter looks for an intact record of a batch after seq anywhere
// in buf from offset from on, and returns its offset. Batches are written
// one at a time, each only after the previous one's fsync returned, so such
// a record proves the damage before it hit data that had been
// acknowledged. It tries every byte offset, because damage may have
// destroyed the record boundaries; the header checksum keeps that cheap.
func laterBatchAfter(buf []byte, from int, seq uint64) (int, bool) {
	for off := max(from, 0); off+headerBytes <= len(buf); off++ {
		if s, ok := intactAt(buf[off:]); ok && s > seq {
			return off, true
		}
	}
	return 0, false
}
