package store

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/swarmsim/swarmsim/engine/api"
)

// fuzzSeeds are encoded proposals from the random workload, valid and not.
func fuzzSeeds(t testing.TB) [][]byte {
	s := baseStore(t)
	g := gen{c: &splitmix{7}, s: s}
	seeds := [][]byte{nil, {0x12, 0x00}, {0xff}, enc(t, 1, aStatus("t1", running, 1))}
	for range 30 {
		data := g.encode(g.proposal())
		seeds = append(seeds, data)
		_, _ = s.Apply(s.AppliedIndex()+1, data, nil)
	}
	return append(seeds, snapshot(t, s))
}

// Apply and Restore take bytes from the raft log and from peers' snapshots:
// whatever the bytes, they return an error or apply cleanly, never panic,
// and a failure changes nothing.
func FuzzApply(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := baseStore(t)
		before := snapshot(t, s)
		res, err := s.Apply(2, data, nil)
		switch {
		case err != nil:
			if res != nil {
				t.Fatalf("decode error %v with result %v", err, res)
			}
			if !bytes.Equal(before, snapshot(t, s)) {
				t.Fatal("an undecodable entry changed the store")
			}
		case res != nil:
			if _, ok := res.(error); !ok {
				t.Fatalf("result %T, want error", res)
			}
			if !bytes.Equal(before, snapshot(t, s)) {
				t.Fatal("a rejected proposal changed the store")
			}
		}
		checkIndexes(t, s)
		checkRestore(t, s, data)
	})
}

// FuzzRestore feeds arbitrary snapshots to Restore.
func FuzzRestore(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRestore(t, baseStore(t), data)
	})
}

// checkRestore restores data into s: on failure s is unchanged; on success
// the content survives a snapshot round trip byte for byte.
func checkRestore(t *testing.T, s *Store, data []byte) {
	before := snapshot(t, s)
	if err := s.Restore(data); err != nil {
		if !bytes.Equal(before, snapshot(t, s)) {
			t.Fatal("a failed restore changed the store")
		}
		return
	}
	checkIndexes(t, s)
	snap := snapshot(t, s)
	again, _ := newSyncStore()
	if err := again.Restore(snap); err != nil {
		t.Fatalf("restoring a store's own snapshot: %v", err)
	}
	if !bytes.Equal(snap, snapshot(t, again)) {
		t.Fatal("snapshot round trip changed the bytes")
	}
}

// FuzzDecode checks the hand decoders of entries and snapshots against
// proto.Unmarshal: the same inputs fail, and the others decode to the same
// proposal or snapshot.
func FuzzDecode(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	// Shapes the hand decoder must leave to proto: a field twice, an
	// unknown field, both compact targets, a wrong wire type, bad UTF-8.
	for _, seed := range []string{
		"\x12\x08\x5a\x06\x0a\x01t\x18\x01\x5a\x00",        // assignment twice: merged
		"\x12\x0a\x5a\x08\x0a\x01t\x0a\x01u\x18\x01",       // task_id twice: last wins
		"\x12\x07\x5a\x05\x0a\x01t\x20\x01",                // unknown field 4
		"\x12\x06\x52\x02\x0a\x00\x5a\x00",                 // status, then assignment
		"\x12\x05\x5a\x03\x0a\x01\xff",                     // invalid UTF-8
		"\x12\x04\x08\x01\x08\x02\x5a\x00",                 // kind twice (length off: an error)
		"\x12\x06\x08\x01\x08\x02\x5a\x00",                 // kind twice
		"\x12\x05\x52\x03\x12\x01\x08",                     // status with a bad status
		"\x12\x04\x52\x02\x12\x00\x08\x05\x12\x02\x5d\x00", // trailing garbage
		"\x08\x96\x01\x12\x04\x5a\x02\x18\x07\x0a\x03abc",  // unknown top-level bytes
		"\x12\x03\x5a\x01\x18",                             // truncated varint
		"\x12\x04\x5a\x02\x1a\x00",                         // version as bytes
		// KV actions (field 9): key 1, meta 2 (version 1, created 2, updated 3), value 3.
		"\x12\x0f\x08\x01\x4a\x0b\x0a\x01k\x12\x02\x08\x05\x1a\x02vv", // canonical update
		"\x12\x08\x4a\x02\x0a\x00\x4a\x02\x1a\x00",                    // kv twice: merged
		"\x12\x08\x4a\x06\x0a\x01k\x0a\x01j",                          // key twice: last wins
		"\x12\x0a\x4a\x08\x12\x02\x08\x01\x12\x02\x10\x02",            // meta twice: merged
		"\x12\x08\x4a\x06\x1a\x01a\x1a\x01b",                          // value twice: last wins
		"\x12\x06\x4a\x04\x0a\x01k\x20\x01",                           // unknown kv field
		"\x12\x08\x4a\x06\x12\x04\x08\x01\x20\x01",                    // unknown meta field
		"\x12\x06\x4a\x04\x12\x02\x0a\x00",                            // version as bytes
		"\x12\x05\x4a\x03\x0a\x01\xff",                                // invalid UTF-8 key
		"\x12\x04\x4a\x02\x08\x01",                                    // key as varint
		"\x12\x06\x4a\x04\x0a\x01k\x4a\x00",                           // kv, then kv: merged
		"\x12\x06\x4a\x00\x52\x02\x0a\x00",                            // kv, then a status
		"\x12\x05\x08\xff\xff\xff\xff\x0f\x4a\x00",                    // kind beyond int32
		"\x12\x04\x4a\x02\x12\x05",                                    // meta overruns
		// Lone KV writes, the one-pass decoder's shape, and near misses.
		"\x08\x05\x12\x12\x08\x01\x4a\x0e\x0a\x01k\x12\x06\x08\x05\x10\x01\x18\x02\x1a\x01v", // timestamp, full meta
		"\x08\x05\x12\x09\x4a\x07\x0a\x01k\x12\x00\x1a\x00",                                  // empty meta and value
		"\x08\x05\x12\x07\x4a\x05\x0a\x01k\x12\x00",                                          // no value
		"\x08\x05\x12\x07\x4a\x05\x0a\x01k\x1a\x00",                                          // creation: no meta
		"\x08\x05\x12\x08\x4a\x06\x0a\x01k\x1a\x01v",                                         // creation with a value
		"\x12\x0b\x4a\x09\x0a\x01k\x12\x04\x10\x01\x18\x05",                                  // meta without a version
		"\x12\x0b\x4a\x09\x0a\x01k\x12\x04\x08\x01\x18\x05",                                  // meta without a creation time
		"\x12\x0b\x4a\x09\x0a\x01k\x12\x04\x10\x01\x08\x05",                                  // meta out of order
		"\x12\x0b\x4a\x09\x0a\x01k\x12\x04\x08\x01\x08\x05",                                  // version twice
		"\x12\x05\x4a\x03\x0a\x01k\x08\x05",                                                  // timestamp after the action
		"\x08\x05\x08\x06\x12\x05\x4a\x03\x0a\x01k",                                          // timestamp twice
		"\x12\x05\x4a\x03\x0a\x01k\x12\x05\x4a\x03\x0a\x01j",                                 // two actions
		"\x12\x07\x4a\x05\x1a\x01v\x0a\x00",                                                  // value before key
		"\x12\x04\x4a\x02\x0a\x00",                                                           // empty key
		"\x12\x07\x4a\x05\x0a\x01k\x1a\x00\x08",                                              // kind after the kv
	} {
		f.Add([]byte(seed))
	}
	// Task actions whose spec field the decoder must not split out.
	spec := func(image string) []byte {
		b, _ := proto.Marshal(&api.TaskSpec{Container: &api.ContainerSpec{Image: image}})
		return b
	}
	tk, _ := proto.Marshal(&api.Task{Id: "t1", ServiceId: "s1", Status: &api.TaskStatus{State: running}})
	withSpec := protowire.AppendBytes(protowire.AppendTag(tk, fieldTaskSpec, protowire.BytesType), spec("a"))
	for _, task := range [][]byte{
		withSpec,
		protowire.AppendBytes(protowire.AppendTag(withSpec, fieldTaskSpec, protowire.BytesType), spec("b")), // merged
		protowire.AppendVarint(protowire.AppendTag(tk, fieldTaskSpec, protowire.VarintType), 3),             // unknown
		append(protowire.AppendBytes(protowire.AppendTag(nil, fieldTaskSpec, protowire.BytesType), spec("c")), tk...),
	} {
		action := protowire.AppendBytes(protowire.AppendTag(nil, fieldActionTask, protowire.BytesType), task)
		f.Add(protowire.AppendBytes(protowire.AppendTag(nil, fieldProposalActions, protowire.BytesType), action))
		f.Add(protowire.AppendBytes(protowire.AppendTag(nil, 3, protowire.BytesType), task)) // a snapshot's task
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		snap, err := newContent().decodeSnapshot(data)
		var wantSnap api.StoreSnapshot
		wantErr := proto.Unmarshal(data, &wantSnap)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("snapshot: hand decoder error %v, proto error %v", err, wantErr)
		}
		// Unknown top-level fields are dropped: the store keeps objects only.
		wantSnap.ProtoReflect().SetUnknown(nil)
		if err == nil && !proto.Equal(snap, &wantSnap) {
			t.Fatalf("snapshot: hand decoder %v, proto %v", snap, &wantSnap)
		}

		ts, ops, err := newContent().decodeProposal(data, nil)
		var want api.Proposal
		wantErr = proto.Unmarshal(data, &want)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("hand decoder error %v, proto error %v", err, wantErr)
		}
		if err != nil {
			return
		}
		if ts != want.Timestamp || len(ops) != len(want.Actions) {
			t.Fatalf("decoded ts %d with %d actions, proto %d with %d", ts, len(ops), want.Timestamp, len(want.Actions))
		}
		for i := range ops {
			got, w := ops[i].action(), want.Actions[i]
			if ops[i].kind == opStatus || ops[i].kind == opAssign {
				w = proto.Clone(w).(*api.StoreAction)
				w.Kind = 0 // the kind of a compact action means nothing
			}
			if !proto.Equal(got, w) {
				t.Fatalf("action %d: hand decoder %v, proto %v", i, got, w)
			}
		}
	})
}
