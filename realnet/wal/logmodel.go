package wal

import (
	"slices"
	"sort"

	"github.com/swarmsim/swarmsim/engine/env"
)

// termRun says entries from first on (up to the next run) have term.
type termRun struct{ first, term uint64 }

// logModel is the shape of the log once everything staged is applied:
// where the snapshot is, the last index, and each entry's term as runs.
// Staging validates appends against it and decides, for a staged snapshot,
// whether the log after it is kept. It holds no entry data, and one run per
// term change, so it stays small however long the log.
type logModel struct {
	snapIndex, snapTerm uint64
	last                uint64    // last index; snapIndex when no entries follow it
	runs                []termRun // cover (snapIndex, last]
}

func newLogModel(snap env.Snapshot, ents []env.Entry) logModel {
	m := logModel{snapIndex: snap.Index, snapTerm: snap.Term, last: snap.Index}
	for i := range ents {
		m.push(ents[i].Index, ents[i].Term)
	}
	return m
}

// termAt returns the term of the entry at i, when the log holds one.
func (m *logModel) termAt(i uint64) (uint64, bool) {
	if i <= m.snapIndex || i > m.last {
		return 0, false
	}
	k := sort.Search(len(m.runs), func(j int) bool { return m.runs[j].first > i }) - 1
	return m.runs[k].term, true
}

// truncate drops the entries at from and after it.
func (m *logModel) truncate(from uint64) {
	if from > m.last {
		return
	}
	from = max(from, m.snapIndex+1)
	k := sort.Search(len(m.runs), func(j int) bool { return m.runs[j].first >= from })
	m.runs = m.runs[:k]
	m.last = from - 1
}

// push adds the entry after the last one.
func (m *logModel) push(index, term uint64) {
	if n := len(m.runs); n == 0 || m.runs[n-1].term != term {
		m.runs = append(m.runs, termRun{first: index, term: term})
	}
	m.last = index
}

// snapshot moves the snapshot to (index, term), keeping the entries after it
// or dropping every entry.
func (m *logModel) snapshot(index, term uint64, keep bool) {
	if !keep || index >= m.last {
		m.runs = m.runs[:0]
		m.last = index
	} else {
		// The run holding index+1 becomes the first.
		k := sort.Search(len(m.runs), func(j int) bool { return m.runs[j].first > index+1 }) - 1
		m.runs = slices.Delete(m.runs, 0, k)
		m.runs[0].first = index + 1
	}
	m.snapIndex, m.snapTerm = index, term
}
