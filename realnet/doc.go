// Package realnet is the real world the engine runs in: a wall-clock event
// loop per node (Loop), crypto-quality randomness (Rand), the gRPC
// transport between nodes (Transport) and the servers of the control API
// (ControlServer, DaemonServer). realnet/wal (the disk) and realnet/docker
// (the containers) complete env.Env.
//
// What it owns:
//
//   - The loop: everything a node's engine does runs on one goroutine that
//     drains a queue; gRPC handlers, timers, disk syncs and container
//     events only Post into it, and answers come back through callbacks.
//   - The wire: one Envelope{method, payload} per message over one
//     long-lived gRPC stream per peer and direction. Payloads keep the
//     engine's own encodings (protobuf for engine/api, raft's
//     Message.Marshal for raft); a table keyed by method decodes them.
//   - Back-pressure: Send never blocks. Each peer has a bounded queue
//     that drops its oldest message when full (see Transport), and
//     inbound messages waiting for the loop are bounded too: a full loop
//     stops reading streams, so gRPC flow control pushes back on senders,
//     whose queues then drop. Memory stays bounded whatever a peer does.
//   - Identity and authorization: with TLS the peer is who its verified
//     certificate says (NodeTLS: the cluster CA's, where a peer without
//     one is a joiner, RoleNone, answered on its own stream); without TLS
//     (loopback only) it is who the hello headers claim, admitted by an
//     Admitter (the join-token check) and marked unauthenticated
//     (Peer.Org empty). Every inbound message and every unary RPC goes
//     through one Authorizer keyed by method name.
//   - The address book: node ID to address, from raft members, the join
//     target, every stream's hello and the managers' address messages.
//
// What it must never do: block the loop (no I/O on it, no lock held
// across a network call), hand the engine a message before decoding and
// authorizing it, or listen beyond loopback without TLS.
package realnet
