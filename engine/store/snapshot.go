package store

import (
	"fmt"

	"github.com/swarmsim/swarmsim/engine/api"
)

// Snapshot returns the store's whole content as an encoded
// api.StoreSnapshot, every kind in ID order. Equal content gives identical
// bytes (deterministic encoding: map fields sorted), whatever the history.
func (s *Store) Snapshot() ([]byte, error) {
	c := s.c
	snap := &api.StoreSnapshot{
		Nodes:    c.nodes.all.list(),
		Services: c.services.all.list(),
		Tasks:    c.tasks.all.list(),
		Networks: c.networks.all.list(),
		Clusters: c.clusters.all.list(),
		Secrets:  c.secrets.all.list(),
		Configs:  c.configs.all.list(),
		Kvs:      c.kvs.all.list(),
	}
	data, err := marshalOptions.Marshal(snap)
	if err != nil {
		return nil, fmt.Errorf("store: encode snapshot: %w", err)
	}
	return data, nil
}

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
	s.c = c
	s.applied = maxVersion
	s.stats.Restores++
	if len(s.watchers) > 0 {
		s.dispatch([]Event{{Action: ActionRestore}})
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
