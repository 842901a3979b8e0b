package store

import "slices"

// Action says what happened to an object.
type Action uint8

const (
	ActionCreate Action = iota + 1
	ActionUpdate
	ActionDelete
	// ActionRestore: the whole content was replaced by Restore. The event
	// carries no object; a watcher must rebuild what it derived from the
	// store by reading it again.
	ActionRestore
)

var actionNames = [...]string{"none", "create", "update", "delete", "restore"}

func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return "action(?)"
}

// Event is one change to the store. Old is nil on create, New is nil on
// delete; both are nil on restore. Compact actions (a task status update, a
// task assignment) appear as ActionUpdate of the task.
type Event struct {
	Action Action
	Kind   Kind
	ID     string
	Old    Object
	New    Object
}

type watcher struct {
	fn        func([]Event)
	kinds     KindSet
	cancelled bool
}

// KindSet is a set of object kinds, for WatchKinds.
type KindSet uint16

// AllKinds holds every kind: what Watch watches.
const AllKinds KindSet = 1<<NumKinds - 1

// KindSetOf returns the set of the given kinds.
func KindSetOf(kinds ...Kind) KindSet {
	var s KindSet
	for _, k := range kinds {
		s |= k.bit()
	}
	return s
}

func (k Kind) bit() KindSet { return 1 << k }

// Watch registers fn to be called, on the store's loop, with the changes
// of every proposal that applies (in action order, one call per proposal)
// and after every Restore. fn runs synchronously inside Apply or Restore,
// after the store has changed:
//
//   - it may read the store, which already shows the changes;
//   - it must not modify the events or their objects; it may keep them;
//   - it must not start a write synchronously (Update): Post it to the loop
//     instead, so that applying stays free of re-entrant proposals;
//   - it may cancel itself or any other watcher. A cancelled watcher is not
//     called again, even for the proposal being dispatched; a watcher
//     registered during a dispatch is first called for the next one.
//
// cancel may be called any number of times.
func (s *Store) Watch(fn func(events []Event)) (cancel func()) {
	return s.WatchKinds(AllKinds, fn)
}

// WatchKinds is Watch for a watcher that looks only at objects of the
// given kinds: fn is called for the proposals that change at least one of
// them (with all of the proposal's events, those of other kinds too) and
// after every Restore. A proposal no watcher looks at costs no event log
// (the raft benchmark's KV writes, which no manager component watches).
func (s *Store) WatchKinds(kinds KindSet, fn func(events []Event)) (cancel func()) {
	w := &watcher{fn: fn, kinds: kinds | KindNone.bit()}
	s.watchers = append(s.watchers, w)
	s.watchKinds |= w.kinds
	return func() {
		if w.cancelled {
			return
		}
		w.cancelled = true
		if s.dispatching > 0 {
			s.dirty = true // compacting now would shift the dispatch loop
			return
		}
		s.compactWatchers()
	}
}

// dispatch hands evs, whose events are of the kinds in kinds, to every
// watcher that looks at one of them.
func (s *Store) dispatch(evs []Event, kinds KindSet) {
	s.dispatching++
	defer func() {
		s.dispatching--
		if s.dispatching == 0 && s.dirty {
			s.compactWatchers()
		}
	}()
	// Watchers added by a callback land beyond n and wait for the next
	// dispatch; they read the store after this change already.
	n := len(s.watchers)
	for i := 0; i < n; i++ {
		if w := s.watchers[i]; !w.cancelled && w.kinds&kinds != 0 {
			w.fn(evs)
		}
	}
}

func (s *Store) compactWatchers() {
	s.dirty = false
	s.watchers = slices.DeleteFunc(s.watchers, func(w *watcher) bool { return w.cancelled })
	s.watchKinds = 0
	for _, w := range s.watchers {
		s.watchKinds |= w.kinds
	}
}
