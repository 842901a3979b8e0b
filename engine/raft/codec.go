package raft

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"

	"github.com/swarmsim/swarmsim/engine/env"
)

// Wire formats of what this package puts in the raft log, in ConfChange
// contexts and in snapshots. They are decoded from other nodes' bytes, so
// every decoder checks lengths and never panics (see the fuzz tests).

// Normal entry data:
//
//	single:  0x01 | incarnation (8 bytes LE) | uvarint seq | payload...
//	packed:  0x02 | incarnation (8 bytes LE) | uvarint count |
//	         count × (uvarint seq | uvarint len | payload)
//
// The incarnation and sequence number name the proposal on the node that
// made it; other nodes ignore them. An empty entry (raft's own no-op at the
// start of every term) carries no proposal.
const (
	entrySingle byte = 0x01
	entryPacked byte = 0x02
)

// proposalRef names one proposal inside an entry.
type proposalRef struct {
	seq  uint64
	data []byte
}

// RaftIDFor derives a raft ID from a node's name: FNV-1a, kept in [1, 2^63).
// Fixed clusters use it so every member computes the same IDs; a cluster
// that re-adds a name after removing it must choose a fresh ID instead.
func RaftIDFor(id env.NodeID) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	h &= 1<<63 - 1
	if h == 0 {
		h = 1
	}
	return h
}

// NewRaftID draws a random raft ID, for a member added to a running
// cluster (a removed ID must never come back, so IDs of added members
// should not be derived from node names that can be reused).
func NewRaftID(r env.Rand) uint64 {
	return uint64(r.Int63n(1<<63-1)) + 1
}

// singleHeaderMax bounds what appendSingle adds before the data.
const singleHeaderMax = 1 + 8 + binary.MaxVarintLen64

func appendSingle(dst []byte, inc, seq uint64, data []byte) []byte {
	dst = append(dst, entrySingle)
	dst = binary.LittleEndian.AppendUint64(dst, inc)
	dst = binary.AppendUvarint(dst, seq)
	return append(dst, data...)
}

func packedSize(ps []proposal) int {
	n := 1 + 8 + binary.MaxVarintLen64
	for _, p := range ps {
		n += 2*binary.MaxVarintLen64 + len(p.data)
	}
	return n
}

func appendPacked(dst []byte, inc uint64, ps []proposal) []byte {
	dst = append(dst, entryPacked)
	dst = binary.LittleEndian.AppendUint64(dst, inc)
	dst = binary.AppendUvarint(dst, uint64(len(ps)))
	for _, p := range ps {
		dst = binary.AppendUvarint(dst, p.seq)
		dst = binary.AppendUvarint(dst, uint64(len(p.data)))
		dst = append(dst, p.data...)
	}
	return dst
}

// uvarint is binary.Uvarint, reading a varint of up to 8 bytes without a
// loop where 8 bytes can be read at once: a packed entry holds two
// varints per proposal, and every manager reads them all.
func uvarint(b []byte) (uint64, int) {
	if len(b) > 0 && b[0] < 0x80 {
		return uint64(b[0]), 1
	}
	if len(b) >= 8 {
		x := binary.LittleEndian.Uint64(b)
		if ends := ^x & 0x8080808080808080; ends != 0 {
			n := bits.TrailingZeros64(ends)>>3 + 1
			x &= 1<<(8*n) - 1
			return x&0x7f | x>>1&(0x7f<<7) | x>>2&(0x7f<<14) | x>>3&(0x7f<<21) |
				x>>4&(0x7f<<28) | x>>5&(0x7f<<35) | x>>6&(0x7f<<42) | x>>7&(0x7f<<49), n
		}
	}
	return binary.Uvarint(b)
}

// decodeEntry splits a normal entry into its proposals, appending them to
// refs. The payload slices alias data.
func decodeEntry(data []byte, refs []proposalRef) (inc uint64, _ []proposalRef, err error) {
	if len(data) == 0 {
		return 0, refs, nil
	}
	if len(data) < 9 {
		return 0, refs, fmt.Errorf("%w: %d-byte header", ErrCorruptEntry, len(data))
	}
	kind := data[0]
	inc = binary.LittleEndian.Uint64(data[1:9])
	rest := data[9:]
	switch kind {
	case entrySingle:
		seq, n := uvarint(rest)
		if n <= 0 {
			return 0, refs, fmt.Errorf("%w: bad sequence number", ErrCorruptEntry)
		}
		return inc, append(refs, proposalRef{seq: seq, data: rest[n:]}), nil
	case entryPacked:
		count, n := binary.Uvarint(rest)
		if n <= 0 || count > uint64(len(rest)) {
			return 0, refs, fmt.Errorf("%w: bad proposal count", ErrCorruptEntry)
		}
		rest = rest[n:]
		for i := uint64(0); i < count; i++ {
			seq, n := uvarint(rest)
			if n <= 0 {
				return 0, refs, fmt.Errorf("%w: proposal %d: bad sequence number", ErrCorruptEntry, i)
			}
			rest = rest[n:]
			size, n := uvarint(rest)
			if n <= 0 || size > uint64(len(rest)-n) {
				return 0, refs, fmt.Errorf("%w: proposal %d: bad length", ErrCorruptEntry, i)
			}
			rest = rest[n:]
			refs = append(refs, proposalRef{seq: seq, data: rest[:size:size]})
			rest = rest[size:]
		}
		if len(rest) != 0 {
			return 0, refs, fmt.Errorf("%w: %d trailing bytes", ErrCorruptEntry, len(rest))
		}
		return inc, refs, nil
	default:
		return 0, refs, fmt.Errorf("%w: unknown entry format %#x", ErrCorruptEntry, kind)
	}
}

// ConfChange context:
//
//	0x01 | incarnation (8 bytes LE) | uvarint seq | member
//	member = uvarint raftID | uvarint len | nodeID | uvarint len | addr
//
// Bootstrap entries carry incarnation 0 and seq 0.
const contextVersion byte = 0x01

type ccContext struct {
	inc, seq uint64
	member   Member
}

func appendMember(dst []byte, m Member) []byte {
	dst = binary.AppendUvarint(dst, m.RaftID)
	dst = binary.AppendUvarint(dst, uint64(len(m.NodeID)))
	dst = append(dst, m.NodeID...)
	dst = binary.AppendUvarint(dst, uint64(len(m.Addr)))
	return append(dst, m.Addr...)
}

func decodeMember(b []byte) (Member, []byte, error) {
	var m Member
	id, n := binary.Uvarint(b)
	if n <= 0 {
		return m, nil, fmt.Errorf("bad raft ID")
	}
	b = b[n:]
	name, b, err := decodeString(b)
	if err != nil {
		return m, nil, fmt.Errorf("node ID: %w", err)
	}
	addr, b, err := decodeString(b)
	if err != nil {
		return m, nil, fmt.Errorf("address: %w", err)
	}
	return Member{RaftID: id, NodeID: env.NodeID(name), Addr: addr}, b, nil
}

func decodeString(b []byte) (string, []byte, error) {
	size, n := binary.Uvarint(b)
	if n <= 0 || size > uint64(len(b)-n) {
		return "", nil, fmt.Errorf("bad length")
	}
	b = b[n:]
	return string(b[:size]), b[size:], nil
}

func encodeContext(c ccContext) []byte {
	b := make([]byte, 0, 32+len(c.member.NodeID)+len(c.member.Addr))
	b = append(b, contextVersion)
	b = binary.LittleEndian.AppendUint64(b, c.inc)
	b = binary.AppendUvarint(b, c.seq)
	return appendMember(b, c.member)
}

func decodeContext(b []byte) (ccContext, error) {
	var c ccContext
	if len(b) < 9 || b[0] != contextVersion {
		return c, fmt.Errorf("%w: conf change context: bad header", ErrCorruptEntry)
	}
	c.inc = binary.LittleEndian.Uint64(b[1:9])
	b = b[9:]
	seq, n := binary.Uvarint(b)
	if n <= 0 {
		return c, fmt.Errorf("%w: conf change context: bad sequence number", ErrCorruptEntry)
	}
	c.seq = seq
	m, rest, err := decodeMember(b[n:])
	if err != nil {
		return c, fmt.Errorf("%w: conf change context: %w", ErrCorruptEntry, err)
	}
	if len(rest) != 0 {
		return c, fmt.Errorf("%w: conf change context: %d trailing bytes", ErrCorruptEntry, len(rest))
	}
	c.member = m
	return c, nil
}

// Snapshot data wraps the state machine's snapshot with the member list:
//
//	"SWRS" | 0x01 | uvarint n | n × member | uvarint r | r × uvarint removedID |
//	state machine bytes...
var snapMagic = []byte("SWRS\x01")

type snapshotImage struct {
	members []Member // sorted by RaftID
	removed []uint64 // sorted
	state   []byte
}

func encodeSnapshot(img snapshotImage) []byte {
	n := len(snapMagic) + 2*binary.MaxVarintLen64 + len(img.state)
	for _, m := range img.members {
		n += 3*binary.MaxVarintLen64 + len(m.NodeID) + len(m.Addr)
	}
	n += len(img.removed) * binary.MaxVarintLen64
	b := make([]byte, 0, n)
	b = append(b, snapMagic...)
	b = binary.AppendUvarint(b, uint64(len(img.members)))
	for _, m := range img.members {
		b = appendMember(b, m)
	}
	b = binary.AppendUvarint(b, uint64(len(img.removed)))
	for _, id := range img.removed {
		b = binary.AppendUvarint(b, id)
	}
	return append(b, img.state...)
}

func decodeSnapshot(b []byte) (snapshotImage, error) {
	var img snapshotImage
	if len(b) < len(snapMagic) || string(b[:len(snapMagic)]) != string(snapMagic) {
		return img, fmt.Errorf("%w: bad header", ErrCorruptSnapshot)
	}
	b = b[len(snapMagic):]
	count, n := binary.Uvarint(b)
	if n <= 0 || count > uint64(len(b)) {
		return img, fmt.Errorf("%w: bad member count", ErrCorruptSnapshot)
	}
	b = b[n:]
	img.members = make([]Member, 0, count)
	for i := uint64(0); i < count; i++ {
		m, rest, err := decodeMember(b)
		if err != nil {
			return img, fmt.Errorf("%w: member %d: %w", ErrCorruptSnapshot, i, err)
		}
		img.members = append(img.members, m)
		b = rest
	}
	count, n = binary.Uvarint(b)
	if n <= 0 || count > uint64(len(b)) {
		return img, fmt.Errorf("%w: bad removed count", ErrCorruptSnapshot)
	}
	b = b[n:]
	img.removed = make([]uint64, 0, count)
	for i := uint64(0); i < count; i++ {
		id, n := binary.Uvarint(b)
		if n <= 0 {
			return img, fmt.Errorf("%w: removed ID %d", ErrCorruptSnapshot, i)
		}
		img.removed = append(img.removed, id)
		b = b[n:]
	}
	img.state = b
	slices.SortFunc(img.members, func(a, b Member) int { return cmpU64(a.RaftID, b.RaftID) })
	slices.Sort(img.removed)
	return img, nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
