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
//
// own is the update this store proposed as data, while it waits (see
// raft.StateMachine), or nil. A write made by WriteKV is then applied from
// the key and value it was asked to write, which data encodes, instead of
// being decoded again: the proposing node skips decoding its own writes, as
// a SwarmKit leader commits its own transactions. Anything else is
// decoded.
func (s *Store) Apply(index uint64, data []byte, own Proposal) (result any, err error) {
	var ts int64
	var ops []op
	if w, ok := own.(*pendingKV); ok && w.s == s && w.flying {
		ts = w.ts
		ops = append(s.ops[:0], op{kind: opKV, akind: w.kind, own: w})
		s.stats.OwnApplied++
	} else {
		ts, ops, err = s.c.decodeProposal(data, s.ops[:0])
	}
	if err != nil {
		s.stats.DecodeErrors++
		err = fmt.Errorf("store: decode entry %d: %w", index, err)
	} else {
		result = s.applyOps(index, ts, ops)
	}
	s.c.taskIdx.specs.sweep()
	// ops alias data and hold decoded objects: keep the storage only.
	clear(ops)
	if cap(ops) <= 4096 {
		s.ops = ops[:0]
	} else {
		s.ops = nil
	}
	return result, err
}

// applyOps applies a decoded proposal's actions, all or none, and returns
// Apply's result.
func (s *Store) applyOps(index uint64, ts int64, ops []op) any {
	s.applied = index
	s.lone = len(ops) == 1
	s.stats.Proposals++
	s.stats.Actions += uint64(len(ops))
	if cap(s.log) < len(ops) {
		s.log = s.newLog(len(ops))
	}
	var skipped uint64
	for i := range ops {
		ok, err := s.applyOp(index, ts, &ops[i])
		if err != nil {
			s.rollback()
			s.stats.Conflicts++
			return fmt.Errorf("store: entry %d action %d: %w", index, i, err)
		}
		if !ok {
			skipped++
		}
	}
	s.stats.SkippedActions += skipped
	s.publish()
	return nil
}

// applyOp applies one action. It reports false for a compact action it
// skipped, and an error for an action that rejects the proposal.
func (s *Store) applyOp(index uint64, ts int64, o *op) (bool, error) {
	switch o.kind {
	case opStatus:
		return s.applyStatus(index, ts, o.taskID, o.status), nil
	case opAssign:
		return s.applyAssignment(index, ts, o.taskID, o.nodeID, o.version), nil
	}
	if o.kind == opKV {
		err := s.applyKV(index, ts, o)
		return err == nil, err
	}
	var obj, cur Object
	var akind api.StoreAction_Kind
	var newVersion, curVersion uint64
	var curCreated int64
	a := o.full
	switch t := a.GetTarget().(type) {
	case *api.StoreAction_TaskStatus: // not in the hand decoder's shape
		u := t.TaskStatus
		return s.applyStatus(index, ts, []byte(u.GetTaskId()), u.GetStatus()), nil
	case *api.StoreAction_TaskAssignment:
		u := t.TaskAssignment
		return s.applyAssignment(index, ts, []byte(u.GetTaskId()), []byte(u.GetNodeId()), u.GetExpectedVersion()), nil
	}
	obj, akind = actionObject(a), a.GetKind()
	if obj != nil {
		cur = s.c.tables[KindOf(obj)].get(ID(obj))
		newVersion = metaVersion(obj)
	}
	if cur != nil {
		m := cur.GetMeta()
		curVersion, curCreated = m.GetVersion(), m.GetCreatedAt()
	}
	if obj == nil {
		return false, fmt.Errorf("action without an object: %w", ErrInvalid)
	}
	k, id := KindOf(obj), ID(obj)
	if id == "" {
		return false, objectError(k, id, ErrInvalid)
	}
	tbl := s.c.tables[k]
	switch akind {
	case api.StoreAction_CREATE:
		if cur != nil {
			return false, objectError(k, id, ErrExist)
		}
		if err := checkName(k, id, obj, tbl.nameHolder); err != nil {
			return false, err
		}
		if t, ok := obj.(*api.Task); ok {
			s.c.intern(t)
		}
		setMeta(obj, fillMeta(nil, index, ts, ts))
		s.record(ActionCreate, k, id, nil, obj)
		tbl.put(id, obj)
	case api.StoreAction_UPDATE:
		if cur == nil {
			return false, objectError(k, id, ErrNotExist)
		}
		if v, want := newVersion, s.baseVersion(index, k, id, curVersion); v != want {
			return false, objectError(k, id, fmt.Errorf("version %d, stored %d: %w", v, want, ErrSequenceConflict))
		}
		if err := checkName(k, id, obj, tbl.nameHolder); err != nil {
			return false, err
		}
		if t, ok := obj.(*api.Task); ok {
			old := cur.(*api.Task)
			if err := checkTaskUpdate(old, t); err != nil {
				return false, err
			}
			s.c.intern(t)
		}
		setMeta(obj, fillMeta(nil, index, curCreated, ts))
		s.record(ActionUpdate, k, id, cur, obj)
		tbl.put(id, obj)
	case api.StoreAction_DELETE:
		if cur == nil {
			return false, objectError(k, id, ErrNotExist)
		}
		if v, want := newVersion, s.baseVersion(index, k, id, curVersion); v != 0 && v != want {
			return false, objectError(k, id, fmt.Errorf("version %d, stored %d: %w", v, want, ErrSequenceConflict))
		}
		s.record(ActionDelete, k, id, cur, nil)
		tbl.del(id)
	default:
		return false, objectError(k, id, fmt.Errorf("action kind %d: %w", akind, ErrInvalid))
	}
	return true, nil
}

// applyKV applies a KV action as applyOp would any action, without the
// type switches and interface calls the other kinds take: a KV write is
// the hot small write. A new object shares the stored key's string when
// the key exists.
//
// An update that nothing will read the old object of (the proposal has
// no other action to undo it for, and no watcher looks at KVs: the
// managers' components watch other kinds) changes the stored object in
// place, reusing its value's room, instead of allocating another on every
// manager. That is safe because no stored KV leaves the store: reads get
// copies (see kvTable).
func (s *Store) applyKV(index uint64, ts int64, o *op) error {
	var r *rec[*api.KV]
	var key string
	version := o.meta.version
	if w := o.own; w != nil {
		key, version = w.key, w.base
		r = s.c.kvs.rec(key)
	} else if r = s.c.kvs.recBytes(o.taskID); r == nil {
		key = string(o.taskID)
	}
	if r != nil {
		key = r.id
	}
	if key == "" {
		return objectError(KindKV, key, ErrInvalid)
	}
	switch o.akind {
	case api.StoreAction_CREATE:
		if r != nil {
			return objectError(KindKV, key, ErrExist)
		}
		kv := o.newKV(key, index, ts, ts)
		s.recordKV(ActionCreate, key, nil, kv)
		s.c.kvs.put(key, kv)
	case api.StoreAction_UPDATE:
		if r == nil {
			return objectError(KindKV, key, ErrNotExist)
		}
		cur := r.obj.GetMeta()
		if want := s.baseVersion(index, KindKV, key, cur.GetVersion()); version != want {
			return objectError(KindKV, key, fmt.Errorf("version %d, stored %d: %w", version, want, ErrSequenceConflict))
		}
		if s.kvUnread() {
			o.setValue(r.obj)
			r.obj.Meta = fillMeta(r.obj.Meta, index, cur.GetCreatedAt(), ts)
			return nil
		}
		kv := o.newKV(key, index, cur.GetCreatedAt(), ts)
		s.recordKV(ActionUpdate, key, r.obj, kv)
		s.c.kvs.replace(r, kv)
	case api.StoreAction_DELETE:
		if r == nil {
			return objectError(KindKV, key, ErrNotExist)
		}
		if want := s.baseVersion(index, KindKV, key, r.obj.GetMeta().GetVersion()); version != 0 && version != want {
			return objectError(KindKV, key, fmt.Errorf("version %d, stored %d: %w", version, want, ErrSequenceConflict))
		}
		s.recordKV(ActionDelete, key, r.obj, nil)
		s.c.kvs.del(key)
	default:
		return objectError(KindKV, key, fmt.Errorf("action kind %d: %w", o.akind, ErrInvalid))
	}
	return nil
}

// newKV builds the object a KV action stores: key, the action's value,
// and a meta of the given fields.
func (o *op) newKV(key string, version uint64, created, updated int64) *api.KV {
	var blk *kvWithMeta
	if w := o.own; w != nil {
		blk = newKV(w.value)
	} else {
		blk = newKV(o.value)
	}
	blk.kv.Key = key
	blk.kv.Meta = fillMeta(&blk.meta, version, created, updated)
	return &blk.kv
}

// setValue makes the action's value kv's, in kv's room when it fits.
func (o *op) setValue(kv *api.KV) {
	if w := o.own; w != nil {
		kv.Value = overwrite(kv.Value, w.value)
	} else {
		kv.Value = overwrite(kv.Value, o.value)
	}
}

// overwrite returns a copy of value in dst's room when it fits, else in a
// new slice.
func overwrite[T string | []byte](dst []byte, value T) []byte {
	if cap(dst) < len(value) {
		dst = make([]byte, len(value))
	}
	dst = dst[:len(value)]
	copy(dst, value)
	return dst
}

// fillMeta sets a new meta's fields, in m when the decoder allocated it
// with the object, in a new Meta otherwise.
func fillMeta(m *api.Meta, version uint64, created, updated int64) *api.Meta {
	if m == nil {
		m = new(api.Meta)
	}
	m.Version, m.CreatedAt, m.UpdatedAt = version, created, updated
	return m
}

// Compact actions allocate the new task with its new meta (and status) in
// one block: one allocation instead of three, on the hottest path. Interior
// pointers keep the block alive as long as any part is referenced.
type (
	taskWithMeta struct {
		task api.Task
		meta api.Meta
	}
	taskWithMetaStatus struct {
		task   api.Task
		meta   api.Meta
		status api.TaskStatus
	}
)

// setMetaFields fills a fresh meta: version index, updated at ts, created
// when cur was.
func setMetaFields(m *api.Meta, cur *api.Task, index uint64, ts int64) *api.Meta {
	m.Version = index
	m.CreatedAt = cur.GetMeta().GetCreatedAt()
	m.UpdatedAt = ts
	return m
}

func (s *Store) applyStatus(index uint64, ts int64, taskID []byte, st *api.TaskStatus) bool {
	r := s.c.tasks.recBytes(taskID)
	if st == nil || r == nil || compareStatus(r.obj.Status, st) <= 0 {
		return false
	}
	cur := r.obj
	b := new(taskWithMeta)
	n := cur.ShallowCopyInto(&b.task)
	n.Status = st
	n.Meta = setMetaFields(&b.meta, cur, index, ts)
	s.record(ActionUpdate, KindTask, r.id, cur, n)
	s.c.tasks.replace(r, n)
	return true
}

func (s *Store) applyAssignment(index uint64, ts int64, taskID, nodeID []byte, expectedVersion uint64) bool {
	r := s.c.tasks.recBytes(taskID)
	if r == nil || s.baseVersion(index, KindTask, r.id, r.obj.GetMeta().GetVersion()) != expectedVersion {
		return false
	}
	cur := r.obj
	node := s.c.nodes.lookupBytes(nodeID)
	if node == nil || checkAssignment(cur, node.Id, node) != nil {
		return false
	}
	b := new(taskWithMetaStatus)
	n := cur.ShallowCopyInto(&b.task)
	setAssigned(n, &b.status, s.c.nodes.canonical(node.Id), ts)
	n.Meta = setMetaFields(&b.meta, cur, index, ts)
	s.record(ActionUpdate, KindTask, r.id, cur, n)
	s.c.tasks.replace(r, n)
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

// setAssigned places n (a fresh copy of a pending task) on nodeID at ts,
// with st (fresh) as its status.
func setAssigned(n *api.Task, st *api.TaskStatus, nodeID string, ts int64) {
	st.State = api.TaskState_TASK_STATE_ASSIGNED
	st.Timestamp = ts
	st.Message = assignedMessage
	n.Status = st
	n.NodeId = nodeID
	n.PendingReason = ""
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

// baseVersion is the version an action on (k, id) must name: v, the
// stored object's version, or, when an earlier action of this proposal
// already changed the object (its version is now index), the version it
// had before the proposal.
func (s *Store) baseVersion(index uint64, k Kind, id string, v uint64) uint64 {
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

// kvUnread reports whether no one will read a KV change of the proposal
// being applied: it has no other action to undo it for, and no watcher
// looks at KVs.
func (s *Store) kvUnread() bool {
	return s.lone && s.watchKinds&KindKV.bit() == 0
}

// recordKV is record for a KV change, which it leaves out when kvUnread.
func (s *Store) recordKV(a Action, id string, old, new *api.KV) {
	if s.kvUnread() {
		return
	}
	var o, n Object
	if old != nil {
		o = old
	}
	if new != nil {
		n = new
	}
	s.record(a, KindKV, id, o, n)
}

// record logs a change, both to undo it if the proposal fails and to
// publish it if it applies. A new KV is logged as a copy, since the
// stored one may change in place later (see applyKV); an old one has left
// the store, or is a copy already.
func (s *Store) record(a Action, k Kind, id string, old, new Object) {
	if kv, ok := new.(*api.KV); ok {
		new = copyKV(kv)
	}
	s.log = append(s.log, Event{Action: a, Kind: k, ID: id, Old: old, New: new})
	s.logKinds |= k.bit()
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

// logSlab is how many events newLog carves from one allocation.
const logSlab = 128

// newLog returns an empty log for n events. Watchers may keep a published
// log, so each proposal that has watchers logs into a new one: small logs
// are carved from a shared slab (one allocation for many proposals), and
// never overlap, since each has its full capacity cut to n.
func (s *Store) newLog(n int) []Event {
	if n > logSlab/4 {
		return make([]Event, 0, n) // one allocation for a big batch
	}
	if cap(s.slab)-len(s.slab) < n {
		s.slab = make([]Event, 0, logSlab)
	}
	l := s.slab[len(s.slab) : len(s.slab) : len(s.slab)+n]
	s.slab = s.slab[:len(s.slab)+n]
	return l
}

// publish hands the logged changes to the watchers that look at their
// kinds.
func (s *Store) publish() {
	kinds := s.logKinds
	if len(s.log) == 0 || kinds&s.watchKinds == 0 {
		s.resetLog()
		return
	}
	evs := s.log
	// Watchers may keep the slice (a callback that Posts work usually
	// captures it), so the next proposal logs into a new one.
	s.log = nil
	s.touched = nil
	s.logKinds = 0
	s.dispatch(evs, kinds)
}

func (s *Store) resetLog() {
	s.touched = nil
	s.logKinds = 0
	if cap(s.log) > 4096 {
		s.log = nil // do not keep a huge proposal's log around
		return
	}
	clear(s.log)
	s.log = s.log[:0]
}

// intern makes a task about to be stored share the strings of the service
// and node it names, instead of holding its own copies. (Specs are shared
// by the decoder: see specRegistry.) Sharing is safe because stored objects
// are immutable, and invisible: the content is equal.
func (c *content) intern(t *api.Task) {
	t.NodeId = c.nodes.canonical(t.NodeId)
	if svc := c.services.lookup(t.ServiceId); svc != nil {
		t.ServiceId = c.services.canonical(t.ServiceId)
		if name := svc.GetSpec().GetName(); t.ServiceName == name {
			t.ServiceName = name
		}
	}
}
