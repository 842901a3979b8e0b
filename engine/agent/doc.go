// Package agent runs on every node (managers run tasks too): it keeps a
// session with the leader's dispatcher, runs the tasks assigned to its node
// through env.Executor and reports their status.
//
// What it owns:
//
//   - The session. It knows the managers (from its configuration, then
//     from every session and heartbeat answer), asks one for a session,
//     follows a redirect to the leader, and on silence or refusal tries
//     another with a backoff jittered from env.Rand. It heartbeats at the
//     period the dispatcher gives, jittered, and calls the session dead
//     when no answer came for DownAfter periods.
//   - The assignment set: the first message of a session (or the answer to
//     a resync) is the whole set, later ones are sequenced changes. A gap
//     in the sequence, or a heartbeat answer showing a message it never
//     got, makes it ask for the whole set again.
//   - Each task's life: ACCEPTED, Prepare (PREPARING, READY), Start
//     (STARTING), RUNNING on the executor's event; an exit gives COMPLETE
//     or FAILED, a prepare failure REJECTED, an unhealthy verdict a stop
//     and FAILED. A desired state past RUNNING stops the container within
//     its grace, reports SHUTDOWN and removes it; a task that leaves the
//     set is stopped and removed.
//   - Secrets and configs (secrets.go): held in memory while the set's
//     tasks use them, handed to the executor as ContainerSpec.Files when a
//     task is prepared, forgotten when withdrawn. A task whose secret is
//     missing is rejected rather than run without it.
//   - Status reports: the newest status of each task, batched for a short
//     window and resent until the dispatcher acknowledges it.
//   - Adoption: when it starts, it asks the executor what containers the
//     node has and reconciles them with the first whole set it receives,
//     so an agent that restarts does not restart its tasks.
//
// What it must never do: report a task's state backwards, run a task the
// dispatcher did not assign (unknown containers are stopped and removed
// once a whole set says they are not the node's), stop its tasks because
// no manager answers (they keep running, as in SwarmKit), change a message
// after Send or one it received, let Go map order reach a message or an
// executor call, or log or report secret data. Like all of engine/, it
// does no I/O and runs on its node's single loop.
package agent
