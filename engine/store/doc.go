// Package store is the orchestrator's in-memory, indexed store of api
// objects (nodes, services, tasks, networks, the cluster, secrets, configs
// and client keys), whose every mutation travels through raft.
//
// What it owns:
//
//   - The objects, indexed by ID for every kind; by name for services,
//     networks, secrets and configs (unique) and nodes (not unique, so that
//     a removed node's tombstone does not block a node that rejoins under the
//     same name); tasks by service, by node and by (service, slot). Every
//     query answers in ID order from per-index ordered sets, so its cost
//     follows its result and no query sorts a whole kind. (Unassigned tasks
//     are the exception: not indexed by node, they are found by a scan.)
//   - Transactions: Update runs a function against a Tx that records creates,
//     updates and deletes (reads in the Tx see its own writes), encodes them
//     as one api.Proposal and hands it to a Proposer (the raft driver, or a
//     Loopback). Optimistic concurrency: UPDATE and DELETE name the version
//     (meta.version, the raft index of the last change) they were based on.
//   - The state machine: Apply decodes a committed proposal and applies all of
//     its actions or none; Snapshot and Restore move the whole content as one
//     deterministic api.StoreSnapshot.
//   - Watches: callbacks that see every applied change, in order.
//   - Memory at scale: stored tasks with equal specs share one spec, found by
//     its encoded bytes when an entry or snapshot is decoded; the hot compact
//     actions (task status updates, task assignments) are decoded by hand
//     without allocating messages.
//
// What it must never do: start goroutines, block, read a clock or draw
// randomness while applying (time travels in Proposal.timestamp, IDs in the
// objects), let map iteration order reach an answer, an event or a
// snapshot, or import go.etcd.io/raft or engine/raft (the raft driver meets
// the store through the Proposer interface and the Apply, Snapshot and
// Restore methods).
//
// Objects are immutable once stored. Readers get pointers they must never
// modify, and may keep them: a later change stores a new object. Writers hand
// a Tx new objects (api's ShallowCopy helps) and must not modify them after.
// Objects enter the store only by decoding committed proposals, so a writer's
// pointer is never the stored one. Client keys are the exception inside:
// a lone write of a key that no watcher reads updates the stored KV in
// place, on every manager, instead of allocating one per write; so no
// stored KV leaves the store, and readers (and watchers) get copies, which
// they may keep as they would any object.
//
// Everything runs on the node's single event loop: the store is not safe for
// use from several goroutines, and needs no locks.
package store
