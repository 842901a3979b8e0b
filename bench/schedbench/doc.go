// Package schedbench measures the scheduler: it builds a store holding
// ready nodes and one service's pending tasks, starts a scheduler over it
// and times the placement of every task, decisions committed through the
// store's real codec and Apply (a synchronous loopback proposer).
//
// It lives outside engine/ because it reads the wall clock and the Go
// runtime's allocation counters; the scheduler's Go benchmarks
// (engine/scheduler) and `swarmsim bench scheduler` both drive it.
//
// What it must never do: time anything but the placement (building the
// store is setup, reported apart), or drive the scheduler differently from
// the manager: it uses the same New and Start, the same store and codec.
package schedbench
