package store

import (
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/swarmsim/swarmsim/engine/api"
)

var marshalOptions = proto.MarshalOptions{Deterministic: true}

// Update runs fn against a new transaction and proposes what it recorded.
//
// fn runs at once. It reads through tx (its reads see its own writes) and
// records writes; every write is checked against the store as it stands plus
// the transaction's earlier writes, and returns the error the proposal would
// fail with, so fn can react at once. If fn returns an error, nothing is
// proposed and done gets that error. If fn records nothing, done gets nil.
// Otherwise the actions become one api.Proposal, stamped with the store
// clock's time when Update was called, encoded deterministically and handed
// to the proposer; done gets nil once it applied on this node, the
// rejection if Apply rejected it (a concurrent change; errors.Is tells
// which sentinel), or the proposer's error.
//
// done is called exactly once, possibly before Update returns (an empty or
// failed transaction, or a synchronous proposer). It may be nil.
//
// Writes hand the Tx objects it takes ownership of: do not modify an
// object after giving it to Create or Update. The store never keeps that
// pointer: it stores what it decodes from the committed entry.
func (s *Store) Update(fn func(tx *Tx) error, done func(error)) {
	if done == nil {
		done = func(error) {}
	}
	if s.proposer == nil {
		done(ErrNoProposer)
		return
	}
	u := &pendingUpdate{tx: Tx{s: s, ts: s.clock.Now().UnixNano()}, done: done}
	tx := &u.tx
	tx.actions = tx.oneAction[:0]
	err := fn(tx)
	tx.closed = true
	if err != nil {
		done(err)
		return
	}
	if len(tx.actions) == 0 {
		done(nil)
		return
	}
	data, err := appendProposal(u.buf[:0], tx.ts, tx.actions)
	if err != nil {
		done(fmt.Errorf("store: encode proposal: %w", err))
		return
	}
	if len(data) > s.maxProposalBytes {
		done(fmt.Errorf("store: %d actions encode to %d bytes, over %d: %w",
			len(tx.actions), len(data), s.maxProposalBytes, ErrProposalTooLarge))
		return
	}
	// The transaction is over: drop what it referenced (a batch's actions
	// and overlay can be large), so that the proposal waiting in raft keeps
	// only done and the encoded bytes. A Tx kept past its function (which
	// it must not be) still refuses writes and reads the store.
	u.tx = Tx{s: s, ts: tx.ts, closed: true}
	s.proposer.Propose(data, u)
}

// inlineProposalBytes is the room an update has for its encoded proposal:
// a KV write of a short key and a value of a dozen bytes or so fits (the
// raft benchmark's take 49), and the update fills a 256-byte size class
// (TestPendingUpdateSize).
const inlineProposalBytes = 64

// pendingUpdate is one Update call: its transaction, which holds the first KV
// action it records, and room for a small encoded proposal. A write of
// one small KV (the scenario clients' and the raft benchmark's writes)
// thus allocates the update and the proposer's callback, instead of a
// Tx, an action, a buffer and a callback. The buffer is handed to the
// proposer, which must not change it (Propose's contract) and may keep it:
// it keeps the update alive, nothing more.
type pendingUpdate struct {
	tx   Tx
	done func(error)
	buf  [inlineProposalBytes]byte
}

// Done hands the proposer's answer to done: nil once the proposal
// applied, the rejection Apply returned, or the proposer's error.
func (u *pendingUpdate) Done(result any, err error) {
	switch {
	case err != nil:
		u.done(err)
	case result != nil:
		if e, ok := result.(error); ok {
			u.done(e)
			return
		}
		u.done(nil)
	default:
		u.done(nil)
	}
}

// Tx records the writes of one transaction. It is valid only while the
// function given to Update runs. Reads through a Tx see the store plus the
// transaction's writes; lists cost O(result + writes of the kind in this
// transaction).
type Tx struct {
	s       *Store
	ts      int64
	actions []*api.StoreAction
	// oneAction holds the actions of a transaction of one write, most of
	// them, without an allocation of its own; kvAction holds its first KV
	// action (see newAction).
	oneAction [1]*api.StoreAction
	kvAction  kvAction
	// over holds the objects this transaction wrote, nil for deleted.
	// Compact actions store the task as it will look once applied (but
	// with its old meta). Most transactions write one object: the first
	// write waits in first, and moves to over (spills) only when a second
	// object is written or a list is read.
	over  *[NumKinds]map[string]Object // allocated when it spills
	first txEntry
	// names records unique-name changes: name -> ID now holding it, "" when
	// freed.
	names *[NumKinds]map[string]string // allocated at the first change
	// The flags sit together (and txEntry's kind beside its set) so that
	// a pendingUpdate fits a 256-byte size class.
	kvActionUsed, spilled, closed bool
}

// Timestamp is the proposal's timestamp (Unix nanoseconds): the time Apply
// will stamp on the objects, and the one writers should use inside the
// objects they build (a new task's status timestamp...).
func (tx *Tx) Timestamp() int64 { return tx.ts }

// Len is the number of actions recorded so far; writers batching thousands
// of changes use it to split transactions.
func (tx *Tx) Len() int { return len(tx.actions) }

// Create records the creation of o, which must have an ID that no object of
// its kind has, and a name (for kinds with unique names) no other object
// holds. o's meta is ignored: Apply sets it.
func (tx *Tx) Create(o Object) error {
	k, id, err := tx.target(o)
	if err != nil {
		return err
	}
	if tx.get(k, id) != nil {
		return objectError(k, id, ErrExist)
	}
	if err := checkName(k, id, o, func(n string) string { return tx.nameHolder(k, n) }); err != nil {
		return err
	}
	tx.write(k, id, nil, o)
	tx.actions = append(tx.actions, tx.newAction(api.StoreAction_CREATE, o))
	return nil
}

// Update records the replacement of the stored object with o's ID by o.
// o.meta.version must be the version of the object as read from the store
// before this transaction (0 for an object this transaction created), even
// if the transaction already updated it.
func (tx *Tx) Update(o Object) error {
	k, id, err := tx.target(o)
	if err != nil {
		return err
	}
	cur, written := tx.lookup(k, id)
	if cur == nil {
		return objectError(k, id, ErrNotExist)
	}
	stored := cur // what the store holds, which o's version must name
	if written {
		stored = tx.s.c.tables[k].get(id)
	}
	if v, want := metaVersion(o), metaVersion(stored); v != want {
		return objectError(k, id, fmt.Errorf("version %d, stored %d: %w", v, want, ErrSequenceConflict))
	}
	if err := checkName(k, id, o, func(n string) string { return tx.nameHolder(k, n) }); err != nil {
		return err
	}
	if t, ok := o.(*api.Task); ok {
		if err := checkTaskUpdate(cur.(*api.Task), t); err != nil {
			return err
		}
	}
	tx.write(k, id, cur, o)
	tx.actions = append(tx.actions, tx.newAction(api.StoreAction_UPDATE, o))
	return nil
}

// WriteKV records the write of key = value: a creation when base (the
// key's object as read) is nil, else an update based on base's version.
func (tx *Tx) WriteKV(key, value string, base *api.KV) error {
	blk := newKV(value)
	kv := &blk.kv
	kv.Key = key
	if base == nil {
		return tx.Create(kv)
	}
	blk.meta.Version = base.GetMeta().GetVersion()
	kv.Meta = &blk.meta
	return tx.Update(kv)
}

// Delete records the deletion of the object of kind k with the given ID.
// A non-zero version must be the stored one (as for Update); 0 deletes
// whatever version is stored when the proposal applies.
func (tx *Tx) Delete(k Kind, id string, version uint64) error {
	if tx.closed {
		return ErrTxClosed
	}
	if k == KindNone || k >= NumKinds || id == "" {
		return objectError(k, id, ErrInvalid)
	}
	cur := tx.get(k, id)
	if cur == nil {
		return objectError(k, id, ErrNotExist)
	}
	if want := metaVersion(tx.s.c.tables[k].get(id)); version != 0 && version != want {
		return objectError(k, id, fmt.Errorf("version %d, stored %d: %w", version, want, ErrSequenceConflict))
	}
	tx.write(k, id, cur, nil)
	tx.actions = append(tx.actions, newAction(api.StoreAction_DELETE, tombstone(k, id, version)))
	return nil
}

// UpdateTaskStatus records a compact status update of a task: no version,
// since status only moves forward. It returns ErrStatusRegression (and
// records nothing) when st would move the task's state backwards, or is
// older than its status in the same state; it records nothing and returns
// nil when st changes nothing. Should the task move on before the proposal
// applies, Apply skips the update instead of rejecting the proposal, so a
// dispatcher can batch thousands of agents' reports in one transaction.
// The Tx takes ownership of st.
func (tx *Tx) UpdateTaskStatus(taskID string, st *api.TaskStatus) error {
	if tx.closed {
		return ErrTxClosed
	}
	if taskID == "" || st == nil {
		return objectError(KindTask, taskID, ErrInvalid)
	}
	cur := tx.Task(taskID)
	if cur == nil {
		return objectError(KindTask, taskID, ErrNotExist)
	}
	switch c := compareStatus(cur.Status, st); {
	case c == 0:
		return nil
	case c < 0:
		return objectError(KindTask, taskID, fmt.Errorf("%s at %d to %s at %d: %w",
			cur.GetStatus().GetState(), cur.GetStatus().GetTimestamp(), st.State, st.Timestamp, ErrStatusRegression))
	}
	n := cur.ShallowCopy()
	n.Status = st
	tx.write(KindTask, taskID, cur, n)
	tx.actions = append(tx.actions, &api.StoreAction{
		Kind:   api.StoreAction_UPDATE,
		Target: &api.StoreAction_TaskStatus{TaskStatus: &api.TaskStatusUpdate{TaskId: taskID, Status: st}},
	})
	return nil
}

// AssignTask records a compact assignment of a pending task to a node (the
// scheduler's decision): the task gets node_id = nodeID and status ASSIGNED
// at the proposal's timestamp. expectedVersion is the task's version as the
// scheduler read it. It fails with ErrSequenceConflict, ErrNotPending
// (already on a node or past PENDING) or ErrNodeUnavailable. Should the
// guard fail by the time the proposal applies, Apply skips the assignment
// instead of rejecting the batch; the scheduler sees which assignments
// applied in the watch events (an ActionUpdate whose New task has node_id).
func (tx *Tx) AssignTask(taskID, nodeID string, expectedVersion uint64) error {
	if tx.closed {
		return ErrTxClosed
	}
	if taskID == "" {
		return objectError(KindTask, taskID, ErrInvalid)
	}
	cur := tx.Task(taskID)
	if cur == nil {
		return objectError(KindTask, taskID, ErrNotExist)
	}
	if want := metaVersion(tx.s.c.tasks.get(taskID)); expectedVersion != want {
		return objectError(KindTask, taskID, fmt.Errorf("version %d, stored %d: %w", expectedVersion, want, ErrSequenceConflict))
	}
	if err := checkAssignment(cur, nodeID, tx.Node(nodeID)); err != nil {
		return err
	}
	n := cur.ShallowCopy()
	setAssigned(n, &api.TaskStatus{}, nodeID, tx.ts)
	tx.write(KindTask, taskID, cur, n)
	tx.actions = append(tx.actions, &api.StoreAction{
		Kind: api.StoreAction_UPDATE,
		Target: &api.StoreAction_TaskAssignment{TaskAssignment: &api.TaskAssignment{
			TaskId: taskID, NodeId: nodeID, ExpectedVersion: expectedVersion,
		}},
	})
	return nil
}

// newAction is the package's newAction, building the transaction's first
// KV action in the Tx itself.
func (tx *Tx) newAction(kind api.StoreAction_Kind, o Object) *api.StoreAction {
	if v, ok := o.(*api.KV); ok && !tx.kvActionUsed {
		tx.kvActionUsed = true
		return tx.kvAction.wrap(kind, v)
	}
	return newAction(kind, o)
}

// target checks that o can be written and returns its kind and ID.
func (tx *Tx) target(o Object) (Kind, string, error) {
	if tx.closed {
		return KindNone, "", ErrTxClosed
	}
	k := KindOf(o)
	if k == KindNone {
		return k, "", fmt.Errorf("object of type %T: %w", o, ErrInvalid)
	}
	id := ID(o)
	if id == "" || isNil(o) {
		return k, id, objectError(k, id, ErrInvalid)
	}
	return k, id, nil
}

// isNil reports a typed nil pointer inside o (without protoreflect: this
// runs on every write).
func isNil(o Object) bool {
	switch v := o.(type) {
	case *api.Node:
		return v == nil
	case *api.Service:
		return v == nil
	case *api.Task:
		return v == nil
	case *api.Network:
		return v == nil
	case *api.Cluster:
		return v == nil
	case *api.Secret:
		return v == nil
	case *api.Config:
		return v == nil
	case *api.KV:
		return v == nil
	}
	return !o.ProtoReflect().IsValid()
}

// txEntry is one object a Tx wrote (nil: deleted).
type txEntry struct {
	kind Kind
	set  bool
	id   string
	obj  Object
}

// write makes the Tx's view show o (nil: deleted) in place of old.
func (tx *Tx) write(k Kind, id string, old, o Object) {
	switch {
	case !tx.spilled && (!tx.first.set || tx.first.kind == k && tx.first.id == id):
		tx.first = txEntry{kind: k, id: id, obj: o, set: true}
	default:
		tx.spill()
		if tx.over == nil {
			tx.over = new([NumKinds]map[string]Object)
		}
		if tx.over[k] == nil {
			tx.over[k] = make(map[string]Object)
		}
		tx.over[k][id] = o
	}
	if !k.uniqueName() {
		return
	}
	if on, nn := Name(old), Name(o); on != nn {
		if tx.names == nil {
			tx.names = new([NumKinds]map[string]string)
		}
		if tx.names[k] == nil {
			tx.names[k] = make(map[string]string)
		}
		if on != "" {
			tx.names[k][on] = ""
		}
		if nn != "" {
			tx.names[k][nn] = id
		}
	}
}

// get returns the object of kind k with the given ID as the Tx sees it.
func (tx *Tx) get(k Kind, id string) Object {
	o, _ := tx.lookup(k, id)
	return o
}

// lookup is get, and reports whether the object is one the Tx wrote.
func (tx *Tx) lookup(k Kind, id string) (o Object, written bool) {
	if !tx.spilled {
		if tx.first.set && tx.first.kind == k && tx.first.id == id {
			return tx.first.obj, true
		}
	} else if o, ok := tx.overOf(k)[id]; ok {
		return o, true
	}
	return tx.s.c.tables[k].get(id), false
}

// overOf is over's map for kind k (nil when there is none).
func (tx *Tx) overOf(k Kind) map[string]Object {
	if tx.over == nil {
		return nil
	}
	return tx.over[k]
}

// spill moves the first write into over, for good.
func (tx *Tx) spill() {
	if tx.spilled {
		return
	}
	tx.spilled = true
	if f := tx.first; f.set {
		tx.over = new([NumKinds]map[string]Object)
		tx.over[f.kind] = map[string]Object{f.id: f.obj}
	}
	tx.first = txEntry{}
}

// nameHolder returns the ID of the object holding a unique name as the Tx
// sees it, or "". A stored holder renamed or deleted by the Tx has freed the
// name in tx.names.
func (tx *Tx) nameHolder(k Kind, name string) string {
	if tx.names == nil {
		return tx.s.c.tables[k].nameHolder(name)
	}
	if h, ok := tx.names[k][name]; ok {
		return h
	}
	return tx.s.c.tables[k].nameHolder(name)
}

func txGet[T Object](tx *Tx, k Kind, id string) T {
	if o := tx.get(k, id); o != nil {
		return o.(T)
	}
	var zero T
	return zero
}

func txByName[T Object](tx *Tx, k Kind, name string) T {
	if name != "" {
		if h := tx.nameHolder(k, name); h != "" {
			return txGet[T](tx, k, h)
		}
	}
	var zero T
	return zero
}

// txList merges a stored list (in ID order) with the Tx's writes of the
// kind: written objects replace or remove stored ones, and those matching
// the query join the list.
func txList[T Object](tx *Tx, k Kind, stored []T, match func(T) bool) []T {
	tx.spill()
	over := tx.overOf(k)
	if len(over) == 0 {
		return stored
	}
	out := stored[:0]
	for _, o := range stored {
		if _, written := over[ID(o)]; !written {
			out = append(out, o)
		}
	}
	var extra []T
	for _, o := range over { // map order: sorted below
		if o == nil {
			continue
		}
		if v := o.(T); match == nil || match(v) {
			extra = append(extra, v)
		}
	}
	if len(extra) == 0 {
		return out
	}
	slices.SortFunc(extra, func(a, b T) int { return strings.Compare(ID(a), ID(b)) })
	merged := make([]T, 0, len(out)+len(extra))
	i, j := 0, 0
	for i < len(out) && j < len(extra) {
		if ID(out[i]) < ID(extra[j]) {
			merged = append(merged, out[i])
			i++
		} else {
			merged = append(merged, extra[j])
			j++
		}
	}
	merged = append(merged, out[i:]...)
	return append(merged, extra[j:]...)
}

func (tx *Tx) Get(k Kind, id string) Object {
	if k == KindNone || k >= NumKinds {
		return nil
	}
	return tx.get(k, id)
}

func (tx *Tx) Node(id string) *api.Node       { return txGet[*api.Node](tx, KindNode, id) }
func (tx *Tx) Service(id string) *api.Service { return txGet[*api.Service](tx, KindService, id) }
func (tx *Tx) Task(id string) *api.Task       { return txGet[*api.Task](tx, KindTask, id) }
func (tx *Tx) Network(id string) *api.Network { return txGet[*api.Network](tx, KindNetwork, id) }
func (tx *Tx) Cluster(id string) *api.Cluster { return txGet[*api.Cluster](tx, KindCluster, id) }
func (tx *Tx) Secret(id string) *api.Secret   { return txGet[*api.Secret](tx, KindSecret, id) }
func (tx *Tx) Config(id string) *api.Config   { return txGet[*api.Config](tx, KindConfig, id) }
func (tx *Tx) KV(key string) *api.KV          { return txGet[*api.KV](tx, KindKV, key) }

func (tx *Tx) ServiceByName(name string) *api.Service {
	return txByName[*api.Service](tx, KindService, name)
}
func (tx *Tx) NetworkByName(name string) *api.Network {
	return txByName[*api.Network](tx, KindNetwork, name)
}
func (tx *Tx) SecretByName(name string) *api.Secret {
	return txByName[*api.Secret](tx, KindSecret, name)
}
func (tx *Tx) ConfigByName(name string) *api.Config {
	return txByName[*api.Config](tx, KindConfig, name)
}
func (tx *Tx) NodesByName(name string) []*api.Node {
	if name == "" {
		return nil
	}
	return txList(tx, KindNode, tx.s.NodesByName(name), func(n *api.Node) bool { return n.GetSpec().GetName() == name })
}

func (tx *Tx) Nodes() []*api.Node       { return txList(tx, KindNode, tx.s.Nodes(), nil) }
func (tx *Tx) Services() []*api.Service { return txList(tx, KindService, tx.s.Services(), nil) }
func (tx *Tx) Tasks() []*api.Task       { return txList(tx, KindTask, tx.s.Tasks(), nil) }
func (tx *Tx) Networks() []*api.Network { return txList(tx, KindNetwork, tx.s.Networks(), nil) }
func (tx *Tx) Clusters() []*api.Cluster { return txList(tx, KindCluster, tx.s.Clusters(), nil) }
func (tx *Tx) Secrets() []*api.Secret   { return txList(tx, KindSecret, tx.s.Secrets(), nil) }
func (tx *Tx) Configs() []*api.Config   { return txList(tx, KindConfig, tx.s.Configs(), nil) }
func (tx *Tx) KVs() []*api.KV           { return txList(tx, KindKV, tx.s.KVs(), nil) }

func (tx *Tx) TasksByService(serviceID string) []*api.Task {
	return txList(tx, KindTask, tx.s.TasksByService(serviceID), func(t *api.Task) bool { return t.ServiceId == serviceID })
}

func (tx *Tx) TasksByNode(nodeID string) []*api.Task {
	return txList(tx, KindTask, tx.s.TasksByNode(nodeID), func(t *api.Task) bool { return t.NodeId == nodeID })
}

func (tx *Tx) TasksBySlot(serviceID string, slot uint64) []*api.Task {
	return txList(tx, KindTask, tx.s.TasksBySlot(serviceID, slot), func(t *api.Task) bool {
		return t.ServiceId == serviceID && t.Slot == slot
	})
}
