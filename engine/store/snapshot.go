package store

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/swarmsim/swarmsim/engine/api"
)

// Snapshot returns the store's whole content as an encoded
// api.StoreSnapshot, every kind in ID order. Equal content gives identical
// bytes (deterministic encoding: map fields sorted), whatever the history.
//
// Tasks come last, each encoded without its spec, then the spec appended:
// a shared spec is encoded once per snapshot instead of once per task
// (sorting its maps each time). Field order does not change what the bytes
// decode to, and the bytes are still a function of the content alone.
func (s *Store) Snapshot() ([]byte, error) {
	c := s.c
	rest := &api.StoreSnapshot{
		Nodes:    c.nodes.all.list(),
		Services: c.services.all.list(),
		Networks: c.networks.all.list(),
		Clusters: c.clusters.all.list(),
		Secrets:  c.secrets.all.list(),
		Configs:  c.configs.all.list(),
		Kvs:      c.kvs.all.list(),
	}
	head, err := marshalOptions.Marshal(rest)
	if err != nil {
		return nil, fmt.Errorf("store: encode snapshot: %w", err)
	}
	// Two passes over the tasks: sizes first, so the 20 MiB of a 100,000
	// task snapshot are allocated once instead of grown and copied.
	var scratch api.Task
	specs := make(map[*api.TaskSpec][]byte)
	withoutSpec := func(t *api.Task) *api.Task {
		n := t.ShallowCopyInto(&scratch)
		n.Spec = nil
		return n
	}
	total := len(head)
	for t := range c.tasks.all.all() {
		size, err := taskSize(t, marshalOptions.Size(withoutSpec(t)), specs)
		if err != nil {
			return nil, err
		}
		total += protowire.SizeTag(fieldSnapshotTasks) + protowire.SizeBytes(size)
	}
	data := make([]byte, 0, total)
	data = append(data, head...)
	for t := range c.tasks.all.all() {
		noSpec := withoutSpec(t)
		size, _ := taskSize(t, marshalOptions.Size(noSpec), specs)
		data = protowire.AppendTag(data, fieldSnapshotTasks, protowire.BytesType)
		data = protowire.AppendVarint(data, uint64(size))
		if data, err = sizedMarshal.MarshalAppend(data, noSpec); err != nil {
			return nil, fmt.Errorf("store: encode snapshot: task %q: %w", t.Id, err)
		}
		if t.Spec != nil {
			data = protowire.AppendTag(data, fieldTaskSpec, protowire.BytesType)
			data = protowire.AppendBytes(data, specs[t.Spec])
		}
	}
	return data, nil
}

// taskSize is the encoded size of task t as Snapshot writes it, given the
// size of t without its spec; it encodes t's spec into specs once.
func taskSize(t *api.Task, sizeWithoutSpec int, specs map[*api.TaskSpec][]byte) (int, error) {
	if t.Spec == nil {
		return sizeWithoutSpec, nil
	}
	spec, ok := specs[t.Spec]
	if !ok {
		var err error
		if spec, err = marshalOptions.Marshal(t.Spec); err != nil {
			return 0, fmt.Errorf("store: encode snapshot: task %q: %w", t.Id, err)
		}
		specs[t.Spec] = spec
	}
	return sizeWithoutSpec + protowire.SizeTag(fieldTaskSpec) + protowire.SizeBytes(len(spec)), nil
}

// sizedMarshal reuses the size just computed by marshalOptions.Size.
var sizedMarshal = proto.MarshalOptions{Deterministic: true, UseCachedSize: true}

// Restore replaces the store's whole content with a snapshot from
// Snapshot, then tells the watchers (one ActionRestore event). It fails,
// changing nothing, when data does not decode or holds an object without an
// ID, two objects of one kind with one ID, or two holding one unique name.
// Objects may come in any order.
//
// AppliedIndex becomes the highest meta.version in the snapshot: the
// snapshot does not record the index it was taken at.
func (s *Store) Restore(data []byte) error {
	c := newContent()
	snap, err := c.decodeSnapshot(data)
	if err != nil {
		return fmt.Errorf("store: decode snapshot: %w", err)
	}
	var maxVersion uint64
	add := func(o Object) error {
		k, id := KindOf(o), ID(o)
		tbl := c.tables[k]
		if id == "" {
			return objectError(k, id, ErrInvalid)
		}
		if tbl.get(id) != nil {
			return objectError(k, id, ErrExist)
		}
		if err := checkName(k, id, o, tbl.nameHolder); err != nil {
			return err
		}
		if t, ok := o.(*api.Task); ok {
			c.intern(t)
		}
		maxVersion = max(maxVersion, metaVersion(o))
		tbl.put(id, o)
		return nil
	}
	// Services and nodes come before tasks, which share their strings and
	// specs.
	err = addAll(add, snap.Services)
	if err == nil {
		err = addAll(add, snap.Nodes)
	}
	if err == nil {
		err = addAll(add, snap.Tasks)
	}
	if err == nil {
		err = addAll(add, snap.Networks)
	}
	if err == nil {
		err = addAll(add, snap.Clusters)
	}
	if err == nil {
		err = addAll(add, snap.Secrets)
	}
	if err == nil {
		err = addAll(add, snap.Configs)
	}
	if err == nil {
		err = addAll(add, snap.Kvs)
	}
	if err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	c.taskIdx.specs.sweep()
	c.nodeWrites += s.c.nodeWrites + 1
	s.c = c
	s.applied = maxVersion
	s.stats.Restores++
	if len(s.watchers) > 0 {
		s.dispatch([]Event{{Action: ActionRestore}}, KindNone.bit())
	}
	return nil
}

func addAll[T Object](add func(Object) error, objs []T) error {
	for _, o := range objs {
		if err := add(o); err != nil {
			return err
		}
	}
	return nil
}
