package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"

	"github.com/swarmsim/swarmsim/engine/env"
)

// recType says what a record's payload holds.
type recType uint8

const (
	recSegment    recType = 1 // segment header: first record of every segment
	recCheckpoint recType = 2 // hard state, snapshot and meta as of the segment's start
	recEntry      recType = 3 // one raft log entry
	recHardState  recType = 4
	recMeta       recType = 5 // one meta key set or deleted
	recSnapshot   recType = 6 // a snapshot became the newest; its file is durable
	recCommit     recType = 7 // ends a batch
)

func (t recType) String() string {
	switch t {
	case recSegment:
		return "segment header"
	case recCheckpoint:
		return "checkpoint"
	case recEntry:
		return "entry"
	case recHardState:
		return "hard state"
	case recMeta:
		return "meta"
	case recSnapshot:
		return "snapshot marker"
	case recCommit:
		return "commit"
	}
	return fmt.Sprintf("type %d", uint8(t))
}

const (
	headerBytes = 24
	// maxPayloadBytes bounds one record, so a damaged length field can never
	// make replay allocate or read gigabytes. Entries are far smaller (raft
	// bounds them by its message size); snapshots live in their own files.
	maxPayloadBytes = 1 << 30

	entryFixedBytes          = 17 // term, index, type
	hardStateBytes           = 24
	snapshotMarkerBytes      = 17 // index, term, keep
	commitBytes              = 4
	metaFixedBytes           = 5 // flags, key length
	formatVersion            = 1
	metaDeleted         byte = 1
)

// segmentMagic opens every segment's first record payload.
var segmentMagic = [8]byte{'s', 'w', 'a', 'r', 'm', 'W', 'A', 'L'}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// record is one decoded record; payload aliases the buffer it came from.
type record struct {
	typ     recType
	seq     uint64
	off     int // where the record starts in its segment
	payload []byte
}

// Damage kinds: what a torn write can leave behind. decodeRecord returns
// them; a caller decides from where they occur whether they are a torn tail
// or corruption.
var (
	errShort      = errors.New("record cut short")
	errHeaderCRC  = errors.New("record header checksum mismatch")
	errPayloadCRC = errors.New("record payload checksum mismatch")
	errTooLong    = errors.New("record length out of range")
	errReserved   = errors.New("record header reserved bytes not zero")
)

// beginRecord reserves a header at the end of dst; the caller appends the
// payload and then calls endRecord with the returned start. Building the
// payload in place saves copying it.
func beginRecord(dst []byte) ([]byte, int) {
	start := len(dst)
	return append(dst, zeroHeader[:]...), start
}

var zeroHeader [headerBytes]byte

// endRecord fills the header of the record that begins at dst[start:]
// (header plus payload, already in place) and its checksums.
func endRecord(dst []byte, start int, t recType, seq uint64) {
	rec := dst[start:]
	h := rec[:headerBytes]
	payload := rec[headerBytes:]
	binary.LittleEndian.PutUint32(h[4:8], crc(payload))
	binary.LittleEndian.PutUint32(h[8:12], uint32(len(payload)))
	h[12] = byte(t)
	h[13], h[14], h[15] = 0, 0, 0
	binary.LittleEndian.PutUint64(h[16:24], seq)
	binary.LittleEndian.PutUint32(h[0:4], crc(h[4:headerBytes]))
}

// decodeRecord reads the record at the start of b and returns it with its
// size in bytes. It never panics and never reads past b.
func decodeRecord(b []byte) (record, int, error) {
	if len(b) < headerBytes {
		return record{}, 0, errShort
	}
	h := b[:headerBytes]
	if binary.LittleEndian.Uint32(h[0:4]) != crc(h[4:headerBytes]) {
		return record{}, 0, errHeaderCRC
	}
	if h[13]|h[14]|h[15] != 0 {
		return record{}, 0, errReserved
	}
	n := binary.LittleEndian.Uint32(h[8:12])
	if n > maxPayloadBytes {
		return record{}, 0, errTooLong
	}
	end := headerBytes + int(n)
	if len(b) < end {
		return record{}, 0, errShort
	}
	payload := b[headerBytes:end]
	if binary.LittleEndian.Uint32(h[4:8]) != crc(payload) {
		return record{}, 0, errPayloadCRC
	}
	return record{
		typ:     recType(h[12]),
		seq:     binary.LittleEndian.Uint64(h[16:24]),
		payload: payload,
	}, end, nil
}

// intactAt reports whether an intact record starts at b[0], and its batch.
// It is decodeRecord without the allocations of an error path, for looking
// past damage one byte offset at a time.
func intactAt(b []byte) (uint64, bool) {
	if len(b) < headerBytes {
		return 0, false
	}
	h := b[:headerBytes]
	if binary.LittleEndian.Uint32(h[0:4]) != crc(h[4:headerBytes]) {
		return 0, false
	}
	n := binary.LittleEndian.Uint32(h[8:12])
	if n > maxPayloadBytes || len(b)-headerBytes < int(n) {
		return 0, false
	}
	if binary.LittleEndian.Uint32(h[4:8]) != crc(b[headerBytes:headerBytes+int(n)]) {
		return 0, false
	}
	return binary.LittleEndian.Uint64(h[16:24]), true
}

// Payload codecs. Decoders check every length and return errMalformed (a
// record whose checksums hold but whose content does not parse is never a
// torn write: it is corruption or a format this version does not know).

var errMalformed = errors.New("malformed record payload")

func malformed(t recType, why string) error {
	return fmt.Errorf("%w: %s: %s", errMalformed, t, why)
}

func appendU64(b []byte, v uint64) []byte { return binary.LittleEndian.AppendUint64(b, v) }
func appendU32(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }

// reader takes fixed-size fields off a payload, remembering the first
// shortfall so decoders check once at the end.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) u64() uint64 {
	if len(r.b) < 8 {
		r.bad = true
		r.b = nil
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) u32() uint32 {
	if len(r.b) < 4 {
		r.bad = true
		r.b = nil
		return 0
	}
	v := binary.LittleEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *reader) u8() byte {
	if len(r.b) < 1 {
		r.bad = true
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) bytes(n uint64) []byte {
	if uint64(len(r.b)) < n {
		r.bad = true
		r.b = nil
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// segmentHeader opens a segment: which one it is and which batch it starts
// with, so a renamed or misplaced file is caught.
type segmentHeader struct {
	num, firstSeq uint64
}

func (s segmentHeader) appendTo(b []byte) []byte {
	b = append(b, segmentMagic[:]...)
	b = appendU32(b, formatVersion)
	b = appendU64(b, s.num)
	return appendU64(b, s.firstSeq)
}

func decodeSegmentHeader(p []byte) (segmentHeader, error) {
	r := reader{b: p}
	magic := r.bytes(8)
	version := r.u32()
	s := segmentHeader{num: r.u64(), firstSeq: r.u64()}
	switch {
	case r.bad || len(r.b) != 0:
		return s, malformed(recSegment, "wrong length")
	case string(magic) != string(segmentMagic[:]):
		return s, malformed(recSegment, "not a swarmsim WAL segment")
	case version != formatVersion:
		return s, malformed(recSegment, fmt.Sprintf("format version %d, this build reads %d", version, formatVersion))
	}
	return s, nil
}

func appendEntry(b []byte, e *env.Entry) []byte {
	b = appendU64(b, e.Term)
	b = appendU64(b, e.Index)
	b = append(b, byte(e.Type))
	return append(b, e.Data...)
}

// decodeEntry copies Data out of p, so the entry does not pin a whole
// segment buffer. Empty Data decodes as nil. Type, like Data, is the
// engine's: any value round-trips.
func decodeEntry(p []byte) (env.Entry, error) {
	r := reader{b: p}
	e := env.Entry{Term: r.u64(), Index: r.u64(), Type: env.EntryType(r.u8())}
	if r.bad {
		return e, malformed(recEntry, "shorter than its fixed fields")
	}
	if e.Index == 0 {
		return e, malformed(recEntry, "index 0")
	}
	if len(r.b) > 0 {
		e.Data = slices.Clone(r.b)
	}
	return e, nil
}

func appendHardState(b []byte, hs env.HardState) []byte {
	b = appendU64(b, hs.Term)
	b = appendU64(b, hs.Vote)
	return appendU64(b, hs.Commit)
}

func decodeHardState(p []byte) (env.HardState, error) {
	r := reader{b: p}
	hs := env.HardState{Term: r.u64(), Vote: r.u64(), Commit: r.u64()}
	if r.bad || len(r.b) != 0 {
		return hs, malformed(recHardState, "wrong length")
	}
	return hs, nil
}

// metaOp sets key to val, or deletes it when del.
type metaOp struct {
	key string
	val []byte
	del bool
}

func appendMeta(b []byte, m *metaOp) []byte {
	var flags byte
	if m.del {
		flags = metaDeleted
	}
	b = append(b, flags)
	b = appendU32(b, uint32(len(m.key)))
	b = append(b, m.key...)
	return append(b, m.val...)
}

// decodeMeta keeps an empty value distinct from a deletion: a set value is
// never nil.
func decodeMeta(p []byte) (metaOp, error) {
	r := reader{b: p}
	flags := r.u8()
	key := r.bytes(uint64(r.u32()))
	if r.bad {
		return metaOp{}, malformed(recMeta, "key overruns the record")
	}
	if flags&^metaDeleted != 0 {
		return metaOp{}, malformed(recMeta, fmt.Sprintf("unknown flags %#x", flags))
	}
	m := metaOp{key: string(key), del: flags&metaDeleted != 0}
	if m.del {
		if len(r.b) != 0 {
			return metaOp{}, malformed(recMeta, "a deletion carries a value")
		}
		return m, nil
	}
	m.val = append([]byte{}, r.b...)
	return m, nil
}

// snapshotMarker says a snapshot became durable. keep records the decision
// taken when it was staged (did the log hold the snapshot's index at its
// term?), so replay reaches the same log without needing entries that
// compaction may since have deleted.
type snapshotMarker struct {
	index, term uint64
	keep        bool
}

func appendSnapshotMarker(b []byte, m snapshotMarker) []byte {
	b = appendU64(b, m.index)
	b = appendU64(b, m.term)
	var keep byte
	if m.keep {
		keep = 1
	}
	return append(b, keep)
}

func decodeSnapshotMarker(p []byte) (snapshotMarker, error) {
	r := reader{b: p}
	m := snapshotMarker{index: r.u64(), term: r.u64()}
	keep := r.u8()
	if r.bad || len(r.b) != 0 {
		return m, malformed(recSnapshot, "wrong length")
	}
	if keep > 1 {
		return m, malformed(recSnapshot, "keep flag not 0 or 1")
	}
	if m.index == 0 {
		return m, malformed(recSnapshot, "index 0")
	}
	m.keep = keep == 1
	return m, nil
}

// checkpoint is the state every earlier segment built, written at the start
// of each segment so that replay may begin there.
type checkpoint struct {
	hs              env.HardState
	snapIndex, snap uint64 // snapshot index and term; 0, 0 for none
	meta            map[string][]byte
}

func appendCheckpoint(b []byte, c *checkpoint) []byte {
	b = appendHardState(b, c.hs)
	b = appendU64(b, c.snapIndex)
	b = appendU64(b, c.snap)
	b = appendU32(b, uint32(len(c.meta)))
	// Sorted, so equal states write equal bytes.
	keys := make([]string, 0, len(c.meta))
	for k := range c.meta {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b = appendU32(b, uint32(len(k)))
		b = append(b, k...)
		b = appendU32(b, uint32(len(c.meta[k])))
		b = append(b, c.meta[k]...)
	}
	return b
}

func decodeCheckpoint(p []byte) (checkpoint, error) {
	r := reader{b: p}
	var c checkpoint
	c.hs = env.HardState{Term: r.u64(), Vote: r.u64(), Commit: r.u64()}
	c.snapIndex, c.snap = r.u64(), r.u64()
	n := r.u32()
	if r.bad {
		return c, malformed(recCheckpoint, "shorter than its fixed fields")
	}
	// Each value takes at least 8 bytes, which bounds n before allocating.
	if uint64(n) > uint64(len(r.b))/8 {
		return c, malformed(recCheckpoint, "meta count overruns the record")
	}
	c.meta = make(map[string][]byte, n)
	for range n {
		k := string(r.bytes(uint64(r.u32())))
		v := append([]byte{}, r.bytes(uint64(r.u32()))...)
		if r.bad {
			return c, malformed(recCheckpoint, "meta value overruns the record")
		}
		if _, dup := c.meta[k]; dup {
			return c, malformed(recCheckpoint, fmt.Sprintf("meta key %q twice", k))
		}
		c.meta[k] = v
	}
	if len(r.b) != 0 {
		return c, malformed(recCheckpoint, "trailing bytes")
	}
	return c, nil
}

func appendCommit(b []byte, count uint32) []byte { return appendU32(b, count) }

func decodeCommit(p []byte) (uint32, error) {
	r := reader{b: p}
	n := r.u32()
	if r.bad || len(r.b) != 0 {
		return 0, malformed(recCommit, "wrong length")
	}
	return n, nil
}

// recordBytes is the size of a record with an n-byte payload.
func recordBytes(n int) int { return headerBytes + n }

// fitsRecord reports whether an n-byte payload may be written.
func fitsRecord(n int) bool { return n <= maxPayloadBytes && n <= math.MaxUint32 }
