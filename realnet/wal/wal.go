package wal

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swarmsim/swarmsim/engine/env"
)

// Defaults for Options left zero.
const (
	DefaultSegmentBytes   = 64 << 20
	DefaultMaxStagedBytes = 64 << 20
)

// Options tune a WAL. The zero value takes the defaults.
type Options struct {
	// SegmentBytes is the size past which the next batch starts a new
	// segment file. A batch is never split, so a segment may pass it by one
	// batch.
	SegmentBytes int64
	// MaxStagedBytes bounds staged data (see the package documentation on
	// back-pressure).
	MaxStagedBytes int64

	// hooks is how the WAL flushes; tests replace it to stop the writer at
	// a known point or to fail an fsync.
	hooks *ioHooks
}

type ioHooks struct {
	beforeFsync func() // called before each fsync of the log
	// fsync and syncDir replace every file and directory fsync, so tests
	// of replay logic can skip the cost of real flushes.
	fsync   func(*os.File) error
	syncDir func(dir string) error
}

// Stats are a WAL's counters since Open.
type Stats struct {
	Syncs  uint64 // Sync calls answered
	Fsyncs uint64 // batches written and fsynced to the log
	// FsyncTime is the time the log's fsyncs took, summed: with Fsyncs,
	// the disk's latency under the WAL's own load.
	FsyncTime    time.Duration
	BytesWritten uint64 // bytes written to the log
	StagedBytes  int64  // staged now and not yet taken by the writer
	Segments     int    // segment files now in the directory
}

// WAL is a directory's write-ahead log and snapshots: an env.Storage. Its
// methods are meant for one goroutine, the node's loop (they are safe from
// any, but Append's consistency checks assume one writer of the log); the
// disk work happens on the WAL's own goroutine.
type WAL struct {
	dir  string
	loop env.Loop
	opts Options
	lock *os.File

	mu      sync.Mutex
	closed  bool     // Close was called: staging is refused, the writer drains
	failed  error    // a write or fsync failed; everything fails from now on
	pend    *pending // what the next batch will carry
	spare   *pending // a written batch's buffers, for reuse
	model   logModel // the log once everything staged is applied
	loaded  *env.DiskState
	kick    chan struct{} // wakes the writer; capacity 1
	exited  chan struct{} // closed when the writer returns
	lastErr error         // first compaction error, for Close

	syncs, fsyncs, written atomic.Uint64
	fsyncNanos             atomic.Int64 // time spent in the log's fsyncs
	segCount               atomic.Int64

	// Owned by the writer goroutine; Load takes ioMu to read the files
	// between batches.
	ioMu       sync.Mutex
	cur        *os.File
	curSize    int64
	segs       []segInfo
	dur        durable
	nextSegNum uint64
}

// pending is one batch being staged: encoded records in call order, plus
// what the writer needs besides them.
type pending struct {
	seq       uint64
	buf       []byte // encoded records, all in batch seq
	nrec      int
	hs        env.HardState
	hasHS     bool
	snap      *env.Snapshot // the newest staged snapshot; its file is written before the batch
	snapBytes int64
	meta      []metaOp
	maxIndex  uint64
	dones     []func(error)
}

func (p *pending) empty() bool  { return p.nrec == 0 && !p.hasHS }
func (p *pending) bytes() int64 { return int64(len(p.buf)) + p.snapBytes }

// reset empties p for reuse, keeping its buffer unless a burst made it
// large: a spare should not pin MaxStagedBytes of memory for good.
func (p *pending) reset(seq uint64) {
	buf := p.buf[:0]
	if cap(buf) > keepBufferBytes {
		buf = nil
	}
	*p = pending{seq: seq, buf: buf, meta: p.meta[:0]}
}

const keepBufferBytes = 4 << 20

var _ env.Storage = (*WAL)(nil)

// Open opens the WAL in dir, creating the directory if needed, and replays
// it: a torn final write is cut off, any other damage is a *CorruptError
// (errors.Is(err, ErrCorrupt)). Sync callbacks run through loop.Post.
func Open(dir string, loop env.Loop, opts Options) (*WAL, error) {
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = DefaultSegmentBytes
	}
	if opts.MaxStagedBytes <= 0 {
		opts.MaxStagedBytes = DefaultMaxStagedBytes
	}
	hooks := ioHooks{}
	if opts.hooks != nil {
		hooks = *opts.hooks
	}
	opts.hooks = &hooks
	if opts.hooks.fsync == nil {
		opts.hooks.fsync = (*os.File).Sync
	}
	if opts.hooks.syncDir == nil {
		opts.hooks.syncDir = syncDir
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	w, err := open(dir, loop, opts, lock)
	if err != nil {
		unlockDir(lock)
		return nil, err
	}
	go w.run()
	return w, nil
}

func open(dir string, loop env.Loop, opts Options, lock *os.File) (*WAL, error) {
	if err := removeTemps(dir); err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	r, err := replayDir(dir, opts.hooks)
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			return nil, err
		}
		return nil, fmt.Errorf("wal: replay %s: %w", dir, err)
	}
	w := &WAL{
		dir:        dir,
		loop:       loop,
		opts:       opts,
		lock:       lock,
		pend:       &pending{seq: r.nextSeq},
		spare:      &pending{},
		model:      newLogModel(r.state.Snapshot, r.state.Entries),
		loaded:     &r.state,
		kick:       make(chan struct{}, 1),
		exited:     make(chan struct{}),
		segs:       r.segs,
		dur:        r.dur,
		nextSegNum: r.nextSegNum,
	}
	w.dur.meta = maps.Clone(w.dur.meta)
	w.segCount.Store(int64(len(w.segs)))
	if n := len(w.segs); n > 0 {
		last := &w.segs[n-1]
		f, err := os.OpenFile(filepath.Join(dir, last.name), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return nil, fmt.Errorf("wal: %w", err)
		}
		w.cur, w.curSize = f, last.size
	}
	// A crash between a snapshot's fsync and the deletions it allowed
	// leaves them undone. Without any segment there is no log to say which
	// snapshot files are orphans (or someone removed the log by hand):
	// leave them for an operator; Load ignores them.
	if len(w.segs) == 0 {
		return w, nil
	}
	if err := w.compact(); err != nil {
		if w.cur != nil {
			w.cur.Close()
		}
		return nil, err
	}
	return w, nil
}

// removeTemps deletes snapshot files that a crash left half-written.
func removeTemps(dir string) error {
	des, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, de := range des {
		if strings.HasSuffix(de.Name(), snapTmpSuffix) {
			if err := os.Remove(filepath.Join(dir, de.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// Load returns what is on disk: every batch written so far. A Load before
// anything is staged returns what Open replayed (once; the caller owns it),
// sparing a second read at start-up; any other Load reads the directory
// again.
func (w *WAL) Load() (env.DiskState, error) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return env.DiskState{}, ErrClosed
	}
	if st := w.loaded; st != nil {
		w.loaded = nil
		w.mu.Unlock()
		return *st, nil
	}
	w.mu.Unlock()
	w.ioMu.Lock()
	defer w.ioMu.Unlock()
	r, err := replayDir(w.dir, nil)
	if err != nil {
		return env.DiskState{}, err
	}
	return r.state, nil
}

// usable says why staging is refused, if it is. It also forgets the state
// Open replayed, which staging makes stale for Load. Callers hold mu.
func (w *WAL) usable() error {
	w.loaded = nil
	if w.closed {
		return ErrClosed
	}
	return w.failed
}

// room checks that staging n more bytes respects MaxStagedBytes. Callers
// hold mu.
func (w *WAL) room(n int64) error {
	have := w.pend.bytes()
	if have > 0 && have+n > w.opts.MaxStagedBytes {
		return fmt.Errorf("%w: %d bytes staged, %d more asked, bound %d", ErrBackPressure, have, n, w.opts.MaxStagedBytes)
	}
	return nil
}

// Append stages entries. Entries the staged snapshot covers are dropped; an
// entry at an index the log holds replaces it and all after it. Entries
// must be consecutive and may not leave a gap (ErrLogGap). Data is copied.
func (w *WAL) Append(ents []env.Entry) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	for len(ents) > 0 && ents[0].Index <= w.model.snapIndex {
		ents = ents[1:]
	}
	if len(ents) == 0 {
		return nil
	}
	var need int64
	for i := range ents {
		if i > 0 && ents[i].Index != ents[i-1].Index+1 {
			return fmt.Errorf("%w: entry %d follows entry %d", ErrLogGap, ents[i].Index, ents[i-1].Index)
		}
		if n := entryFixedBytes + len(ents[i].Data); !fitsRecord(n) {
			return fmt.Errorf("%w: entry %d has %d bytes", ErrTooLarge, ents[i].Index, len(ents[i].Data))
		}
		need += int64(recordBytes(entryFixedBytes + len(ents[i].Data)))
	}
	if first := ents[0].Index; first > w.model.last+1 {
		return fmt.Errorf("%w: entry %d appended after entry %d", ErrLogGap, first, w.model.last)
	}
	if err := w.room(need); err != nil {
		return err
	}
	p := w.pend
	p.buf = slices.Grow(p.buf, int(need))
	w.model.truncate(ents[0].Index)
	for i := range ents {
		e := &ents[i]
		var start int
		p.buf, start = beginRecord(p.buf)
		p.buf = appendEntry(p.buf, e)
		endRecord(p.buf, start, recEntry, p.seq)
		w.model.push(e.Index, e.Term)
	}
	p.nrec += len(ents)
	p.maxIndex = max(p.maxIndex, ents[len(ents)-1].Index)
	return nil
}

// SetHardState stages the hard state. Only the last one staged before a
// batch is written; it goes at the batch's end.
func (w *WAL) SetHardState(hs env.HardState) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	w.pend.hs, w.pend.hasHS = hs, true
	return nil
}

// SaveSnapshot stages a snapshot; one not newer than the staged one is
// ignored. Data is not copied: it must not change until the Sync that
// covers it has answered. Once durable, entries at or below s.Index are
// dropped, and so is the whole log unless it holds s.Index at s.Term.
func (w *WAL) SaveSnapshot(s env.Snapshot) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	if s.Index <= w.model.snapIndex {
		return nil
	}
	p := w.pend
	old := int64(0)
	if p.snap != nil {
		old = int64(len(p.snap.Data))
	}
	if err := w.room(int64(len(s.Data)) - old + int64(recordBytes(snapshotMarkerBytes))); err != nil {
		return err
	}
	t, ok := w.model.termAt(s.Index)
	m := snapshotMarker{index: s.Index, term: s.Term, keep: ok && t == s.Term}
	w.model.snapshot(m.index, m.term, m.keep)
	var start int
	p.buf, start = beginRecord(p.buf)
	p.buf = appendSnapshotMarker(p.buf, m)
	endRecord(p.buf, start, recSnapshot, p.seq)
	p.nrec++
	s.Conf = env.ConfState{
		Voters:         slices.Clone(s.Conf.Voters),
		Learners:       slices.Clone(s.Conf.Learners),
		VotersOutgoing: slices.Clone(s.Conf.VotersOutgoing),
		LearnersNext:   slices.Clone(s.Conf.LearnersNext),
		AutoLeave:      s.Conf.AutoLeave,
	}
	p.snap = &s
	p.snapBytes += int64(len(s.Data)) - old
	return nil
}

// SetMeta stages a named value; nil deletes it, an empty non-nil value is
// kept as empty. value is copied.
func (w *WAL) SetMeta(key string, value []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	op := metaOp{key: key, del: value == nil}
	if !op.del {
		op.val = append([]byte{}, value...)
	}
	n := metaFixedBytes + len(key) + len(value)
	if !fitsRecord(n) {
		return fmt.Errorf("%w: meta %q has %d bytes", ErrTooLarge, key, len(value))
	}
	if err := w.room(int64(recordBytes(n))); err != nil {
		return err
	}
	p := w.pend
	var start int
	p.buf, start = beginRecord(p.buf)
	p.buf = appendMeta(p.buf, &op)
	endRecord(p.buf, start, recMeta, p.seq)
	p.nrec++
	p.meta = append(p.meta, op)
	return nil
}

// Sync makes everything staged before it durable (write and fsync), then
// calls done through the loop's Post, never from inside Sync. Syncs that
// arrive while an fsync is in flight share the next one. Callbacks run in
// the order of their Syncs; after a failure every one gets the error. A
// Sync after Close gets ErrClosed. done may be nil.
func (w *WAL) Sync(done func(error)) {
	if done == nil {
		done = func(error) {}
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		w.loop.Post(func() { done(ErrClosed) })
		return
	}
	w.loaded = nil
	w.pend.dones = append(w.pend.dones, done)
	w.mu.Unlock()
	w.wake()
}

func (w *WAL) wake() {
	select {
	case w.kick <- struct{}{}:
	default: // already woken; the writer will see this batch too
	}
}

// Stats returns the WAL's counters.
func (w *WAL) Stats() Stats {
	w.mu.Lock()
	staged := w.pend.bytes()
	w.mu.Unlock()
	return Stats{
		Syncs:        w.syncs.Load(),
		Fsyncs:       w.fsyncs.Load(),
		FsyncTime:    time.Duration(w.fsyncNanos.Load()),
		BytesWritten: w.written.Load(),
		StagedBytes:  staged,
		Segments:     int(w.segCount.Load()),
	}
}

// Close writes and fsyncs whatever is staged (answering the Syncs waiting
// for it), stops the writer and releases the directory. It returns the
// error that stopped the WAL if a write failed, else the error of a
// compaction that failed since Open (old files left behind), else nil.
func (w *WAL) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return ErrClosed
	}
	w.closed = true
	w.mu.Unlock()
	w.wake()
	<-w.exited

	w.ioMu.Lock()
	defer w.ioMu.Unlock()
	var err error
	if w.cur != nil {
		err = w.cur.Close()
		w.cur = nil
	}
	unlockDir(w.lock)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failed != nil {
		return w.failed
	}
	if w.lastErr != nil {
		return w.lastErr
	}
	return err
}

// run is the writer goroutine: it takes staged batches one at a time and
// makes each durable, so every batch after the first one waiting collects
// all Syncs that arrived meanwhile.
func (w *WAL) run() {
	defer close(w.exited)
	for range w.kick {
		for {
			p, stop := w.take()
			if stop {
				return
			}
			if p == nil {
				break
			}
			w.commit(p)
		}
	}
}

// take hands the writer the staged batch when a Sync waits for it (or
// Close does), leaving a fresh one in its place. stop says the WAL is
// closed and nothing remains.
func (w *WAL) take() (p *pending, stop bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	p = w.pend
	if len(p.dones) == 0 && (!w.closed || p.empty()) {
		return nil, w.closed
	}
	if p.empty() {
		// Nothing to write: the Syncs only wait for batches already
		// written, which the writer finished before coming here.
		b := &pending{dones: p.dones}
		p.dones = nil
		return b, false
	}
	next := w.spare
	w.spare = nil
	if next == nil {
		next = &pending{}
	}
	next.reset(p.seq + 1)
	w.pend = next
	return p, false
}

// commit writes one batch, fsyncs it, and answers its Syncs. The answers
// are posted holding no lock: a loop whose Post blocks while it is itself
// in Load must not deadlock with the writer. Compaction runs after the
// answers, so a snapshot's deletions never delay the proposals that shared
// its fsync; a later Sync's answer implies they are done.
func (w *WAL) commit(p *pending) {
	w.mu.Lock()
	err := w.failed
	w.mu.Unlock()
	wrote := false
	if err == nil && !p.empty() {
		w.ioMu.Lock()
		err = w.write(p)
		w.ioMu.Unlock()
		if err != nil {
			err = fmt.Errorf("wal %s: stopped after a failed write: %w", w.dir, err)
			w.mu.Lock()
			w.failed = err
			w.mu.Unlock()
		} else {
			wrote = true
		}
	}
	if n := len(p.dones); n > 0 {
		w.syncs.Add(uint64(n))
		dones := p.dones
		w.loop.Post(func() {
			for _, d := range dones {
				d(err)
			}
		})
	}
	var cerr error
	if wrote && p.snap != nil {
		w.ioMu.Lock()
		cerr = w.compact()
		w.ioMu.Unlock()
	}

	w.mu.Lock()
	if cerr != nil && w.lastErr == nil {
		w.lastErr = cerr
	}
	if !p.empty() && w.spare == nil {
		p.reset(0)
		w.spare = p
	}
	w.mu.Unlock()
}

// write appends batch p to the log and fsyncs it: into a new segment when
// the current one is full (opening with a header and a checkpoint of the
// state before p), after the snapshot file when p carries a snapshot.
// Callers hold ioMu.
func (w *WAL) write(p *pending) error {
	if p.snap != nil && p.snap.Index > w.dur.snapIndex {
		if err := writeSnapshotFile(w.dir, p.snap, w.opts.hooks); err != nil {
			return fmt.Errorf("snapshot %d: %w", p.snap.Index, err)
		}
	}
	var head []byte
	nrec := p.nrec
	newSeg := w.cur == nil || w.curSize >= w.opts.SegmentBytes
	if newSeg {
		name := segmentName(w.nextSegNum, p.seq)
		f, err := os.OpenFile(filepath.Join(w.dir, name), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		if w.cur != nil {
			w.cur.Close() // fsynced with its last batch
		}
		w.cur, w.curSize = f, 0
		w.segs = append(w.segs, segInfo{num: w.nextSegNum, firstSeq: p.seq, name: name})
		w.segCount.Store(int64(len(w.segs)))
		w.nextSegNum++
		var start int
		head, start = beginRecord(nil)
		head = segmentHeader{num: w.segs[len(w.segs)-1].num, firstSeq: p.seq}.appendTo(head)
		endRecord(head, start, recSegment, p.seq)
		cp := w.dur.checkpoint()
		head, start = beginRecord(head)
		head = appendCheckpoint(head, &cp)
		endRecord(head, start, recCheckpoint, p.seq)
		nrec += 2
	}
	var start int
	if p.hasHS {
		p.buf, start = beginRecord(p.buf)
		p.buf = appendHardState(p.buf, p.hs)
		endRecord(p.buf, start, recHardState, p.seq)
		nrec++
	}
	p.buf, start = beginRecord(p.buf)
	p.buf = appendCommit(p.buf, uint32(nrec))
	endRecord(p.buf, start, recCommit, p.seq)

	for _, b := range [][]byte{head, p.buf} {
		if len(b) == 0 {
			continue
		}
		if _, err := w.cur.Write(b); err != nil {
			return err
		}
		w.curSize += int64(len(b))
		w.written.Add(uint64(len(b)))
	}
	if h := w.opts.hooks.beforeFsync; h != nil {
		h()
	}
	t0 := time.Now()
	if err := w.opts.hooks.fsync(w.cur); err != nil {
		return err
	}
	w.fsyncNanos.Add(int64(time.Since(t0)))
	if newSeg {
		if err := w.opts.hooks.syncDir(w.dir); err != nil {
			return err
		}
	}
	w.fsyncs.Add(1)

	// The batch is durable: the state a later checkpoint carries moves on.
	seg := &w.segs[len(w.segs)-1]
	seg.size = w.curSize
	seg.maxIndex = max(seg.maxIndex, p.maxIndex)
	if p.hasHS {
		w.dur.hs = p.hs
	}
	for _, op := range p.meta {
		if op.del {
			delete(w.dur.meta, op.key)
		} else {
			w.dur.meta[op.key] = op.val
		}
	}
	if p.snap != nil && p.snap.Index > w.dur.snapIndex {
		w.dur.snapIndex, w.dur.snapTerm = p.snap.Index, p.snap.Term
	}
	return nil
}

// compact deletes what the durable snapshot made obsolete: the oldest
// segments whose entries are all at or below it (never the segment being
// written; every later segment opens with a checkpoint, so replay can start
// there), and snapshot files other than the newest two. Each deletion is
// made durable before the next, so a crash leaves the segments a suffix of
// the log, never one with a hole. Callers hold ioMu.
func (w *WAL) compact() error {
	for len(w.segs) > 1 && w.segs[0].maxIndex <= w.dur.snapIndex {
		if err := os.Remove(filepath.Join(w.dir, w.segs[0].name)); err != nil {
			return fmt.Errorf("wal: compaction: %w", err)
		}
		if err := w.opts.hooks.syncDir(w.dir); err != nil {
			return fmt.Errorf("wal: compaction: %w", err)
		}
		w.segs = w.segs[1:]
		w.segCount.Store(int64(len(w.segs)))
	}
	return w.pruneSnapshots()
}

// pruneSnapshots keeps the durable snapshot's file and the newest older
// one. Files newer than the durable snapshot were never acknowledged (their
// marker did not become durable) and go too.
func (w *WAL) pruneSnapshots() error {
	des, err := os.ReadDir(w.dir)
	if err != nil {
		return fmt.Errorf("wal: compaction: %w", err)
	}
	type snapFile struct {
		index uint64
		name  string
	}
	var older []snapFile
	var drop []string
	for _, de := range des {
		index, term, ok := parseSnapName(de.Name())
		switch {
		case !ok:
		case index == w.dur.snapIndex && term == w.dur.snapTerm:
		case index >= w.dur.snapIndex:
			drop = append(drop, de.Name())
		default:
			older = append(older, snapFile{index, de.Name()})
		}
	}
	slices.SortFunc(older, func(a, b snapFile) int { return cmp.Compare(b.index, a.index) })
	if len(older) > 1 {
		for _, f := range older[1:] {
			drop = append(drop, f.name)
		}
	}
	for _, name := range drop {
		if err := os.Remove(filepath.Join(w.dir, name)); err != nil {
			return fmt.Errorf("wal: compaction: %w", err)
		}
	}
	return nil
}
