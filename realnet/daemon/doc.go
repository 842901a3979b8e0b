// Package daemon is swarmd's node: it composes one engine node with the
// real world (realnet's loop and transport, realnet/wal on the data
// directory, realnet/docker or a stand-in executor), serves the gRPC
// services (Peer, Control, Daemon) and the HTTP endpoints (/metrics,
// /healthz), and keeps the node's identity across restarts.
//
// A node starts in one of three ways: Init (the first manager: a raft
// group of one, fresh join tokens), Join (a token and a manager's
// address: a worker, or a manager joining raft), or Resume (the data
// directory already holds a node, which carries on as it was; Init and
// Join on such a directory resume too, so that a restarted container
// running the same command comes back).
//
// The data directory holds the WAL (realnet/wal) in DIR/wal: raft state
// and the node's meta values (node ID, raft ID, role, address, join token,
// the managers' addresses). Workers keep a WAL too, for the meta and in
// case they are promoted.
//
// What it must never do: touch engine state off the node's loop (every
// engine call goes through Loop.Post, Do or Call), listen beyond loopback
// without TLS, or log a join token after `init` printed it.
package daemon
