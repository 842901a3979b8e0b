package store

import (
	"bytes"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// wireInputs are edge cases of the one-byte fast paths and beyond: empty,
// field 0, the largest one-byte tag, two-byte tags and lengths, lengths
// that run past the end, and truncated varints.
func wireInputs() [][]byte {
	in := [][]byte{nil, {}, {0x00}, {0x07}, {0x08}, {0x7f}, {0x80}, {0x80, 0x01}, {0xff},
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01},
		{0x00, 'a'}, {0x01, 'a'}, {0x02, 'a'}, {0x03, 'a', 'b', 'c', 'd'}, {0x7f}, {0x81, 0x00},
		{0x01, 0xff}, {0x02, 0xc3, 0xa9}, {0x01, 0xc3}, {0xf8, 0xff, 0xff, 0xff, 0x0f}, {0xf8, 0xff, 0xff, 0xff, 0x1f}}
	// Varints of every length, minimal or padded, whole or cut short,
	// followed by nothing or by bytes with and without a continuation bit
	// (shortVarint reads 8 bytes at a time).
	for shift := range 64 {
		for _, v := range []uint64{1 << shift, 1<<shift - 1, 1<<shift | 0x55} {
			enc := protowire.AppendVarint(nil, v)
			padded := append(bytes.Clone(enc[:len(enc)-1]), enc[len(enc)-1]|0x80, 0x00)
			for _, tail := range [][]byte{nil, {0x00}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, {0x05, 0x80, 0x81}} {
				in = append(in, append(bytes.Clone(enc), tail...), append(bytes.Clone(padded), tail...))
			}
			in = append(in, enc[:len(enc)-1])
		}
	}
	// Every one- and two-byte prefix followed by a few bytes, so lengths
	// land inside, at and past the end.
	for i := range 256 {
		in = append(in, []byte{byte(i)}, []byte{byte(i), 'x', 'y', 0x80})
		for j := range 256 {
			in = append(in, []byte{byte(i), byte(j), 'z'})
		}
	}
	return in
}

// TestWireHelpers: the fast tag, varint, bytes and string readers return
// what protowire returns (and, for strings, what utf8 validation decides)
// on every input.
func TestWireHelpers(t *testing.T) {
	for _, b := range wireInputs() {
		checkWire(t, b)
	}
}

func checkWire(t *testing.T, b []byte) {
	t.Helper()
	num, typ, n := consumeTag(b)
	wnum, wtyp, wn := consumeTagSlow(b)
	if wn < 0 {
		wnum, wtyp = 0, 0
	}
	if n < 0 {
		num, typ = 0, 0
	}
	if num != wnum || typ != wtyp || (n < 0) != (wn < 0) || (n >= 0 && n != wn) {
		t.Fatalf("consumeTag(%x) = %d, %d, %d; protowire: %d, %d, %d", b, num, typ, n, wnum, wtyp, wn)
	}
	v, n := consumeVarint(b)
	wv, wn := protowire.ConsumeVarint(b)
	if (n < 0) != (wn < 0) || (n >= 0 && (v != wv || n != wn)) {
		t.Fatalf("consumeVarint(%x) = %d, %d; protowire: %d, %d", b, v, n, wv, wn)
	}
	// shortVarint gives up on 10-byte varints only.
	if v, n := shortVarint(b); n >= 0 || wn >= 0 && wn < 10 {
		if n != wn || v != wv {
			t.Fatalf("shortVarint(%x) = %d, %d; protowire: %d, %d", b, v, n, wv, wn)
		}
	}
	p, n := consumeBytes(b)
	wp, wn := protowire.ConsumeBytes(b)
	if (n < 0) != (wn < 0) || (n >= 0 && (!bytes.Equal(p, wp) || n != wn || (p == nil) != (wp == nil))) {
		t.Fatalf("consumeBytes(%x) = %x, %d; protowire: %x, %d", b, p, n, wp, wn)
	}
	s, n := consumeString(b)
	valid := wn >= 0 && utf8.Valid(wp)
	if (n >= 0) != valid || (n >= 0 && (!bytes.Equal(s, wp) || n != wn)) {
		t.Fatalf("consumeString(%x) = %x, %d; want %x, valid %v", b, s, n, wp, valid)
	}
}

// FuzzWire extends TestWireHelpers to arbitrary bytes.
func FuzzWire(f *testing.F) {
	for _, b := range wireInputs()[:64] {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkWire(t, b) })
}

// TestAppendVarint: appendVarint writes what protowire writes, at every
// length boundary; tag1 does for every field the encoder writes.
func TestAppendVarint(t *testing.T) {
	vals := []uint64{0, 1, 0x7f, 0x80, 0xff, 1<<63 - 1, 1 << 63, ^uint64(0)}
	for k := range 64 {
		vals = append(vals, 1<<k-1, 1<<k, 1<<k+1)
	}
	for _, v := range vals {
		if got, want := appendVarint([]byte{9}, v), protowire.AppendVarint([]byte{9}, v); !bytes.Equal(got, want) {
			t.Fatalf("appendVarint(%d) = %x, protowire %x", v, got, want)
		}
	}
	for num := protowire.Number(1); num < 16; num++ {
		for _, typ := range []protowire.Type{protowire.VarintType, protowire.BytesType} {
			if got, want := []byte{tag1(num, typ)}, protowire.AppendTag(nil, num, typ); !bytes.Equal(got, want) {
				t.Fatalf("tag1(%d, %d) = %x, protowire %x", num, typ, got, want)
			}
		}
	}
}
