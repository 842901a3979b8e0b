package store

import (
	"github.com/swarmsim/swarmsim/engine/api"
)

// anyTable is what apply, Tx and restore need from a table of any kind.
type anyTable interface {
	// get returns the object with the given ID, or nil.
	get(id string) Object
	// put stores o (whose ID is id) in place of the current one, if any,
	// and updates every index.
	put(id string, o Object)
	// del removes the object with the given ID, if any.
	del(id string)
	// nameHolder returns the ID of the object holding a unique name, or "".
	nameHolder(name string) string
	len() int
}

// table holds the objects of one kind: by ID, in ID order, by unique name
// when the kind has one, and through extra indexes kept by onChange.
type table[T Object] struct {
	kind  Kind
	byID  map[string]*rec[T]
	all   recSet[T]
	names map[string]*rec[T] // nil unless kind.uniqueName()
	// onChange keeps the kind's extra indexes; old or new is the zero T (a
	// nil pointer) when the object is created or deleted.
	onChange func(r *rec[T], old, new T)
}

func newTable[T Object](k Kind) *table[T] {
	t := &table[T]{kind: k, byID: make(map[string]*rec[T])}
	if k.uniqueName() {
		t.names = make(map[string]*rec[T])
	}
	return t
}

func (t *table[T]) len() int { return len(t.byID) }

// lookup returns the object with the given ID, or the zero T.
func (t *table[T]) lookup(id string) T {
	if r := t.byID[id]; r != nil {
		return r.obj
	}
	var zero T
	return zero
}

// lookupBytes is lookup for an ID held as bytes; it does not allocate.
func (t *table[T]) lookupBytes(id []byte) T {
	if r := t.byID[string(id)]; r != nil {
		return r.obj
	}
	var zero T
	return zero
}

func (t *table[T]) get(id string) Object {
	if r := t.byID[id]; r != nil {
		return r.obj
	}
	return nil // an untyped nil, not a nil T
}

// canonical returns the stored copy of id when an object has that ID, so
// that references to it share one string instead of each holding its own.
func (t *table[T]) canonical(id string) string {
	if r := t.byID[id]; r != nil {
		return r.id
	}
	return id
}

// rec returns the rec of the object with the given ID, or nil.
func (t *table[T]) rec(id string) *rec[T] { return t.byID[id] }

// recBytes returns the rec of the object with the given ID, or nil; it
// does not allocate.
func (t *table[T]) recBytes(id []byte) *rec[T] { return t.byID[string(id)] }

// kvTable is the table of client keys. applyKV updates a stored KV in
// place when nothing reads its old state, so no stored KV may leave the
// store: every read through here gets a copy. The store's own code reaches
// the stored objects through rec and recBytes.
type kvTable struct{ *table[*api.KV] }

func (t kvTable) get(id string) Object {
	if kv := t.lookup(id); kv != nil {
		return kv
	}
	return nil // an untyped nil, not a nil *api.KV
}

func (t kvTable) lookup(id string) *api.KV {
	if r := t.byID[id]; r != nil {
		return copyKV(r.obj)
	}
	return nil
}

// list returns a copy of every KV, in key order.
func (t kvTable) list() []*api.KV {
	kvs := t.all.list()
	for i, kv := range kvs {
		kvs[i] = copyKV(kv)
	}
	return kvs
}

func (t *table[T]) put(id string, o Object) {
	v := o.(T)
	r := t.byID[id]
	if r == nil {
		r = &rec[T]{id: id}
		t.byID[id] = r
		t.all.insert(r)
	}
	t.replace(r, v)
}

// replace makes v, whose ID is r.id, the object of the stored rec r.
func (t *table[T]) replace(r *rec[T], v T) {
	old := r.obj
	r.obj = v
	if t.names != nil {
		if on, nn := Name(old), Name(v); on != nn {
			if on != "" && t.names[on] == r {
				delete(t.names, on)
			}
			if nn != "" {
				t.names[nn] = r
			}
		}
	}
	if t.onChange != nil {
		t.onChange(r, old, v)
	}
}

func (t *table[T]) del(id string) {
	r := t.byID[id]
	if r == nil {
		return
	}
	delete(t.byID, id)
	t.all.remove(id)
	if t.names != nil {
		if n := Name(r.obj); n != "" && t.names[n] == r {
			delete(t.names, n)
		}
	}
	if t.onChange != nil {
		var zero T
		t.onChange(r, r.obj, zero)
	}
}

func (t *table[T]) nameHolder(name string) string {
	if r := t.names[name]; r != nil {
		return r.id
	}
	return ""
}

// byName returns the object holding a unique name, or the zero T.
func (t *table[T]) byName(name string) T {
	if r := t.names[name]; r != nil && name != "" {
		return r.obj
	}
	var zero T
	return zero
}

// addTo adds r to the set m[k], creating it.
func addTo[K comparable, T any](m map[K]*recSet[T], k K, r *rec[T]) {
	s := m[k]
	if s == nil {
		s = &recSet[T]{}
		m[k] = s
	}
	s.insert(r)
}

// removeFrom removes id from the set m[k], dropping the set once empty so
// that keys of gone services and nodes do not pile up.
func removeFrom[K comparable, T any](m map[K]*recSet[T], k K, id string) {
	s := m[k]
	if s == nil {
		return
	}
	s.remove(id)
	if s.Len() == 0 {
		delete(m, k)
	}
}

// slotKey names a replicated service's slot.
type slotKey struct {
	service string
	slot    uint64
}

// taskIndex indexes tasks by service, by node and by (service, slot).
// Tasks on no node are not indexed by node: at 100,000 pending tasks, that
// set would be the largest of all, and every assignment would pay to leave
// it. Tasks of slot 0 (global services) are not indexed by slot, since
// (service, 0) would just repeat the service's whole set.
type taskIndex struct {
	byService map[string]*recSet[*api.Task]
	byNode    map[string]*recSet[*api.Task]
	bySlot    map[slotKey]*recSet[*api.Task]
	specs     *specRegistry
}

func newTaskIndex() *taskIndex {
	return &taskIndex{
		byService: make(map[string]*recSet[*api.Task]),
		byNode:    make(map[string]*recSet[*api.Task]),
		bySlot:    make(map[slotKey]*recSet[*api.Task]),
		specs:     newSpecRegistry(),
	}
}

// change moves r between sets when a key changed. A status change, the
// hottest update, changes no key and touches no set.
func (x *taskIndex) change(r *rec[*api.Task], old, new *api.Task) {
	if old == nil || new == nil || old.Spec != new.Spec {
		if new != nil {
			x.specs.retain(new.Spec)
		}
		if old != nil {
			x.specs.release(old.Spec)
		}
	}
	if old == nil || new == nil || old.ServiceId != new.ServiceId {
		if old != nil {
			removeFrom(x.byService, old.ServiceId, r.id)
		}
		if new != nil {
			addTo(x.byService, new.ServiceId, r)
		}
	}
	if old == nil || new == nil || old.NodeId != new.NodeId {
		if old != nil && old.NodeId != "" {
			removeFrom(x.byNode, old.NodeId, r.id)
		}
		if new != nil && new.NodeId != "" {
			addTo(x.byNode, new.NodeId, r)
		}
	}
	if old == nil || new == nil || old.ServiceId != new.ServiceId || old.Slot != new.Slot {
		if old != nil && old.Slot != 0 {
			removeFrom(x.bySlot, slotKey{old.ServiceId, old.Slot}, r.id)
		}
		if new != nil && new.Slot != 0 {
			addTo(x.bySlot, slotKey{new.ServiceId, new.Slot}, r)
		}
	}
}

// nodeNameIndex indexes nodes by spec.name. Names are not unique.
type nodeNameIndex map[string]*recSet[*api.Node]

func (x nodeNameIndex) change(r *rec[*api.Node], old, new *api.Node) {
	on, nn := old.GetSpec().GetName(), new.GetSpec().GetName()
	if old != nil && new != nil && on == nn {
		return
	}
	if old != nil && on != "" {
		removeFrom(x, on, r.id)
	}
	if new != nil && nn != "" {
		addTo(x, nn, r)
	}
}

// specRegistry lets the tasks of a service share one TaskSpec instead of
// each holding an equal copy (at 100,000 tasks, most of a store's memory).
// It maps the encoding of a spec, as found in entries and snapshots, to the
// stored spec decoded from it, counting the stored tasks that use it. The
// decoder looks a task's spec bytes up before decoding them: a hit costs a
// hash of the bytes instead of a decode (and no proto.Equal, which costs
// three decodes). Equal bytes decode to equal specs, so sharing is
// invisible; equal specs encoded differently just are not shared.
type specRegistry struct {
	byKey  map[string]*specRef
	bySpec map[*api.TaskSpec]*specRef
	// fresh lists specs registered while decoding the current entry or
	// snapshot; those no task retained are dropped by sweep.
	fresh []*specRef
}

type specRef struct {
	key  string
	spec *api.TaskSpec
	refs int
}

func newSpecRegistry() *specRegistry {
	return &specRegistry{byKey: make(map[string]*specRef), bySpec: make(map[*api.TaskSpec]*specRef)}
}

// lookup returns the registered spec encoded as key, or nil. It does not
// allocate.
func (g *specRegistry) lookup(key []byte) *api.TaskSpec {
	if r := g.byKey[string(key)]; r != nil {
		return r.spec
	}
	return nil
}

// register records spec, just decoded from key, with no user yet.
func (g *specRegistry) register(key []byte, spec *api.TaskSpec) {
	r := &specRef{key: string(key), spec: spec}
	g.byKey[r.key] = r
	g.bySpec[spec] = r
	g.fresh = append(g.fresh, r)
}

func (g *specRegistry) retain(spec *api.TaskSpec) {
	if r := g.bySpec[spec]; r != nil {
		r.refs++
	}
}

func (g *specRegistry) release(spec *api.TaskSpec) {
	if r := g.bySpec[spec]; r != nil {
		if r.refs--; r.refs <= 0 {
			g.drop(r)
		}
	}
}

func (g *specRegistry) drop(r *specRef) {
	if g.byKey[r.key] == r {
		delete(g.byKey, r.key)
	}
	if g.bySpec[r.spec] == r {
		delete(g.bySpec, r.spec)
	}
}

// sweep drops the specs registered since the last sweep that no task
// retained (their proposal was rejected, or failed to decode further on).
func (g *specRegistry) sweep() {
	for _, r := range g.fresh {
		if r.refs <= 0 {
			g.drop(r)
		}
	}
	clear(g.fresh)
	g.fresh = g.fresh[:0]
}

// len is the number of registered specs.
func (g *specRegistry) len() int { return len(g.byKey) }
