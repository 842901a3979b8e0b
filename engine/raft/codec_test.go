package raft

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	pb "go.etcd.io/raft/v3/raftpb"
)

func TestEntryRoundTrip(t *testing.T) {
	ps := []proposal{{seq: 1, data: []byte("a=1")}, {seq: 2, data: nil}, {seq: 300, data: bytes.Repeat([]byte("x"), 1000)}}
	packed := appendPacked(nil, 0xfeed, ps)
	inc, refs, err := decodeEntry(packed, nil)
	if err != nil || inc != 0xfeed || len(refs) != 3 {
		t.Fatalf("packed: inc %x refs %d err %v", inc, len(refs), err)
	}
	for i, r := range refs {
		if r.seq != ps[i].seq || !bytes.Equal(r.data, ps[i].data) {
			t.Fatalf("packed proposal %d: %d %q", i, r.seq, r.data)
		}
	}
	single := appendSingle(nil, 7, 42, []byte("k=v"))
	inc, refs, err = decodeEntry(single, nil)
	if err != nil || inc != 7 || len(refs) != 1 || refs[0].seq != 42 || string(refs[0].data) != "k=v" {
		t.Fatalf("single: %x %+v %v", inc, refs, err)
	}
	if _, refs, err := decodeEntry(nil, nil); err != nil || len(refs) != 0 {
		t.Fatalf("empty entry: %v %v", refs, err)
	}
}

func TestEntryProposals(t *testing.T) {
	ps := []proposal{{seq: 1, data: []byte("a")}, {seq: 2, data: []byte("bc")}}
	got, err := EntryProposals(appendPacked(nil, 9, ps))
	if err != nil || len(got) != 2 || string(got[0]) != "a" || string(got[1]) != "bc" {
		t.Fatalf("packed: %q %v", got, err)
	}
	if got, err := EntryProposals(nil); err != nil || len(got) != 0 {
		t.Fatalf("no-op entry: %q %v", got, err)
	}
	if _, err := EntryProposals([]byte{1}); !errors.Is(err, ErrCorruptEntry) {
		t.Fatalf("corrupt entry: %v", err)
	}
}

func TestEntryDecodeRejects(t *testing.T) {
	for name, b := range map[string][]byte{
		"short":          {entrySingle, 1, 2},
		"unknown kind":   append([]byte{9}, make([]byte, 9)...),
		"no seq":         append([]byte{entrySingle}, make([]byte, 8)...),
		"count too big":  append(append([]byte{entryPacked}, make([]byte, 8)...), 0xff, 0x01),
		"length too big": append(append([]byte{entryPacked}, make([]byte, 8)...), 1, 1, 50, 'x'),
		"trailing":       append(appendPacked(nil, 1, []proposal{{seq: 1}, {seq: 2}}), 0),
	} {
		if _, _, err := decodeEntry(b, nil); !errors.Is(err, ErrCorruptEntry) {
			t.Errorf("%s: err %v, want ErrCorruptEntry", name, err)
		}
	}
}

func TestContextAndSnapshotRoundTrip(t *testing.T) {
	c := ccContext{inc: 5, seq: 9, member: Member{RaftID: 77, NodeID: "m7", Addr: "10.0.0.7:4242"}}
	got, err := decodeContext(encodeContext(c))
	if err != nil || got != c {
		t.Fatalf("context: %+v %v", got, err)
	}
	img := snapshotImage{
		members: []Member{{RaftID: 1, NodeID: "m1"}, {RaftID: 2, NodeID: "m2", Addr: "a"}},
		removed: []uint64{3, 9},
		state:   []byte("state bytes"),
	}
	back, err := decodeSnapshot(encodeSnapshot(img))
	if err != nil || !slices.Equal(back.members, img.members) || !slices.Equal(back.removed, img.removed) || string(back.state) != "state bytes" {
		t.Fatalf("snapshot: %+v %v", back, err)
	}
	if _, err := decodeSnapshot([]byte("nope")); !errors.Is(err, ErrCorruptSnapshot) {
		t.Fatalf("bad snapshot: %v", err)
	}
}

func TestMessageRoundTrip(t *testing.T) {
	m := &Message{Raft: &pb.Message{
		Type: pb.MsgApp.Enum(), To: new(uint64(2)), From: new(uint64(1)), Term: new(uint64(3)),
		Index: new(uint64(41)), Entries: []*pb.Entry{{Data: []byte("a")}, {Data: []byte("b")}},
	}}
	if got := m.TraceString(); got != "MsgApp t3 i41 n2" {
		t.Errorf("TraceString = %q", got)
	}
	if m.Method() != "/swarm.Raft/Step" {
		t.Errorf("Method = %q", m.Method())
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := UnmarshalMessage(b)
	if err != nil || back.TraceString() != m.TraceString() || back.Removed {
		t.Fatalf("round trip: %v %v", back, err)
	}
	if _, err := UnmarshalMessage([]byte{7}); err == nil {
		t.Fatal("bad flag accepted")
	}
}

func TestRaftIDFor(t *testing.T) {
	a, b := RaftIDFor("m1"), RaftIDFor("m2")
	if a == b || a == 0 || a >= 1<<63 || RaftIDFor("m1") != a {
		t.Fatalf("RaftIDFor: %x %x", a, b)
	}
}

// The decoders read bytes other nodes wrote: they must never panic, and
// what they accept must re-encode to an equivalent value.
func FuzzDecodeEntry(f *testing.F) {
	f.Add(appendSingle(nil, 1, 2, []byte("k=v")))
	f.Add(appendPacked(nil, 3, []proposal{{seq: 1, data: []byte("a")}, {seq: 2, data: []byte("bb")}}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		inc, refs, err := decodeEntry(b, nil)
		if err != nil || len(b) == 0 {
			return
		}
		var again []byte
		if b[0] == entrySingle {
			again = appendSingle(nil, inc, refs[0].seq, refs[0].data)
		} else {
			ps := make([]proposal, len(refs))
			for i, r := range refs {
				ps[i] = proposal{seq: r.seq, data: r.data}
			}
			again = appendPacked(nil, inc, ps)
		}
		inc2, refs2, err := decodeEntry(again, nil)
		if err != nil || inc2 != inc || len(refs2) != len(refs) {
			t.Fatalf("re-encoded entry differs: %v", err)
		}
	})
}

func FuzzDecodeContext(f *testing.F) {
	f.Add(encodeContext(ccContext{inc: 1, seq: 2, member: Member{RaftID: 3, NodeID: "m3", Addr: "x"}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeContext(b)
		if err != nil {
			return
		}
		if c2, err := decodeContext(encodeContext(c)); err != nil || c2 != c {
			t.Fatalf("re-encoded context differs: %+v %v", c2, err)
		}
	})
}

func FuzzDecodeSnapshot(f *testing.F) {
	f.Add(encodeSnapshot(snapshotImage{members: []Member{{RaftID: 1, NodeID: "m1"}}, removed: []uint64{2}, state: []byte("s")}))
	f.Fuzz(func(t *testing.T, b []byte) {
		img, err := decodeSnapshot(b)
		if err != nil {
			return
		}
		img2, err := decodeSnapshot(encodeSnapshot(img))
		if err != nil || !slices.Equal(img2.members, img.members) || !slices.Equal(img2.removed, img.removed) || !bytes.Equal(img2.state, img.state) {
			t.Fatalf("re-encoded snapshot differs: %v", err)
		}
	})
}

func FuzzUnmarshalMessage(f *testing.F) {
	b, _ := (&Message{Raft: &pb.Message{Type: pb.MsgHeartbeat.Enum(), To: new(uint64(1)), From: new(uint64(2))}}).Marshal()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := UnmarshalMessage(b)
		if err != nil {
			return
		}
		_ = m.TraceString()
		if _, err := m.Marshal(); err != nil {
			t.Fatal(err)
		}
	})
}

// uvarint reads what binary.Uvarint reads: varints of every length,
// minimal or padded, whole or cut short, with and without bytes after.
func TestUvarint(t *testing.T) {
	var in [][]byte
	for shift := range 64 {
		for _, v := range []uint64{1 << shift, 1<<shift - 1, 1<<shift | 0x55} {
			enc := binary.AppendUvarint(nil, v)
			padded := append(slices.Clone(enc[:len(enc)-1]), enc[len(enc)-1]|0x80, 0x00)
			for _, tail := range [][]byte{nil, {0x00}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, {0x05, 0x80, 0x81}} {
				in = append(in, append(slices.Clone(enc), tail...), append(slices.Clone(padded), tail...))
			}
			in = append(in, enc[:len(enc)-1])
		}
	}
	in = append(in, nil, []byte{0x80}, bytes.Repeat([]byte{0xff}, 11), append(bytes.Repeat([]byte{0xff}, 9), 0x02))
	for _, b := range in {
		v, n := uvarint(b)
		wv, wn := binary.Uvarint(b)
		if v != wv || n != wn {
			t.Fatalf("uvarint(%x) = %d, %d; binary.Uvarint: %d, %d", b, v, n, wv, wn)
		}
	}
}
