// Package dispatcher is the leader's end of the worker protocol
// (engine/api/dispatcher.proto): it keeps a session per node, hears the
// nodes' heartbeats, sends each node the tasks the scheduler assigned to it
// and writes the status its agent reports into the store.
//
// What it owns:
//
//   - Sessions, in memory on the leader only. A session request from a
//     node creates (or, for a duplicate, repeats) its session and writes
//     its api.Node READY with the description, address and, for a new
//     node, the role its certificate gives it.
//   - Liveness. Heartbeats only stamp a last-seen time (O(1), no timer, no
//     raft); a periodic sweep over a ring of expiry buckets finds the
//     sessions that missed DownAfter periods and writes their nodes DOWN.
//     Nodes the store says READY when this dispatcher starts (a new
//     leader) get twice that grace to find it.
//   - Assignments. A store watch routes each task change to its node's
//     session in O(1); changes are coalesced per session (newest version
//     of each task) and flushed once per loop turn as one sequenced,
//     incremental message. The whole set goes only as a session's first
//     message, after a resync request, or after the store was restored
//     from a snapshot.
//   - Secrets and configs (secrets.go). Each message carries, with the
//     tasks, the secrets and configs the node's set started to use (all
//     of them in a whole set) and the IDs of those it stopped using, so a
//     node holds a secret exactly while one of its tasks references it.
//   - Status intake. Agents' reports are collected for a short window (or
//     up to a batch size) and written as one transaction of compact
//     TaskStatusUpdates; each report is acknowledged once the transaction
//     applied, so the agent stops resending it.
//   - Node writes (READY, DOWN) are batched the same way, one transaction
//     in flight at a time so that one never conflicts with the one before.
//
// What it must never do: import the orchestrator, scheduler or allocator
// (they meet in the store: the orchestrator reacts to a node going DOWN),
// put heartbeats through raft or arm a timer per heartbeat or session,
// write a task's status backwards or for a task of another node, send a
// node tasks that are not its own or a secret none of its tasks uses, log
// secret data, let Go map order reach a message or a
// proposal, or write anything after Stop (callbacks of writes in flight are
// ignored). Like all of engine/, it does no I/O and runs on its node's
// single loop.
//
// On a follower (a Dispatcher that is not started, or stopped) every
// request is answered with a redirect naming the leader.
package dispatcher
