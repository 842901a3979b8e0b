// Package rpc holds the gRPC services of real mode, generated from the
// .proto files beside this file (`make proto`; the generated code is
// committed): Peer, the node-to-node streams that carry engine messages in
// envelopes; Control, the control API the swarmd CLI calls, one RPC per
// engine/controlapi call; and Daemon, a node's own administration.
//
// This package is generated code and its .proto sources only: the
// behaviour lives in realnet (transport, servers) and cmd/swarmd.
package rpc
