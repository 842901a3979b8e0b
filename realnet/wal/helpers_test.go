package wal

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/swarmsim/swarmsim/engine/env"
)

// goLoop is a node loop for tests: one goroutine running posted functions
// in order, from an unbounded queue so that Post never blocks the writer.
type goLoop struct {
	mu      sync.Mutex
	q       []func()
	wake    chan struct{}
	stopped chan struct{}
	stop    bool
}

func newGoLoop(tb testing.TB) *goLoop {
	l := startGoLoop()
	tb.Cleanup(l.Stop)
	return l
}

func startGoLoop() *goLoop {
	l := &goLoop{wake: make(chan struct{}, 1), stopped: make(chan struct{})}
	go l.run()
	return l
}

func (l *goLoop) Post(f func()) {
	l.mu.Lock()
	l.q = append(l.q, f)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *goLoop) run() {
	defer close(l.stopped)
	for range l.wake {
		for {
			l.mu.Lock()
			if len(l.q) == 0 {
				stop := l.stop
				l.mu.Unlock()
				if stop {
					return
				}
				break
			}
			f := l.q[0]
			l.q = l.q[1:]
			l.mu.Unlock()
			f()
		}
	}
}

// Stop ends the loop after what is queued has run.
func (l *goLoop) Stop() {
	l.mu.Lock()
	already := l.stop
	l.stop = true
	l.mu.Unlock()
	if already {
		return
	}
	l.Post(func() {})
	<-l.stopped
}

// Do runs f on the loop and waits for it.
func (l *goLoop) Do(f func()) {
	done := make(chan struct{})
	l.Post(func() { f(); close(done) })
	<-done
}

// syncNow calls w.Sync and waits for its answer, which must come on the
// loop.
func syncNow(tb testing.TB, w *WAL) error {
	tb.Helper()
	ch := make(chan error, 1)
	w.Sync(func(err error) { ch <- err })
	return <-ch
}

func mustSync(tb testing.TB, w *WAL) {
	tb.Helper()
	if err := syncNow(tb, w); err != nil {
		tb.Fatalf("sync: %v", err)
	}
}

func mustOpen(tb testing.TB, dir string, opts Options) *WAL {
	tb.Helper()
	w, err := Open(dir, newGoLoop(tb), opts)
	if err != nil {
		tb.Fatalf("open %s: %v", dir, err)
	}
	return w
}

func mustClose(tb testing.TB, w *WAL) {
	tb.Helper()
	if err := w.Close(); err != nil {
		tb.Fatalf("close: %v", err)
	}
}

func mustLoad(tb testing.TB, w *WAL) env.DiskState {
	tb.Helper()
	st, err := w.Load()
	if err != nil {
		tb.Fatalf("load: %v", err)
	}
	return st
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// ents builds entries first..last in term, with data naming them.
func ents(term, first, last uint64) []env.Entry {
	var out []env.Entry
	for i := first; i <= last; i++ {
		out = append(out, env.Entry{Term: term, Index: i, Data: fmt.Appendf(nil, "t%d-i%d", term, i)})
	}
	return out
}

// model is the reference for env.Storage semantics: what Load must return
// after the staged operations it saw became durable. It is written from the
// interface's documentation, independently of the WAL's own replay.
type model struct {
	snap env.Snapshot
	hs   env.HardState
	log  []env.Entry
	meta map[string][]byte
}

func (m *model) clone() model {
	c := *m
	c.log = slices.Clone(m.log)
	c.meta = maps.Clone(m.meta)
	return c
}

func (m *model) last() uint64 {
	if len(m.log) == 0 {
		return m.snap.Index
	}
	return m.log[len(m.log)-1].Index
}

func (m *model) termAt(i uint64) (uint64, bool) {
	if len(m.log) == 0 || i < m.log[0].Index || i > m.last() {
		return 0, false
	}
	return m.log[i-m.log[0].Index].Term, true
}

func (m *model) append(es []env.Entry) {
	for len(es) > 0 && es[0].Index <= m.snap.Index {
		es = es[1:]
	}
	if len(es) == 0 {
		return
	}
	if len(m.log) > 0 {
		m.log = m.log[:es[0].Index-m.log[0].Index]
	}
	for _, e := range es {
		e.Data = bytes.Clone(e.Data)
		if len(e.Data) == 0 {
			e.Data = nil
		}
		m.log = append(m.log, e)
	}
}

func (m *model) saveSnapshot(s env.Snapshot) {
	if s.Index <= m.snap.Index {
		return
	}
	if t, ok := m.termAt(s.Index); ok && t == s.Term {
		m.log = slices.Clone(m.log[s.Index-m.log[0].Index+1:])
	} else {
		m.log = nil
	}
	m.snap = s
}

func (m *model) setMeta(k string, v []byte) {
	if v == nil {
		delete(m.meta, k)
		return
	}
	if m.meta == nil {
		m.meta = map[string][]byte{}
	}
	m.meta[k] = bytes.Clone(v)
	if m.meta[k] == nil {
		m.meta[k] = []byte{}
	}
}

// state is what Load should return for the model.
func (m *model) state() env.DiskState {
	st := env.DiskState{Snapshot: m.snap, HardState: m.hs, Entries: slices.Clone(m.log)}
	if len(st.Snapshot.Data) == 0 {
		st.Snapshot.Data = nil
	}
	if len(st.Entries) == 0 {
		st.Entries = nil
	}
	if len(m.meta) > 0 {
		st.Meta = maps.Clone(m.meta)
	}
	return st
}

// diffState describes how got differs from want, or returns "".
func diffState(got, want env.DiskState) string {
	var b strings.Builder
	if got.HardState != want.HardState {
		fmt.Fprintf(&b, "hard state %+v, want %+v\n", got.HardState, want.HardState)
	}
	gs, ws := got.Snapshot, want.Snapshot
	if gs.Index != ws.Index || gs.Term != ws.Term || !bytes.Equal(gs.Data, ws.Data) ||
		!confEqual(gs.Conf, ws.Conf) {
		fmt.Fprintf(&b, "snapshot %d/%d %q %+v, want %d/%d %q %+v\n",
			gs.Index, gs.Term, trunc(gs.Data), gs.Conf, ws.Index, ws.Term, trunc(ws.Data), ws.Conf)
	}
	if len(got.Entries) != len(want.Entries) {
		fmt.Fprintf(&b, "%d entries %s, want %d %s\n", len(got.Entries), span(got.Entries), len(want.Entries), span(want.Entries))
	} else {
		for i := range got.Entries {
			g, w := got.Entries[i], want.Entries[i]
			if g.Index != w.Index || g.Term != w.Term || g.Type != w.Type || !bytes.Equal(g.Data, w.Data) ||
				(g.Data == nil) != (w.Data == nil) {
				fmt.Fprintf(&b, "entry %d: %d/%d/%d %q, want %d/%d/%d %q\n", i,
					g.Index, g.Term, g.Type, trunc(g.Data), w.Index, w.Term, w.Type, trunc(w.Data))
				break
			}
		}
	}
	if !maps.EqualFunc(got.Meta, want.Meta, func(a, b []byte) bool { return bytes.Equal(a, b) && (a == nil) == (b == nil) }) ||
		(got.Meta == nil) != (want.Meta == nil) {
		fmt.Fprintf(&b, "meta %q, want %q\n", got.Meta, want.Meta)
	}
	return b.String()
}

func confEqual(a, b env.ConfState) bool {
	return slices.Equal(a.Voters, b.Voters) && slices.Equal(a.Learners, b.Learners) &&
		slices.Equal(a.VotersOutgoing, b.VotersOutgoing) && slices.Equal(a.LearnersNext, b.LearnersNext) &&
		a.AutoLeave == b.AutoLeave
}

func span(es []env.Entry) string {
	if len(es) == 0 {
		return "[]"
	}
	return fmt.Sprintf("[%d..%d]", es[0].Index, es[len(es)-1].Index)
}

func trunc(b []byte) []byte {
	if len(b) > 24 {
		return b[:24]
	}
	return b
}

func checkState(tb testing.TB, got env.DiskState, want model) {
	tb.Helper()
	if d := diffState(got, want.state()); d != "" {
		tb.Fatalf("loaded state differs:\n%s", d)
	}
}

// copyDir copies the regular files of src into a fresh directory.
func copyDir(tb testing.TB, src string) string {
	tb.Helper()
	dst := tb.TempDir()
	des, err := os.ReadDir(src)
	must(tb, err)
	for _, de := range des {
		if !de.Type().IsRegular() || de.Name() == "LOCK" {
			continue
		}
		in, err := os.Open(filepath.Join(src, de.Name()))
		must(tb, err)
		out, err := os.Create(filepath.Join(dst, de.Name()))
		must(tb, err)
		_, err = io.Copy(out, in)
		must(tb, err)
		in.Close()
		must(tb, out.Close())
	}
	return dst
}

// scratch is a directory that tests restore to a saved image again and
// again: cheaper than a fresh copy per case, since rewriting a file that
// exists costs far less than creating one.
type scratch struct {
	dir   string
	image map[string][]byte
}

func newScratch(tb testing.TB, src string) *scratch {
	tb.Helper()
	s := &scratch{dir: tb.TempDir(), image: map[string][]byte{}}
	des, err := os.ReadDir(src)
	must(tb, err)
	for _, de := range des {
		if de.Type().IsRegular() && de.Name() != "LOCK" {
			b, err := os.ReadFile(filepath.Join(src, de.Name()))
			must(tb, err)
			s.image[de.Name()] = b
		}
	}
	return s
}

// reset makes the directory hold the image, with file name's content
// replaced by data, and returns the directory.
func (s *scratch) reset(tb testing.TB, name string, data []byte) string {
	tb.Helper()
	des, err := os.ReadDir(s.dir)
	must(tb, err)
	for _, de := range des {
		if _, keep := s.image[de.Name()]; !keep && de.Name() != "LOCK" {
			must(tb, os.Remove(filepath.Join(s.dir, de.Name())))
		}
	}
	for n, b := range s.image {
		if n == name {
			b = data
		}
		if cur, err := os.ReadFile(filepath.Join(s.dir, n)); err == nil && bytes.Equal(cur, b) {
			continue
		}
		must(tb, os.WriteFile(filepath.Join(s.dir, n), b, 0o600))
	}
	return s.dir
}

// files lists dir's file names with a suffix, sorted.
func files(tb testing.TB, dir, suffix string) []string {
	tb.Helper()
	des, err := os.ReadDir(dir)
	must(tb, err)
	var out []string
	for _, de := range des {
		if strings.HasSuffix(de.Name(), suffix) {
			out = append(out, de.Name())
		}
	}
	slices.Sort(out)
	return out
}

func lastSegment(tb testing.TB, dir string) string {
	tb.Helper()
	segs := files(tb, dir, segmentSuffix)
	if len(segs) == 0 {
		tb.Fatalf("no segment in %s", dir)
	}
	return filepath.Join(dir, segs[len(segs)-1])
}

func fileSize(tb testing.TB, path string) int64 {
	tb.Helper()
	fi, err := os.Stat(path)
	must(tb, err)
	return fi.Size()
}
