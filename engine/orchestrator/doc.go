// Package orchestrator is the leader-only subsystem that turns declared
// services into tasks and keeps them so.
//
// What it owns, through the store:
//
//   - Task creation: a new task (status NEW, desired RUNNING, or READY while
//     a restart delay runs) for every replicated slot that lacks one, every
//     eligible node of a global service, and every job run still owed.
//   - Task shutdown: desired_state SHUTDOWN for tasks that are replaced,
//     evicted from a drained or no-longer-matching node, or lost with a node
//     that went down; REMOVE for tasks of a removed slot (scale down), of an
//     earlier job iteration, or of a deleted service. Status ORPHANED for a
//     task whose node was removed, since no agent will ever report it.
//   - Restart policies (condition, delay, max_attempts within a window) and
//     rolling updates and rollbacks (parallelism, delay, order, monitor,
//     failure action), with the service's update_status and job_status.
//   - The task reaper: per slot (per node for global services) at most the
//     cluster's task_history_limit finished tasks are kept; tasks of removed
//     slots and services are deleted once they no longer run, and a service
//     marked pending_delete is deleted once its tasks are gone.
//
// How it works: Start reads the whole store once and reconciles every
// service; from then on a store watch marks what changed (a service, a slot,
// a node) and one pass per loop turn reconciles what is marked, in sorted
// order, and writes its decisions in a few transactions. Decisions read only
// the store and the time the pass was given, so they replay with the seed;
// what the orchestrator keeps in memory (rolling-update progress, restart
// delays it set, replicated-job counters) is rebuilt from the store when a
// new leader starts it. A task's status change costs the work of its slot
// (its history), never a scan of the service or of all tasks.
//
// What it must never do: import the scheduler, allocator or dispatcher
// (they meet in the store); place tasks on nodes (only global tasks are
// pinned to their node at creation); move a task's status backwards or
// write a status other than ORPHANED; write through an object it read from
// the store; start a write from inside a watch callback; let map order reach
// a decision; or write anything after Stop.
package orchestrator
