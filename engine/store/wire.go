package store

import (
	"encoding/binary"
	"math/bits"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// The hand decoders read tags, varints and lengths that almost always fit
// in one byte (field numbers below 16, short keys, small kinds). The
// helpers below take that byte inline and call protowire for anything
// longer, so they return exactly what protowire (and so proto.Unmarshal)
// would for every input: TestWireHelpers compares them byte for byte, and
// FuzzDecode compares the decoders built on them with proto.Unmarshal.
// protowire's own functions are too large to inline, and a call per field
// was a fifth of the time spent decoding a KV write.

// consumeTag is protowire.ConsumeTag, failing as proto.Unmarshal does on a
// field number above the valid range.
func consumeTag(b []byte) (protowire.Number, protowire.Type, int) {
	// One byte: 0x08..0x7f is field 1..15 with its wire type (field 0 is
	// invalid and left to protowire to refuse).
	if len(b) > 0 && b[0] >= 0x08 && b[0] < 0x80 {
		return protowire.Number(b[0] >> 3), protowire.Type(b[0] & 7), 1
	}
	return consumeTagSlow(b)
}

func consumeTagSlow(b []byte) (protowire.Number, protowire.Type, int) {
	num, typ, n := protowire.ConsumeTag(b)
	if n >= 0 && num > protowire.MaxValidNumber {
		return 0, 0, -1
	}
	return num, typ, n
}

// consumeVarint is protowire.ConsumeVarint.
func consumeVarint(b []byte) (uint64, int) {
	if len(b) > 0 && b[0] < 0x80 {
		return uint64(b[0]), 1
	}
	return protowire.ConsumeVarint(b)
}

// consumeBytes is protowire.ConsumeBytes.
func consumeBytes(b []byte) ([]byte, int) {
	if len(b) > 0 && b[0] < 0x80 {
		if m := int(b[0]); m < len(b) {
			return b[1 : 1+m], 1 + m
		}
	}
	return protowire.ConsumeBytes(b)
}

// consumeString is consumeBytes for a proto3 string: invalid UTF-8 fails,
// as proto.Unmarshal fails on it.
func consumeString(b []byte) ([]byte, int) {
	v, n := consumeBytes(b)
	if n >= 0 && !validUTF8(v) {
		return nil, -1
	}
	return v, n
}

// shortVarint reads a varint of at most 9 bytes (any value below 2^63),
// as protowire.ConsumeVarint would; n is -1 for a longer or truncated one,
// which its callers leave to the general decoders. Where 8 bytes can be
// read at once, it finds the varint's end and gathers its 7-bit groups
// without a loop: timestamps take 9 bytes.
func shortVarint(b []byte) (v uint64, n int) {
	if len(b) > 0 && b[0] < 0x80 {
		return uint64(b[0]), 1
	}
	if len(b) < 8 {
		for i := 0; i < len(b); i++ {
			c := b[i]
			v |= uint64(c&0x7f) << (7 * i)
			if c < 0x80 {
				return v, i + 1
			}
		}
		return 0, -1
	}
	x := binary.LittleEndian.Uint64(b)
	if ends := ^x & 0x8080808080808080; ends != 0 {
		n = bits.TrailingZeros64(ends)>>3 + 1
		return gather7(x & (1<<(8*n) - 1)), n
	}
	if len(b) > 8 && b[8] < 0x80 {
		return gather7(x) | uint64(b[8])<<56, 9
	}
	return 0, -1
}

// gather7 packs the low 7 bits of each byte of x, first byte lowest.
func gather7(x uint64) uint64 {
	return x&0x7f | x>>1&(0x7f<<7) | x>>2&(0x7f<<14) | x>>3&(0x7f<<21) |
		x>>4&(0x7f<<28) | x>>5&(0x7f<<35) | x>>6&(0x7f<<42) | x>>7&(0x7f<<49)
}

// validUTF8 is utf8.Valid, answering short ASCII strings (IDs, keys)
// without a call.
func validUTF8(v []byte) bool {
	for _, c := range v {
		if c >= utf8.RuneSelf {
			return utf8.Valid(v)
		}
	}
	return true
}

// validUTF8String is validUTF8 for a string.
func validUTF8String(v string) bool {
	for i := range len(v) {
		if v[i] >= utf8.RuneSelf {
			return utf8.ValidString(v)
		}
	}
	return true
}

// appendVarint is protowire.AppendVarint, small enough to inline (varints
// have one encoding: TestAppendVarint compares).
func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// tag1 is the one-byte tag of field num (below 16) of wire type typ, as
// protowire.AppendTag writes it.
func tag1(num protowire.Number, typ protowire.Type) byte { return byte(num)<<3 | byte(typ) }
