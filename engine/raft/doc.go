// Package raft drives go.etcd.io/raft/v3's RawNode on a node's single event
// loop: it turns proposals into log entries, persists each Ready through
// env.Storage before anything that depends on it leaves the node, applies
// committed entries to a StateMachine, takes snapshots and compacts the log,
// serves linearizable reads (ReadIndex) and changes cluster membership.
//
// What it owns:
//
//   - the Ready loop, in the order raft requires: stage entries, hard state
//     and snapshot, Sync, and only when the sync completes send messages,
//     apply committed entries and Advance. No Ready is taken while a sync is
//     outstanding.
//   - proposal bookkeeping: every proposal carries a small header (an
//     incarnation number and a sequence number) so the node that made it can
//     match the applied entry to its waiter, whether it was the leader or a
//     follower whose proposal raft forwarded.
//   - the member list, mapping raft IDs to env.NodeIDs and addresses; it
//     travels in ConfChange contexts and inside every snapshot.
//
// What it must never do: start goroutines, use channels, select or locks,
// read the wall clock, draw global randomness, touch files or sockets, or
// block. Time comes from env.Clock (ticks are AfterFunc timers), randomness
// from env.Rand and the clock, messages leave through env.Transport and come
// in through Node.Step, durability comes from env.Storage. It never uses
// raft.Node, which starts goroutines. raft itself draws election timeouts
// from crypto/rand.Reader; the simulator swaps that reader while a
// simulation is active, which is why tests call sim.Kernel.Activate.
//
// Nothing observable may depend on Go map iteration order: every walk over
// a map that reaches a callback, a message or a snapshot is sorted first.
//
// Only this package in engine/ imports go.etcd.io/raft. The store implements
// StateMachine structurally and does not import this package.
package raft
