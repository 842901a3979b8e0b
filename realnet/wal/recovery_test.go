package wal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/swarmsim/swarmsim/engine/env"
)

// noFlush skips real fsyncs: for tests of replay logic on copies of a
// directory, where durability is not the question and thousands of opens
// would otherwise wait on the disk.
func noFlush() Options {
	return Options{hooks: &ioHooks{
		fsync:   func(*os.File) error { return nil },
		syncDir: func(string) error { return nil },
	}}
}

// buildLog writes batches to a fresh directory and returns it, the model
// of everything but the last batch, the model with it, and where the last
// batch starts and ends in the last segment. newSegment makes the last
// batch open a segment of its own.
func buildLog(t *testing.T, newSegment bool) (dir string, before, after model, start, end int64) {
	t.Helper()
	dir = t.TempDir()
	opts := Options{SegmentBytes: 1 << 20}
	if newSegment {
		opts.SegmentBytes = 1
	}
	w := mustOpen(t, dir, opts)
	var m model
	stage := func(i uint64) {
		es := ents(1+i/3, 3*i+1, 3*i+3)
		must(t, w.Append(es))
		m.append(es)
		hs := env.HardState{Term: 1 + i/3, Vote: 1, Commit: 3 * i}
		must(t, w.SetHardState(hs))
		m.hs = hs
		k, v := fmt.Sprintf("k%d", i%2), fmt.Appendf(nil, "v%d", i)
		must(t, w.SetMeta(k, v))
		m.setMeta(k, v)
	}
	for i := range uint64(5) {
		stage(i)
		mustSync(t, w)
	}
	s := env.Snapshot{Index: 7, Term: 1, Data: []byte("snapshot seven")}
	must(t, w.SaveSnapshot(s))
	m.saveSnapshot(s)
	mustSync(t, w)
	before = m.clone()
	seg := lastSegment(t, dir)
	start = fileSize(t, seg)
	if newSegment {
		start = 0
	}
	// The last batch carries every kind of record: entries (one replacing
	// a suffix), a snapshot marker, meta and hard state.
	stage(5)
	es := ents(9, 16, 17)
	must(t, w.Append(es))
	m.append(es)
	// Not past entry 9, so that no earlier segment is deleted: those
	// deletions would follow this batch's fsync, so a directory holding
	// them and a torn last batch could not be.
	s = env.Snapshot{Index: 8, Term: 1, Data: []byte("snapshot eight")}
	must(t, w.SaveSnapshot(s))
	m.saveSnapshot(s)
	mustSync(t, w)
	mustClose(t, w)
	end = fileSize(t, lastSegment(t, dir))
	if newSegment && lastSegment(t, dir) == seg {
		t.Fatal("last batch did not open a new segment")
	}
	return dir, before, m, start, end
}

// A crash can cut the last batch at any byte: every cut recovers exactly
// the batches before it, leaves the segment ending at valid data, and lets
// new batches follow.
func TestTornLastBatchAtEveryOffset(t *testing.T) {
	for _, newSegment := range []bool{false, true} {
		t.Run(fmt.Sprintf("newSegment=%v", newSegment), func(t *testing.T) {
			dir, before, after, start, end := buildLog(t, newSegment)
			seg := filepath.Base(lastSegment(t, dir))
			orig, err := os.ReadFile(filepath.Join(dir, seg))
			must(t, err)
			sc := newScratch(t, dir)
			for cut := start; cut <= end; cut++ {
				// Cut short (a process killed mid-write), or the file's full
				// length with the unwritten part zero (a machine losing power
				// after the size reached the disk but not the data).
				for _, zeroed := range []bool{false, true} {
					if cut == end && zeroed {
						continue
					}
					data := bytes.Clone(orig[:cut])
					if zeroed {
						data = append(data, make([]byte, end-cut)...)
					}
					want := before
					if bytes.Equal(data, orig) { // zeroed bytes that were zero
						want = after
					}
					c := sc.reset(t, seg, data)
					path := filepath.Join(c, seg)
					w, err := Open(c, newGoLoop(t), noFlush())
					if err != nil {
						t.Fatalf("cut at %d (zeroed %v): %v", cut, zeroed, err)
					}
					checkState(t, mustLoad(t, w), want)
					if !bytes.Equal(data, orig) {
						if size, err := os.Stat(path); start == 0 && err == nil {
							t.Fatalf("cut at %d: an empty torn segment was kept (%d bytes)", cut, size.Size())
						} else if start > 0 && size.Size() != start {
							t.Fatalf("cut at %d: segment left at %d bytes, want %d", cut, size.Size(), start)
						}
					}
					if (cut-start)%13 != 0 && cut != end-1 {
						mustClose(t, w)
						continue
					}
					// New batches follow the valid data (checked at some of the
					// offsets: each check costs a few fsyncs).
					next := ents(20, want.last()+1, want.last()+2)
					must(t, w.Append(next))
					mustSync(t, w)
					mustClose(t, w)
					want = want.clone()
					want.append(next)
					w = mustOpen(t, c, noFlush())
					checkState(t, mustLoad(t, w), want)
					mustClose(t, w)
				}
			}
			t.Logf("cut the last batch at each of %d offsets", end-start+1)
		})
	}
}

// A flipped bit anywhere but in the last batch is corruption: Open fails,
// naming the file and the offset, and loads nothing.
func TestBitFlipBeforeTheLastBatchIsAnError(t *testing.T) {
	dir, _, _, start, _ := buildLog(t, false)
	seg := filepath.Base(lastSegment(t, dir))
	orig, err := os.ReadFile(filepath.Join(dir, seg))
	must(t, err)
	sc := newScratch(t, dir)
	for off := range start {
		data := bytes.Clone(orig)
		data[off] ^= 1 << (off % 8)
		c := sc.reset(t, seg, data)
		checkCorrupt(t, c, seg, fmt.Sprintf("bit %d of byte %d", off%8, off))
		// Nothing was repaired: the damaged file is as it was.
		got, err := os.ReadFile(filepath.Join(c, seg))
		must(t, err)
		if !bytes.Equal(got, data) {
			t.Fatalf("byte %d: Open changed a corrupt segment", off)
		}
	}
}

// In a segment that later segments follow, even the last batch is beyond
// doubt: it was fsynced before the next segment began.
func TestBitFlipInAnEarlierSegmentIsAnError(t *testing.T) {
	dir, _, _, _, _ := buildLog(t, true)
	segs := files(t, dir, segmentSuffix)
	first := segs[len(segs)-2]
	orig, err := os.ReadFile(filepath.Join(dir, first))
	must(t, err)
	sc := newScratch(t, dir)
	for off := range len(orig) {
		data := bytes.Clone(orig)
		data[off] ^= 0x80
		checkCorrupt(t, sc.reset(t, first, data), first, fmt.Sprintf("byte %d", off))
	}
	// Cut short is corruption there too.
	c := copyDir(t, dir)
	must(t, os.WriteFile(filepath.Join(c, first), orig[:len(orig)-1], 0o600))
	checkCorrupt(t, c, first, "cut short")
}

// Damage inside the last batch cannot be told from a torn write: it is
// dropped like one (the limit doc.go states).
func TestBitFlipInTheLastBatchIsATornWrite(t *testing.T) {
	dir, before, _, start, end := buildLog(t, false)
	seg := filepath.Base(lastSegment(t, dir))
	orig, err := os.ReadFile(filepath.Join(dir, seg))
	must(t, err)
	sc := newScratch(t, dir)
	for off := start; off < end; off += 7 {
		data := bytes.Clone(orig)
		data[off] ^= 0x10
		c := sc.reset(t, seg, data)
		w, err := Open(c, newGoLoop(t), noFlush())
		if err != nil {
			t.Fatalf("byte %d: %v", off, err)
		}
		checkState(t, mustLoad(t, w), before)
		mustClose(t, w)
	}
}

func checkCorrupt(t *testing.T, dir, file, what string) {
	t.Helper()
	w, err := Open(dir, newGoLoop(t), noFlush())
	if err == nil {
		st, _ := w.Load()
		w.Close()
		t.Fatalf("%s: opened, loading %d entries", what, len(st.Entries))
	}
	var ce *CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("%s: %v is not a *CorruptError", what, err)
	}
	if filepath.Base(ce.File) != file || !strings.Contains(err.Error(), file) {
		t.Fatalf("%s: error %q does not name %s", what, err, file)
	}
	if ce.Offset >= 0 && !strings.Contains(err.Error(), fmt.Sprintf("offset %d", ce.Offset)) {
		t.Fatalf("%s: error %q does not say the offset", what, err)
	}
}

// A batch whose checksums hold but whose content is not understood was
// not torn: it is an error even at the very end of the log.
func TestMalformedRecordAtTheTailIsAnError(t *testing.T) {
	dir, _, after, _, _ := buildLog(t, false)
	seg := lastSegment(t, dir)
	w := mustOpen(t, dir, Options{})
	checkState(t, mustLoad(t, w), after)
	seq := w.pend.seq
	mustClose(t, w)

	for name, rec := range map[string]struct {
		t       recType
		payload []byte
	}{
		"unknown type":       {recType(99), []byte("from the future")},
		"short hard state":   {recHardState, []byte{1, 2, 3}},
		"entry of index 0":   {recEntry, make([]byte, entryFixedBytes)},
		"header in the body": {recSegment, segmentHeader{num: 0, firstSeq: seq}.appendTo(nil)},
	} {
		t.Run(name, func(t *testing.T) {
			c := copyDir(t, dir)
			var b []byte
			var start int
			b, start = beginRecord(b)
			b = append(b, rec.payload...)
			endRecord(b, start, rec.t, seq)
			b, start = beginRecord(b)
			b = appendCommit(b, 1)
			endRecord(b, start, recCommit, seq)
			f, err := os.OpenFile(filepath.Join(c, filepath.Base(seg)), os.O_WRONLY|os.O_APPEND, 0)
			must(t, err)
			_, err = f.Write(b)
			must(t, err)
			must(t, f.Close())
			checkCorrupt(t, c, filepath.Base(seg), name)
		})
	}
}

func TestSnapshotFileDamage(t *testing.T) {
	dir, _, after, _, _ := buildLog(t, false)
	name := snapName(after.snap.Index, after.snap.Term)
	orig, err := os.ReadFile(filepath.Join(dir, name))
	must(t, err)
	sc := newScratch(t, dir)
	for off := range len(orig) {
		data := bytes.Clone(orig)
		data[off] ^= 4
		checkCorrupt(t, sc.reset(t, name, data), name, fmt.Sprintf("snapshot byte %d", off))
	}
	c := copyDir(t, dir)
	must(t, os.WriteFile(filepath.Join(c, name), orig[:len(orig)-3], 0o600))
	checkCorrupt(t, c, name, "snapshot cut short")
	c = copyDir(t, dir)
	must(t, os.Remove(filepath.Join(c, name)))
	checkCorrupt(t, c, name, "snapshot missing")
	// The file of another snapshot under this one's name.
	c = copyDir(t, dir)
	must(t, os.Rename(filepath.Join(c, snapName(7, 1)), filepath.Join(c, name)))
	checkCorrupt(t, c, name, "snapshot of another index")
}

// A snapshot that failed half-way (a temp file), or whose marker never
// became durable (a whole file the log does not name), is not used, and
// Open clears it away.
func TestUnfinishedSnapshotsAreIgnored(t *testing.T) {
	dir, _, after, _, _ := buildLog(t, false)
	tmp := filepath.Join(dir, "123"+snapTmpSuffix)
	must(t, os.WriteFile(tmp, []byte("half a snapsh"), 0o600))
	orphan := env.Snapshot{Index: 40, Term: 9, Data: []byte("never acknowledged")}
	must(t, writeSnapshotFile(dir, &orphan, &ioHooks{fsync: (*os.File).Sync, syncDir: syncDir}))
	must(t, os.WriteFile(filepath.Join(dir, "99"+snapTmpSuffix), nil, 0o600))

	w := mustOpen(t, dir, Options{})
	checkState(t, mustLoad(t, w), after)
	mustClose(t, w)
	if got := files(t, dir, snapTmpSuffix); len(got) != 0 {
		t.Fatalf("temp files left: %v", got)
	}
	if _, err := os.Stat(filepath.Join(dir, snapName(40, 9))); !os.IsNotExist(err) {
		t.Fatalf("orphan snapshot file kept: %v", err)
	}
}

func TestMissingSegmentIsAnError(t *testing.T) {
	dir := t.TempDir()
	w := mustOpen(t, dir, Options{SegmentBytes: 1})
	for i := uint64(1); i <= 4; i++ {
		must(t, w.Append(ents(1, i, i)))
		mustSync(t, w)
	}
	mustClose(t, w)
	segs := files(t, dir, segmentSuffix)
	must(t, os.Remove(filepath.Join(dir, segs[1])))
	w, err := Open(dir, newGoLoop(t), Options{})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("open without segment 1: %v", err)
	}
	_ = w
	// Losing the oldest segments is not detectable as a hole, but the log
	// then lacks entries no snapshot covers.
	must(t, os.Remove(filepath.Join(dir, segs[0])))
	if _, err := Open(dir, newGoLoop(t), Options{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open without the first two segments: %v", err)
	}
}

// With no log at all, snapshot files are not the WAL's to delete: it may be
// the first batch that was torn (the file is an orphan) or the log that was
// removed by hand.
func TestSnapshotFilesWithoutALogAreLeftAlone(t *testing.T) {
	dir := t.TempDir()
	s := env.Snapshot{Index: 5, Term: 1, Data: []byte("orphan")}
	must(t, writeSnapshotFile(dir, &s, &ioHooks{fsync: (*os.File).Sync, syncDir: syncDir}))
	w := mustOpen(t, dir, Options{})
	if d := diffState(mustLoad(t, w), env.DiskState{}); d != "" {
		t.Fatal(d)
	}
	mustClose(t, w)
	if got := files(t, dir, snapSuffix); len(got) != 1 {
		t.Fatalf("snapshot files %v", got)
	}
}
