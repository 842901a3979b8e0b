// Package raftbench measures committed writes through the whole store
// path of simulated managers, and raw raft/v3 RawNodes beside it.
//
// The store path is what a client's write takes: Manager.KVWrite on the
// leader has its store build the write (Store.WriteKV: one key needs no
// transaction) and encode it, and proposes it to the raft driver, which
// persists it on the simulated disk, replicates it over the simulated
// network, and applies it to the store of every manager. The
// managers are engine/manager values on a sim/cluster, so the same code
// runs as in a scenario. Raw is etcd raft's RawNode alone, over
// MemoryStorage, with messages handed from node to node in memory and one
// entry per write: the floor any driver is compared with.
//
// Two kinds of figure come out. Virtual figures (writes per simulated
// second, commit latency) are properties of the protocol under the
// simulated network and disk latencies; the simulator charges no time for
// computation, so batching cannot change them. Wall figures (writes per
// second of real time) are the cost of the code: every manager, the
// network and the disk simulated on one goroutine.
//
// It lives outside engine/ because it reads the wall clock. What it must
// never do: drive the managers differently from a scenario (it uses the
// same cluster builder and the same KVWrite), or run two simulations at
// once (crypto/rand.Reader is swapped process-wide while one runs).
package raftbench
