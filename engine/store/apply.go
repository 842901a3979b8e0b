package store

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/swarmsim/swarmsim/engine/api"
)

type kindID struct {
	kind Kind
	id   string
}

// assignedMessage is the status message of a task the scheduler placed.
const assignedMessage = "assigned"

// Apply applies the committed proposal data at raft index index. It is the
// store's side of the raft state machine, called in index order on every
// manager.
//
// err is non-nil only when data cannot be decoded: the log is corrupt or
// was written by an incompatible version, and the node must stop. Otherwise
// result is nil when the proposal applied, or an error value when it was
// rejected as a whole (a stale version, a missing or existing object, a
// taken name): the proposer's done gets it. A rejected proposal changes
// nothing but the applied index.
//
// All actions are checked and applied in order, each seeing the effect of
// the ones before; the first failure undoes the ones before it. An UPDATE,
// DELETE or TaskAssignment names the version the object had before the
// proposal, even when an earlier action of the same proposal changed it.
// Created and updated objects get meta.version = index and updated_at =
// the proposal's timestamp (created_at on creation, kept on update).
//
// Compact actions never reject a proposal: a TaskStatusUpdate that would
// move a task backwards (or names a gone task) and a TaskAssignment whose
// guard fails (stale version, task not pending, node gone) are skipped, so
// that one stale entry does not void a batch of thousands. A writer learns
// which applied from the watch events.
//
// Apply reads no clock and draws no randomness; two stores given the same
// entries end byte-identical.
func (s *Store) Apply(index uint64, data []byte) (result any, err error) {
	p := &api.Proposal{}
	if err := proto.Unmarshal(data, p); err != nil {
		s.stats.DecodeErrors++
		return nil, fmt.Errorf("store: decode entry %d: %w", index, err)
	}
	s.applied = index
	s.stats.Proposals++
	s.stats.Actions += uint64(len(p.Actions))
	var skipped uint64
	for i, a := range p.Actions {
		ok, err := s.applyAction(index, p.Timestamp, a)
		if err != nil {
			s.rollback()
			s.stats.Conflicts++
			return fmt.Errorf("store: entry %d action %d: %w", index, i, err), nil
		}
		if !ok {
			skipped++
		}
	}
	s.stats.SkippedActions += skipped
	s.publish()
	return nil, nil
}

// applyAction applies one action. It reports false for a compact action it
// skipped, and an error for an action that rejects the proposal.
func (s *Store) applyAction(index uint64, ts int64, a *api.StoreAction) (bool, error) {
	switch t := a.GetTarget().(type) {
	case *api.StoreAction_TaskStatus:
		return s.applyStatus(index, ts, t.TaskStatus), nil
	case *api.StoreAction_TaskAssignment:
		return s.applyAssignment(index, ts, t.TaskAssignment), nil
	}
	o := actionObject(a)
	if o == nil {
		return false, fmt.Errorf("action without an object: %w", ErrInvalid)
	}
	k, id := KindOf(o), ID(o)
	if id == "" {
		return false, objectError(k, id, ErrInvalid)
	}
	tbl := s.c.tables[k]
	cur := tbl.get(id)
	switch a.GetKind() {
	case api.StoreAction_CREATE:
		if cur != nil {
			return false, objectError(k, id, ErrExist)
		}
		if err := checkName(k, id, o, tbl.nameHolder); err != nil {
			return false, err
		}
		if t, ok := o.(*api.Task); ok {
			s.c.intern(t, nil)
		}
		setMeta(o, &api.Meta{Version: index, CreatedAt: ts, UpdatedAt: ts})
		s.record(ActionCreate, k, id, nil, o)
		tbl.put(id, o)
	case api.StoreAction_UPDATE:
		if cur == nil {
			return false, objectError(k, id, ErrNotExist)
		}
		if v, want := metaVersion(o), s.baseVersion(index, k, id, cur); v != want {
			return false, objectError(k, id, fmt.Errorf("version %d, stored %d: %w", v, want, ErrSequenceConflict))
		}
		if err := checkName(k, id, o, tbl.nameHolder); err != nil {
			return false, err
		}
		if t, ok := o.(*api.Task); ok {
			old := cur.(*api.Task)
			if err := checkTaskUpdate(old, t); err != nil {
				return false, err
			}
			s.c.intern(t, old)
		}
		setMeta(o, &api.Meta{Version: index, CreatedAt: cur.GetMeta().GetCreatedAt(), UpdatedAt: ts})
		s.record(ActionUpdate, k, id, cur, o)
		tbl.put(id, o)
	case api.StoreAction_DELETE:
		if cur == nil {
			return false, objectError(k, id, ErrNotExist)
		}
		if v, want := metaVersion(o), s.baseVersion(index, k, id, cur); v != 0 && v != want {
			return false, objectError(k, id, fmt.Errorf("version %d, stored %d: %w", v, want, ErrSequenceConflict))
		}
		s.record(ActionDelete, k, id, cur, nil)
		tbl.del(id)
	default:
		return false, objectError(k, id, fmt.Errorf("action kind %d: %w", a.GetKind(), ErrInvalid))
	}
	return true, nil
}

func (s *Store) applyStatus(index uint64, ts int64, u *api.TaskStatusUpdate) bool {
	st := u.GetStatus()
	cur := s.c.tasks.lookup(u.GetTaskId())
	if st == nil || cur == nil || compareStatus(cur.Status, st) <= 0 {
		return false
	}
	n := cur.ShallowCopy()
	n.Status = st
	n.Meta = &api.Meta{Version: index, CreatedAt: cur.GetMeta().GetCreatedAt(), UpdatedAt: ts}
	s.record(ActionUpdate, KindTask, cur.Id, cur, n)
	s.c.tasks.put(cur.Id, n)
	return true
}

func (s *Store) applyAssignment(index uint64, ts int64, a *api.TaskAssignment) bool {
	cur := s.c.tasks.lookup(a.GetTaskId())
	if cur == nil || s.baseVersion(index, KindTask, cur.Id, cur) != a.GetExpectedVersion() {
		return false
	}
	node := s.c.nodes.lookup(a.GetNodeId())
	if checkAssignment(cur, a.GetNodeId(), node) != nil {
		return false
	}
	n := assign(cur, s.c.nodes.canonical(node.Id), ts)
	n.Meta = &api.Meta{Version: index, CreatedAt: cur.GetMeta().GetCreatedAt(), UpdatedAt: ts}
	s.record(ActionUpdate, KindTask, cur.Id, cur, n)
	s.c.tasks.put(cur.Id, n)
	return true
}

// compareStatus says whether next moves a task's status forward (> 0),
// changes nothing (0) or would move it back (< 0). State decides; within one
// state a later timestamp wins, so a late duplicate of an old report (a
// health verdict) cannot overwrite a newer one.
func compareStatus(cur, next *api.TaskStatus) int {
	switch {
	case next.GetState() != cur.GetState():
		return cmpOrder(next.GetState(), cur.GetState())
	case next.GetTimestamp() != cur.GetTimestamp():
		return cmpOrder(next.GetTimestamp(), cur.GetTimestamp())
	case proto.Equal(cur, next):
		return 0
	}
	return 1
}

func cmpOrder[T ~int32 | ~int64](a, b T) int {
	if a > b {
		return 1
	}
	return -1
}

// checkTaskUpdate guards a full task update: its state only moves forward.
func checkTaskUpdate(old, new *api.Task) error {
	if new.GetStatus().GetState() < old.GetStatus().GetState() {
		return objectError(KindTask, new.Id, fmt.Errorf("%s to %s: %w",
			old.GetStatus().GetState(), new.GetStatus().GetState(), ErrStatusRegression))
	}
	return nil
}

// checkAssignment is the guard of a task assignment, beyond its version:
// the task is on no node and not yet assigned, and the node exists.
func checkAssignment(t *api.Task, nodeID string, n *api.Node) error {
	if t.NodeId != "" || t.GetStatus().GetState() >= api.TaskState_TASK_STATE_ASSIGNED {
		return objectError(KindTask, t.Id, ErrNotPending)
	}
	if n == nil || n.Removed {
		return objectError(KindNode, nodeID, ErrNodeUnavailable)
	}
	return nil
}

// assign returns t placed on nodeID at ts, without a new meta.
func assign(t *api.Task, nodeID string, ts int64) *api.Task {
	n := t.ShallowCopy()
	n.NodeId = nodeID
	n.Status = &api.TaskStatus{State: api.TaskState_TASK_STATE_ASSIGNED, Timestamp: ts, Message: assignedMessage}
	n.PendingReason = ""
	return n
}

// checkName fails when o's unique name is held by another object.
func checkName(k Kind, id string, o Object, holder func(string) string) error {
	if !k.uniqueName() {
		return nil
	}
	n := Name(o)
	if n == "" {
		return nil
	}
	if h := holder(n); h != "" && h != id {
		return objectError(k, id, fmt.Errorf("name %q held by %q: %w", n, h, ErrNameConflict))
	}
	return nil
}

// baseVersion is the version an action on (k, id) must name: cur's version,
// or, when an earlier action of this proposal already changed the object
// (its version is now index), the version it had before the proposal.
func (s *Store) baseVersion(index uint64, k Kind, id string, cur Object) uint64 {
	v := metaVersion(cur)
	if v != index {
		return v
	}
	if s.touched == nil {
		s.touched = make(map[kindID]uint64)
		for _, e := range s.log {
			key := kindID{e.Kind, e.ID}
			if _, ok := s.touched[key]; !ok {
				s.touched[key] = metaVersion(e.Old)
			}
		}
	}
	return s.touched[kindID{k, id}]
}

// record logs a change, both to undo it if the proposal fails and to
// publish it if it applies.
func (s *Store) record(a Action, k Kind, id string, old, new Object) {
	s.log = append(s.log, Event{Action: a, Kind: k, ID: id, Old: old, New: new})
	if s.touched != nil {
		key := kindID{k, id}
		if _, ok := s.touched[key]; !ok {
			s.touched[key] = metaVersion(old)
		}
	}
}

// rollback undoes the logged changes, newest first.
func (s *Store) rollback() {
	for i := len(s.log) - 1; i >= 0; i-- {
		e := &s.log[i]
		if e.Old == nil {
			s.c.tables[e.Kind].del(e.ID)
		} else {
			s.c.tables[e.Kind].put(e.ID, e.Old)
		}
	}
	s.resetLog()
}

// publish hands the logged changes to the watchers.
func (s *Store) publish() {
	if len(s.log) == 0 || len(s.watchers) == 0 {
		s.resetLog()
		return
	}
	evs := s.log
	// Watchers may keep the slice (a callback that Posts work usually
	// captures it), so the next proposal logs into a new one.
	s.log = nil
	s.touched = nil
	s.dispatch(evs)
}

func (s *Store) resetLog() {
	s.touched = nil
	if cap(s.log) > 4096 {
		s.log = nil // do not keep a huge proposal's log around
		return
	}
	clear(s.log)
	s.log = s.log[:0]
}

// intern makes a task about to be stored share strings and its spec with
// objects already stored, so that 100,000 tasks of one service hold one
// spec, not 100,000 equal copies. Sharing is safe because stored objects are
// immutable, and invisible: the content is equal.
func (c *content) intern(t *api.Task, old *api.Task) {
	t.NodeId = c.nodes.canonical(t.NodeId)
	svc := c.services.lookup(t.ServiceId)
	if svc != nil {
		t.ServiceId = c.services.canonical(t.ServiceId)
		if name := svc.GetSpec().GetName(); t.ServiceName == name {
			t.ServiceName = name
		}
	}
	if t.Spec == nil {
		return
	}
	if old != nil && old.Spec != nil && proto.Equal(t.Spec, old.Spec) {
		t.Spec = old.Spec
		return
	}
	if svc == nil {
		return
	}
	if ts := svc.GetSpec().GetTask(); ts != nil && proto.Equal(t.Spec, ts) {
		t.Spec = ts
	} else if ts := svc.GetPreviousSpec().GetTask(); ts != nil && proto.Equal(t.Spec, ts) {
		t.Spec = ts
	}
}
