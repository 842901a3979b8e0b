// Package api defines the orchestrator's objects (nodes, services, tasks,
// networks, the cluster, secrets, configs, client keys) and the store
// mutations that carry them through raft. The types are generated from the
// .proto files beside this one (`make proto`); the same encoding is used for
// raft entries, snapshots and the wire in both worlds.
//
// This package holds data and pure validation only.
package api
