package store

import (
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
