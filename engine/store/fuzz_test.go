package store

import (
	"bytes"
	"testing"
)

// fuzzSeeds are encoded proposals from the random workload, valid and not.
func fuzzSeeds(t testing.TB) [][]byte {
	s := baseStore(t)
	g := gen{c: &splitmix{7}, s: s}
	seeds := [][]byte{nil, {0x12, 0x00}, {0xff}, enc(t, 1, aStatus("t1", running, 1))}
	for range 30 {
		data := g.encode(g.proposal())
		seeds = append(seeds, data)
		_, _ = s.Apply(s.AppliedIndex()+1, data)
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
		res, err := s.Apply(2, data)
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
