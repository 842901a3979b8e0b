package wal

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarmsim/swarmsim/engine/env"
)

func TestEmptyDirLoadsZeroState(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new")
	w := mustOpen(t, dir, Options{})
	if d := diffState(mustLoad(t, w), env.DiskState{}); d != "" {
		t.Fatal(d)
	}
	mustSync(t, w) // a Sync with nothing staged still answers
	mustClose(t, w)
	w = mustOpen(t, dir, Options{})
	defer mustClose(t, w)
	if d := diffState(mustLoad(t, w), env.DiskState{}); d != "" {
		t.Fatal(d)
	}
}

// Every record kind survives a close and reopen, and a second Load (which
// rereads the files) agrees with the first.
func TestRoundTripEveryRecordKind(t *testing.T) {
	dir := t.TempDir()
	w := mustOpen(t, dir, Options{})
	var m model
	es := []env.Entry{
		{Term: 1, Index: 1, Type: env.EntryConfChange, Data: []byte("conf")},
		{Term: 1, Index: 2, Type: env.EntryNormal}, // empty data comes back nil
		{Term: 2, Index: 3, Type: env.EntryNormal, Data: []byte{}},
		{Term: 2, Index: 4, Type: env.EntryConfChangeV2, Data: bytes.Repeat([]byte{0xff, 0}, 3000)},
		{Term: 2, Index: 5, Type: 200, Data: []byte("an entry type this package never heard of")},
		{Term: 3, Index: 6, Data: []byte("six")},
	}
	must(t, w.Append(es))
	m.append(es)
	hs := env.HardState{Term: 3, Vote: 2, Commit: 5}
	must(t, w.SetHardState(hs))
	m.hs = hs
	for _, kv := range []struct {
		k string
		v []byte
	}{{"identity", []byte("m1")}, {"empty", []byte{}}, {"gone", []byte("x")}, {"gone", nil}, {"", []byte("empty key")}} {
		must(t, w.SetMeta(kv.k, kv.v))
		m.setMeta(kv.k, kv.v)
	}
	snap := env.Snapshot{Index: 4, Term: 2, Data: []byte("state at 4"), Conf: env.ConfState{
		Voters: []uint64{1, 2, 3}, Learners: []uint64{4}, VotersOutgoing: []uint64{1, 2}, LearnersNext: []uint64{5}, AutoLeave: true,
	}}
	must(t, w.SaveSnapshot(snap))
	m.saveSnapshot(snap)
	mustSync(t, w)
	checkState(t, mustLoad(t, w), m)
	mustClose(t, w)

	w = mustOpen(t, dir, Options{})
	defer mustClose(t, w)
	checkState(t, mustLoad(t, w), m)
	checkState(t, mustLoad(t, w), m)
}

// The first Load returns what Open found, the rest reread the disk.
func TestLoadAfterWrites(t *testing.T) {
	dir := t.TempDir()
	w := mustOpen(t, dir, Options{})
	defer mustClose(t, w)
	if st := mustLoad(t, w); len(st.Entries) != 0 {
		t.Fatalf("fresh WAL loaded %d entries", len(st.Entries))
	}
	must(t, w.Append(ents(1, 1, 3)))
	mustSync(t, w)
	if st := mustLoad(t, w); len(st.Entries) != 3 {
		t.Fatalf("loaded %d entries after a sync, want 3", len(st.Entries))
	}
}

func TestTruncationRules(t *testing.T) {
	type step struct {
		ents   []env.Entry
		snap   *env.Snapshot
		sync   bool // make everything so far durable
		reopen bool // close and open again
		err    error
	}
	snapAt := func(i, term uint64) *env.Snapshot {
		return &env.Snapshot{Index: i, Term: term, Data: fmt.Appendf(nil, "snap %d", i)}
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"overwrite in one batch", []step{{ents: ents(1, 1, 5)}, {ents: ents(2, 3, 4)}}},
		{"overwrite a durable suffix", []step{{ents: ents(1, 1, 5), sync: true}, {ents: ents(2, 2, 2)}}},
		{"overwrite after reopen", []step{{ents: ents(1, 1, 5), reopen: true}, {ents: ents(2, 4, 6)}}},
		{"overwrite everything", []step{{ents: ents(1, 1, 5), sync: true}, {ents: ents(2, 1, 2)}}},
		{"append at the end", []step{{ents: ents(1, 1, 5), sync: true}, {ents: ents(1, 6, 8)}}},
		{"entries the snapshot covers are dropped", []step{
			{ents: ents(1, 1, 5), snap: snapAt(3, 1), sync: true}, {ents: ents(1, 2, 7)}}},
		{"all covered", []step{{ents: ents(1, 1, 5), snap: snapAt(5, 1)}, {ents: ents(1, 1, 5)}}},
		{"snapshot agreeing with the log keeps the rest", []step{
			{ents: ents(1, 1, 9), sync: true}, {snap: snapAt(4, 1), reopen: true}}},
		{"snapshot at another term drops the log", []step{
			{ents: ents(1, 1, 9), sync: true}, {snap: snapAt(4, 2), reopen: true}}},
		{"snapshot past the log drops the log", []step{
			{ents: ents(1, 1, 3)}, {snap: snapAt(10, 2)}, {ents: ents(2, 11, 12), reopen: true}}},
		{"older snapshot ignored", []step{
			{ents: ents(1, 1, 9)}, {snap: snapAt(6, 1), sync: true}, {snap: snapAt(4, 1), reopen: true}}},
		{"two snapshots in one batch", []step{{ents: ents(1, 1, 9)}, {snap: snapAt(3, 1)}, {snap: snapAt(6, 1)}}},
		{"overwrite right after the snapshot", []step{
			{ents: ents(1, 1, 9), snap: snapAt(4, 1), reopen: true}, {ents: ents(3, 5, 5), reopen: true}}},
		{"gap after the log", []step{{ents: ents(1, 1, 3)}, {ents: ents(1, 5, 6), err: ErrLogGap}}},
		{"gap after the snapshot", []step{{snap: snapAt(5, 1)}, {ents: ents(1, 7, 8), err: ErrLogGap}}},
		{"gap on a fresh log", []step{{ents: ents(1, 2, 3), err: ErrLogGap}}},
		{"entries not consecutive", []step{{ents: append(ents(1, 1, 2), ents(1, 4, 4)...), err: ErrLogGap}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			w := mustOpen(t, dir, Options{})
			defer func() { w.Close() }()
			var staged model
			for i, s := range tt.steps {
				if s.ents != nil {
					err := w.Append(s.ents)
					if !errors.Is(err, s.err) {
						t.Fatalf("step %d: append: %v, want %v", i, err, s.err)
					}
					if err == nil {
						staged.append(s.ents)
					}
				}
				if s.snap != nil {
					must(t, w.SaveSnapshot(*s.snap))
					staged.saveSnapshot(*s.snap)
				}
				if s.sync {
					mustSync(t, w)
				}
				if s.reopen {
					mustClose(t, w)
					w = mustOpen(t, dir, Options{})
					checkState(t, mustLoad(t, w), staged)
				}
			}
			mustClose(t, w)
			w = mustOpen(t, dir, Options{})
			checkState(t, mustLoad(t, w), staged)
		})
	}
}

// A random walk through every operation, with tiny segments so that
// rotation and compaction happen all the time, checked against the model
// after every reopen and on copies of the directory taken right after a
// Sync answered.
func TestRandomOperationsAgainstModel(t *testing.T) {
	for seed := uint64(1); seed <= 6; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(seed, 0x5eed))
			dir := t.TempDir()
			opts := Options{SegmentBytes: 1 << 10}
			w := mustOpen(t, dir, opts)
			defer func() { w.Close() }()
			var staged, durable model
			term := uint64(1)
			maxSegs := 0
			for step := range 400 {
				switch op := rnd.IntN(100); {
				case op < 45: // append, sometimes overwriting a suffix
					first := staged.last() + 1
					if rnd.IntN(4) == 0 && first > staged.snap.Index+1 {
						first -= uint64(rnd.IntN(int(first - staged.snap.Index - 1)))
						term++
					}
					n := uint64(1 + rnd.IntN(6))
					es := ents(term, first, first+n-1)
					for i := range es {
						es[i].Data = bytes.Repeat(es[i].Data, rnd.IntN(8))
						es[i].Type = env.EntryType(rnd.IntN(3))
					}
					must(t, w.Append(es))
					staged.append(es)
				case op < 55:
					hs := env.HardState{Term: term, Vote: rnd.Uint64N(4), Commit: staged.last()}
					must(t, w.SetHardState(hs))
					staged.hs = hs
				case op < 65:
					k := fmt.Sprintf("k%d", rnd.IntN(5))
					var v []byte
					switch rnd.IntN(3) {
					case 0: // delete
					case 1:
						v = []byte{}
					default:
						v = fmt.Appendf(nil, "v%d", step)
					}
					must(t, w.SetMeta(k, v))
					staged.setMeta(k, v)
				case op < 73:
					// A snapshot inside the log (usually agreeing with it), or
					// beyond it, as one received from a leader.
					idx := staged.snap.Index + 1 + rnd.Uint64N(staged.last()-staged.snap.Index+3)
					st, ok := staged.termAt(idx)
					if !ok || rnd.IntN(5) == 0 {
						st = term + 1
					}
					s := env.Snapshot{Index: idx, Term: st, Data: fmt.Appendf(nil, "snap@%d/%d", idx, step),
						Conf: env.ConfState{Voters: []uint64{1, uint64(step)}}}
					must(t, w.SaveSnapshot(s))
					staged.saveSnapshot(s)
					if st > term {
						term = st
					}
				case op < 93:
					mustSync(t, w)
					mustSync(t, w) // and whatever compaction the first one started
					durable = staged.clone()
					if rnd.IntN(3) == 0 {
						// What a crash right now would find.
						c := copyDir(t, dir)
						w2 := mustOpen(t, c, opts)
						checkState(t, mustLoad(t, w2), durable)
						mustClose(t, w2)
					}
				default:
					mustClose(t, w)
					durable = staged.clone()
					w = mustOpen(t, dir, opts)
					checkState(t, mustLoad(t, w), durable)
				}
				maxSegs = max(maxSegs, len(files(t, dir, segmentSuffix)))
				if n := len(files(t, dir, snapSuffix)); n > 2 {
					t.Fatalf("step %d: %d snapshot files, want at most 2", step, n)
				}
			}
			mustClose(t, w)
			w = mustOpen(t, dir, opts)
			checkState(t, mustLoad(t, w), staged)
			t.Logf("at most %d segments at once, %d at the end", maxSegs, len(files(t, dir, segmentSuffix)))
		})
	}
}

// Segments are cut at the configured size, and those a snapshot covers are
// deleted once it is durable.
func TestRotationAndCompaction(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentBytes: 4 << 10}
	w := mustOpen(t, dir, opts)
	var m model
	for i := uint64(1); i <= 400; i += 10 {
		es := ents(1, i, i+9)
		must(t, w.Append(es))
		m.append(es)
		mustSync(t, w)
	}
	before := files(t, dir, segmentSuffix)
	if len(before) < 4 {
		t.Fatalf("%d segments after 400 entries in 4 KiB segments", len(before))
	}
	for i, name := range before[:len(before)-1] {
		if size := fileSize(t, filepath.Join(dir, name)); size < opts.SegmentBytes {
			t.Errorf("segment %d was cut at %d bytes, under %d", i, size, opts.SegmentBytes)
		}
	}
	for i, idx := range []uint64{100, 200, 300, 395} {
		s := env.Snapshot{Index: idx, Term: 1, Data: fmt.Appendf(nil, "snap %d", idx)}
		must(t, w.SaveSnapshot(s))
		m.saveSnapshot(s)
		mustSync(t, w)
		mustSync(t, w) // compaction ran after the first answer: wait for it
		if snaps := files(t, dir, snapSuffix); len(snaps) != min(i+1, 2) {
			t.Fatalf("after snapshot %d: snapshot files %v", idx, snaps)
		}
	}
	after := files(t, dir, segmentSuffix)
	if len(after) >= len(before) || after[len(after)-1] != before[len(before)-1] {
		t.Fatalf("segments %v after compaction, %v before", after, before)
	}
	if w.Stats().Segments != len(after) {
		t.Fatalf("stats count %d segments, directory holds %d", w.Stats().Segments, len(after))
	}
	mustClose(t, w)
	w = mustOpen(t, dir, opts)
	defer mustClose(t, w)
	checkState(t, mustLoad(t, w), m)
}

// Open finishes a compaction that a crash interrupted: here simulated by
// reopening a copy of the directory taken before the WAL deleted anything.
func TestOpenDeletesWhatASnapshotCovers(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentBytes: 1 << 10}
	w := mustOpen(t, dir, opts)
	for i := uint64(1); i <= 100; i += 5 {
		must(t, w.Append(ents(1, i, i+4)))
		mustSync(t, w)
	}
	mustClose(t, w)
	n := len(files(t, dir, segmentSuffix))
	w = mustOpen(t, dir, opts)
	must(t, w.SaveSnapshot(env.Snapshot{Index: 90, Term: 1}))
	mustSync(t, w)
	mustClose(t, w)
	if got := len(files(t, dir, segmentSuffix)); got >= n {
		t.Fatalf("%d segments before the snapshot, %d after", n, got)
	}
}

func TestReopenAppendReopenCycles(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentBytes: 2 << 10}
	var m model
	for cycle := range 30 {
		w := mustOpen(t, dir, opts)
		checkState(t, mustLoad(t, w), m)
		first := m.last() + 1
		es := ents(uint64(cycle/5+1), first, first+uint64(cycle%7))
		must(t, w.Append(es))
		m.append(es)
		must(t, w.SetMeta("cycle", fmt.Appendf(nil, "%d", cycle)))
		m.setMeta("cycle", fmt.Appendf(nil, "%d", cycle))
		hs := env.HardState{Term: uint64(cycle/5 + 1), Commit: m.last()}
		must(t, w.SetHardState(hs))
		m.hs = hs
		if cycle%6 == 5 {
			s := env.Snapshot{Index: m.last() - 1, Term: es[0].Term, Data: fmt.Appendf(nil, "c%d", cycle)}
			must(t, w.SaveSnapshot(s))
			m.saveSnapshot(s)
		}
		mustSync(t, w)
		mustClose(t, w)
	}
	if n := len(files(t, dir, snapSuffix)); n != 2 {
		t.Fatalf("%d snapshot files, want 2", n)
	}
}

// Sync answers through loop.Post from the writer, never inside Sync.
func TestSyncAnswersThroughTheLoop(t *testing.T) {
	posted := make(chan func(), 16)
	w, err := Open(t.TempDir(), postFunc(func(f func()) { posted <- f }), Options{})
	must(t, err)
	defer w.Close()
	called := 0
	must(t, w.Append(ents(1, 1, 1)))
	w.Sync(func(err error) { must(t, err); called++ })
	w.Sync(func(err error) { must(t, err); called++ }) // nothing new staged: still answered, after
	if called != 0 {
		t.Fatal("Sync called back before returning")
	}
	for called < 2 {
		if called != 0 && called != 1 {
			t.Fatal("callbacks ran out of order")
		}
		f := <-posted
		f()
	}
	if called != 2 {
		t.Fatalf("%d callbacks ran", called)
	}
}

type postFunc func(func())

func (p postFunc) Post(f func()) { p(f) }

// Syncs that arrive while an fsync is in flight share the next one.
func TestGroupCommit(t *testing.T) {
	inFsync := make(chan struct{})
	release := make(chan struct{})
	first := true
	hooks := &ioHooks{beforeFsync: func() {
		if first {
			first = false
			close(inFsync)
			<-release
		}
	}}
	w := mustOpen(t, t.TempDir(), Options{hooks: hooks})
	defer mustClose(t, w)
	var order []int
	answered := make(chan struct{})
	const n = 100
	record := func(i int) func(error) {
		return func(err error) {
			must(t, err)
			order = append(order, i) // on the WAL's loop: one goroutine
			if len(order) == n+1 {
				close(answered)
			}
		}
	}
	must(t, w.Append(ents(1, 1, 1)))
	w.Sync(record(0))
	<-inFsync
	for i := 1; i <= n; i++ {
		must(t, w.Append(ents(1, uint64(i+1), uint64(i+1))))
		must(t, w.SetHardState(env.HardState{Term: 1, Commit: uint64(i)}))
		w.Sync(record(i))
	}
	close(release)
	<-answered
	if !slices.IsSorted(order) {
		t.Fatalf("callbacks out of order: %v", order)
	}
	if s := w.Stats(); s.Fsyncs != 2 || s.Syncs != n+1 {
		t.Fatalf("stats %+v: want 2 fsyncs answering %d syncs", s, n+1)
	}
}

func TestFailedFsyncStopsTheWAL(t *testing.T) {
	boom := errors.New("injected EIO")
	hooks := &ioHooks{fsync: func(*os.File) error { return boom }}
	w := mustOpen(t, t.TempDir(), Options{hooks: hooks})
	must(t, w.Append(ents(1, 1, 1)))
	if err := syncNow(t, w); !errors.Is(err, boom) {
		t.Fatalf("sync: %v, want the fsync error", err)
	}
	if err := w.Append(ents(1, 2, 2)); !errors.Is(err, boom) {
		t.Fatalf("append after failure: %v", err)
	}
	if err := syncNow(t, w); !errors.Is(err, boom) {
		t.Fatalf("sync after failure: %v", err)
	}
	if err := w.Close(); !errors.Is(err, boom) {
		t.Fatalf("close: %v, want the fsync error", err)
	}
}

func TestBackPressure(t *testing.T) {
	w := mustOpen(t, t.TempDir(), Options{MaxStagedBytes: 4 << 10})
	defer mustClose(t, w)
	big := []env.Entry{{Term: 1, Index: 1, Data: make([]byte, 10<<10)}}
	must(t, w.Append(big)) // larger than the bound, but alone: accepted
	err := w.Append(ents(1, 2, 2))
	if !errors.Is(err, ErrBackPressure) {
		t.Fatalf("append past the bound: %v", err)
	}
	if err := w.SetMeta("k", []byte("v")); !errors.Is(err, ErrBackPressure) {
		t.Fatalf("set meta past the bound: %v", err)
	}
	if err := w.SaveSnapshot(env.Snapshot{Index: 1, Term: 1}); !errors.Is(err, ErrBackPressure) {
		t.Fatalf("save snapshot past the bound: %v", err)
	}
	must(t, w.SetHardState(env.HardState{Term: 1, Commit: 1})) // a fixed slot: always
	if s := w.Stats(); s.StagedBytes < 10<<10 {
		t.Fatalf("staged %d bytes", s.StagedBytes)
	}
	mustSync(t, w)
	must(t, w.Append(ents(1, 2, 2))) // refused calls changed nothing: 2 follows 1
	mustSync(t, w)
	st, err := w.Load()
	must(t, err)
	if len(st.Entries) != 2 || st.HardState.Commit != 1 || st.Meta != nil {
		t.Fatalf("loaded %d entries, %+v, meta %v", len(st.Entries), st.HardState, st.Meta)
	}
}

func TestClosed(t *testing.T) {
	loop := newGoLoop(t)
	w, err := Open(t.TempDir(), loop, Options{})
	must(t, err)
	must(t, w.Append(ents(1, 1, 2)))
	answered := make(chan error, 1)
	w.Sync(func(err error) { answered <- err }) // Close waits for it
	must(t, w.Close())
	must(t, <-answered)
	for name, err := range map[string]error{
		"append":   w.Append(ents(1, 3, 3)),
		"hs":       w.SetHardState(env.HardState{}),
		"snapshot": w.SaveSnapshot(env.Snapshot{Index: 1}),
		"meta":     w.SetMeta("k", nil),
		"close":    w.Close(),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after close: %v", name, err)
		}
	}
	if _, err := w.Load(); !errors.Is(err, ErrClosed) {
		t.Errorf("load after close: %v", err)
	}
	if err := syncNow(t, w); !errors.Is(err, ErrClosed) {
		t.Errorf("sync after close: %v", err)
	}
}

// Close makes staged data durable even without a Sync.
func TestCloseFlushes(t *testing.T) {
	dir := t.TempDir()
	w := mustOpen(t, dir, Options{})
	must(t, w.Append(ents(1, 1, 3)))
	must(t, w.SetMeta("k", []byte("v")))
	mustClose(t, w)
	w = mustOpen(t, dir, Options{})
	defer mustClose(t, w)
	if st := mustLoad(t, w); len(st.Entries) != 3 || string(st.Meta["k"]) != "v" {
		t.Fatalf("loaded %+v", st)
	}
}

func TestSecondOpenIsRefused(t *testing.T) {
	dir := t.TempDir()
	w := mustOpen(t, dir, Options{})
	defer mustClose(t, w)
	if _, err := Open(dir, newGoLoop(t), Options{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
}

func TestMeasureFsync(t *testing.T) {
	p50, p99, err := MeasureFsync(t.TempDir(), 20)
	must(t, err)
	if p50 > p99 {
		t.Fatalf("p50 %v above p99 %v", p50, p99)
	}
	t.Logf("fsync p50 %v p99 %v", p50, p99)
	if _, _, err := MeasureFsync(t.TempDir(), 0); err == nil {
		t.Fatal("n = 0 accepted")
	}
}

func TestSegmentNames(t *testing.T) {
	name := segmentName(3, 0xabc)
	num, seq, ok := parseSegmentName(name)
	if !ok || num != 3 || seq != 0xabc {
		t.Fatalf("%s parsed as %d %d %v", name, num, seq, ok)
	}
	for _, bad := range []string{"x.wal", "0000000000000003-0000000000000abc.snap", strings.Repeat("g", 16) + "-" + strings.Repeat("0", 16) + ".wal"} {
		if _, _, ok := parseSegmentName(bad); ok {
			t.Errorf("%q parsed as a segment", bad)
		}
	}
}

// A loop whose Post blocks until the loop takes the function (a bounded
// queue at its limit) may call Load while the writer answers a Sync: the
// writer posts holding no lock, so neither waits for the other forever.
func TestLoadWhileTheWriterPosts(t *testing.T) {
	posts := make(chan func()) // unbuffered: Post waits for the loop
	inFsync := make(chan struct{}, 1)
	hooks := &ioHooks{beforeFsync: func() {
		select {
		case inFsync <- struct{}{}:
		default:
		}
		time.Sleep(5 * time.Millisecond) // let the loop reach Load meanwhile
	}}
	w, err := Open(t.TempDir(), postFunc(func(f func()) { posts <- f }), Options{hooks: hooks})
	must(t, err)
	defer func() {
		go func() { // Close's own posts need a loop too
			for f := range posts {
				f()
			}
		}()
		w.Close()
	}()
	answered := false
	for i := uint64(1); i <= 20; i++ {
		must(t, w.Append(ents(1, i, i)))
		w.Sync(func(err error) { must(t, err); answered = true })
		<-inFsync
		if _, err := w.Load(); err != nil {
			t.Fatal(err)
		}
		answered = false
		(<-posts)()
		if !answered {
			t.Fatal("the post was not the Sync's answer")
		}
	}
}
