// Package controlapi is the cluster's control API: the one set of calls
// that create, change and read services, tasks, nodes, secrets, configs and
// networks. The simulator calls it directly; in real mode the gRPC Control
// service carries the same calls (Methods lists their RPC names, which the
// security layer authorizes by).
//
// What it owns:
//
//   - Request checks, before any write: specs pass engine/api's
//     validation, references to secrets, configs and networks given by name
//     are resolved to IDs (and must exist), published ingress ports must be
//     free, names unique.
//   - Update semantics: optimistic concurrency on the version a caller
//     read (meta.version), spec_version and previous_spec bookkeeping, the
//     update status that starts a rolling update or a rollback, the safety
//     checks on node demotion and removal,
//     and refusing to remove a secret, config or network still in use.
//   - Errors: every failure wraps one of ErrNotFound, ErrInvalidArgument,
//     ErrConflict or ErrFailedPrecondition (gRPC's codes of the same
//     names), or is a store or proposer error wrapped with context; the
//     message is for users ("service \"web\" not found").
//
// Reads answer at once from the local store. On a follower that store may
// lag the leader's by the entries not yet applied there: a read right
// after a write through another manager may not see it. Writes go through
// store.Update: the raft layer forwards a follower's proposal to the
// leader, and done is called once the change applied on this node (so a
// read in done sees it) or failed. done is called exactly once, on the
// node's loop, possibly before the method returns (a request refused by
// its checks).
//
// Times in objects (created, updated, update_status.started_at) come from
// the transaction's timestamp, and
// IDs from the node's env.Rand, so the simulator replays them.
//
// What it must never do: return or log secret data (listings and reads of
// secrets carry metadata only), write through an object read from the
// store, change raft membership (promotion and demotion only set a node's
// desired role; the manager layer acts on it), or start goroutines, block
// or read the wall clock.
package controlapi
