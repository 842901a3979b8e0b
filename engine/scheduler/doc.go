// Package scheduler is the leader-only subsystem that places pending tasks
// on nodes.
//
// What it owns:
//
//   - The decision of which node runs a task: a PENDING task with
//     desired_state <= RUNNING and no node gets one through
//     store.Tx.AssignTask; a PENDING task that already names its node
//     (a global service's, placed by the orchestrator) is checked against
//     that node and moved to ASSIGNED there.
//   - An in-memory view of every node's free resources, host ports and
//     per-service task counts, kept from the store's watch events and
//     counting assignments still in flight as reservations, so that two
//     batches never hand out the same capacity.
//   - The filters (ready and active node, resources, placement
//     constraints, max replicas per node, host-mode published ports), the
//     spread preferences and the least-loaded order that break ties, and
//     the back-off of nodes where a service keeps failing.
//   - pending_reason on the tasks it cannot place, written only when it
//     changes.
//
// How it works, in short: watch events queue the tasks that became
// schedulable and mark when capacity appeared; one function Posted to the
// loop per turn takes everything queued, groups identical tasks (same
// service, same spec), places each group in one pass over the nodes (least
// loaded first, level by level of the service's count on each node;
// water-filling across spread branches) and commits the decisions in as
// few proposals as possible. The events of the applied proposal confirm
// each assignment, in the order proposed, so a cursor over the batches in
// flight finds each one's task without hashing its ID; an assignment that
// did not take goes back to the queue.
//
// What it must never do: import the orchestrator, allocator or dispatcher
// (they meet in the store), write to the store from inside a watch
// callback, start a write after Stop, read wall time or let map order
// reach a decision. A task it cannot place stays PENDING; it is retried
// when nodes join or change or resources free up, never in a busy loop.
package scheduler
