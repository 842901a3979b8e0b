package wal

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/swarmsim/swarmsim/engine/env"
)

// FuzzDecodeRecord feeds arbitrary bytes to everything that reads the
// disk: the record decoder, every payload decoder, the segment scanner with
// replay applying what it finds, the look-past-damage scan and the snapshot
// file decoder. None may panic or read out of bounds, and a record that
// decodes must encode back to the same bytes. The corpus in
// testdata/fuzz/FuzzDecodeRecord holds real segments, single records,
// torn and flipped variants, and a snapshot file
// (SWARMSIM_WAL_WRITE_CORPUS=1 go test -run TestWriteFuzzCorpus rewrites it).
func FuzzDecodeRecord(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, n, err := decodeRecord(data)
		if err == nil {
			if n < headerBytes || n > len(data) {
				t.Fatalf("decoded a record of %d bytes from %d", n, len(data))
			}
			b, start := beginRecord(nil)
			b = append(b, rec.payload...)
			endRecord(b, start, rec.typ, rec.seq)
			if !bytes.Equal(b, data[:n]) {
				t.Fatalf("record does not encode back to its bytes")
			}
			if seq, ok := intactAt(data); !ok || seq != rec.seq {
				t.Fatalf("intactAt disagrees with decodeRecord")
			}
			decodePayloads(rec.payload)
		}
		decodePayloads(data)

		// Scan as a segment, applying batches as replay does.
		firstSeq := uint64(1)
		if len(data) >= headerBytes {
			firstSeq = binary.LittleEndian.Uint64(data[16:24])
		}
		st := replayState{durable: durable{meta: map[string][]byte{}}}
		seg := segInfo{num: 0, firstSeq: firstSeq}
		first := true
		sc, err := scanSegment(data, firstSeq, func(b *batch) error {
			err := st.applyBatch(b, &seg, first, true)
			first = false
			return err
		})
		if err == nil {
			if sc.validEnd > len(data) || (sc.damaged() && sc.damageOff < sc.validEnd) {
				t.Fatalf("scan: valid to %d, damage at %d, of %d bytes", sc.validEnd, sc.damageOff, len(data))
			}
			if sc.damaged() {
				laterBatchAfter(data, sc.damageOff, sc.nextSeq)
			}
		}
		decodeSnapshotFile(data)
	})
}

func decodePayloads(p []byte) {
	decodeSegmentHeader(p)
	decodeCheckpoint(p)
	decodeEntry(p)
	decodeHardState(p)
	decodeMeta(p)
	decodeSnapshotMarker(p)
	decodeCommit(p)
}

// fuzzSeeds builds a small WAL and returns its segments, cut and flipped
// variants, each record kind alone, and its snapshot file.
func fuzzSeeds(tb testing.TB) [][]byte {
	dir := tb.TempDir()
	w, err := Open(dir, newGoLoop(tb), Options{SegmentBytes: 600})
	must(tb, err)
	must(tb, w.SetMeta("identity", []byte("m1")))
	must(tb, w.Append([]env.Entry{
		{Term: 1, Index: 1, Type: env.EntryConfChange, Data: []byte("cc")},
		{Term: 1, Index: 2, Data: []byte("two")},
		{Term: 2, Index: 3, Type: env.EntryConfChangeV2},
	}))
	must(tb, w.SetHardState(env.HardState{Term: 2, Vote: 1, Commit: 2}))
	mustSync(tb, w)
	must(tb, w.Append(ents(2, 3, 6)))
	must(tb, w.SetMeta("identity", nil))
	must(tb, w.SaveSnapshot(env.Snapshot{Index: 4, Term: 2, Data: []byte("snap"),
		Conf: env.ConfState{Voters: []uint64{1, 2}, LearnersNext: []uint64{3}, AutoLeave: true}}))
	mustSync(tb, w)
	must(tb, w.Append(ents(3, 7, 7)))
	must(tb, w.Close())

	var seeds [][]byte
	for _, name := range append(files(tb, dir, segmentSuffix), files(tb, dir, snapSuffix)...) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		must(tb, err)
		seeds = append(seeds, b, b[:len(b)*2/3])
		flipped := bytes.Clone(b)
		flipped[len(b)/2] ^= 0x20
		seeds = append(seeds, flipped)
		if filepath.Ext(name) == segmentSuffix {
			for off := 0; off < len(b); {
				_, n, err := decodeRecord(b[off:])
				if err != nil {
					break
				}
				seeds = append(seeds, b[off:off+n])
				off += n
			}
		}
	}
	return seeds
}

// TestWriteFuzzCorpus rewrites the checked-in corpus from fuzzSeeds.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("SWARMSIM_WAL_WRITE_CORPUS") == "" {
		t.Skip("set SWARMSIM_WAL_WRITE_CORPUS=1 to rewrite testdata/fuzz/FuzzDecodeRecord")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeRecord")
	must(t, os.MkdirAll(dir, 0o755))
	for i, seed := range fuzzSeeds(t) {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", seed)
		must(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644))
	}
}
