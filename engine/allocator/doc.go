// Package allocator is the leader's allocator: it gives a task what it
// needs before it can be scheduled, then moves it from NEW to PENDING.
//
// What it owns:
//
//   - Network attachments: one address per network the task attaches to,
//     from that network's subnet, recorded in task.networks. A task whose
//     spec names no network is attached to the ingress network (named
//     IngressNetworkName); so is every task of a service that publishes
//     ports in ingress mode. The allocator creates the ingress network at
//     Start (subnet DefaultIngressSubnet, or the next /12 of 10.0.0.0/8
//     that overlaps no network) when no network holds the name.
//   - Service endpoints: a virtual IP per service per network its tasks
//     attach to, and a published port for every ingress-mode port of its
//     spec (from DynamicPortStart-DynamicPortEnd when the spec asks for
//     port 0; an explicit port is honoured unless another service holds
//     it). The endpoint is recorded in service.endpoint and copied into
//     each task. Host-mode ports are the scheduler's business and pass
//     through untouched.
//   - The pools: a bitmap per network and per protocol, so nothing is
//     ever held twice, with O(1) amortized allocation. An address goes
//     back to its pool when its task is deleted or its status moves past
//     RUNNING; a service's virtual IPs and ports when it is deleted or an
//     update of its endpoint commits without them. Allocations live only
//     in the store's objects: Start rebuilds the pools from them.
//
// Tasks move in batches (Config.BatchSize per proposal, at most
// Config.MaxInFlight proposals waiting for commit), as tx.Update of a
// ShallowCopy with the networks, the endpoint and a PENDING status. A
// task that cannot be allocated (pool exhausted, port taken, network
// missing) stays NEW with a status message saying why, and is tried again
// when the resource it lacks is freed or created.
//
// Safety rests on two rules. Every resource a proposal carries is held in
// memory before the proposal leaves, and is given back only when the
// store proves it was not committed (a rejected proposal) or its holder
// died; a proposal left in doubt keeps its resources for the next try of
// the same task. And Start must be called once the store holds every
// entry committed before this leader's term (engine/raft's leadership
// signal guarantees it), so that the rebuilt pools hold everything an
// earlier leader allocated.
//
// What it must never do: import the orchestrator, scheduler or dispatcher
// (they meet in the store), write from inside a watch callback (it posts
// a pass to its loop), write after Stop, act on callbacks of writes made
// before Stop, or let map iteration order reach a proposal or a pool.
package allocator
