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
// case they are promoted. The node's CA credentials are meta values too
// (engine/ca), unsealed, so that a locked manager still has them.
//
// Security (Options.Security): by default every connection is mutual TLS
// 1.3 on the cluster CA's certificates (realnet.NodeTLS), every message
// is authorized by engine/ca's table and every RPC by authorizeRPC
// (local.go: the same table, the daemon's own RPCs, removed nodes and
// other clusters refused, nothing while locked). The CLI reaches the
// daemon on DIR/swarmd.sock, owner only, as the node itself; Unlock and
// Leave are served there only.
//
// What it must never do: touch engine state off the node's loop (every
// engine call goes through Loop.Post, Do or Call), listen beyond loopback
// without TLS, serve anything but Status and Unlock while locked, or log a
// join token or an unlock key.
package daemon
