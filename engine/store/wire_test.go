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
