// Package manager composes one manager node's control plane: its raft
// member (engine/raft), its copy of the store (engine/store), the
// leader-only subsystems (allocator, scheduler, orchestrator, dispatcher)
// and the calls a manager serves (the control API, the clients' key
// space, raft membership).
//
// It owns the leadership lifecycle: when raft says this manager became
// leader (and has applied everything committed before its term), the
// subsystems start in dependency order; when leadership is lost they stop
// in reverse, before anything else runs on the loop, so that a deposed
// leader never writes as one.
//
// It must never do I/O, start goroutines, read wall time or draw global
// randomness (see CONTRIBUTING.md): it runs on the node's loop through
// engine/env like the rest of the engine.
package manager
