package env

import "time"

// NodeID names a node for the whole life of a cluster ("m1", "w17" in the
// simulator; a random identifier in real mode).
type NodeID string

// Loop runs functions on a node's single event loop. Everything a node does
// runs on its loop, one function at a time, so engine code needs no locks.
type Loop interface {
	// Post queues f to run on the loop after the current function returns.
	// It never runs f synchronously.
	Post(f func())
}

// Timer is a pending AfterFunc.
type Timer interface {
	// Stop cancels the timer. It reports whether the call stopped it before
	// it fired.
	Stop() bool
}

// Clock is a node's view of time. In the simulator it is virtual time (and
// may be skewed per node); in real mode it is the wall clock.
type Clock interface {
	// Now is the node's wall clock: for timestamps other nodes read, and
	// certificate validity. It may be skewed, and may step.
	Now() time.Time
	// Monotonic is how long the node's clock has run, from a source that
	// a step of the wall clock (NTP, a skewed machine in the simulator)
	// does not move: timeouts and grace periods measure with it.
	Monotonic() time.Duration
	// AfterFunc runs f on the node's loop once d has passed.
	AfterFunc(d time.Duration, f func()) Timer
}

// Rand is a node's source of randomness. The simulator backs it with a
// seeded stream per node and purpose; real mode with crypto-quality
// randomness.
type Rand interface {
	// Int63n returns a uniform value in [0, n). It panics if n <= 0.
	Int63n(n int64) int64
	// Float64 returns a uniform value in [0, 1).
	Float64() float64
	// Read fills p with random bytes; it never fails.
	Read(p []byte) (int, error)
}

// Role is what a node may do in the cluster. It travels with every message
// as part of the sender's identity and is what authorization checks.
type Role uint8

const (
	RoleNone    Role = iota // no identity yet (a joiner presenting a token)
	RoleWorker              // runs tasks, talks to the dispatcher
	RoleManager             // votes in raft, serves the control API
)

func (r Role) String() string {
	switch r {
	case RoleWorker:
		return "worker"
	case RoleManager:
		return "manager"
	default:
		return "none"
	}
}

// Peer is the authenticated identity of a message's sender: in real mode
// what its TLS client certificate says, in the simulator what the simulated
// certificate says.
type Peer struct {
	ID   NodeID
	Role Role
	// Org is the cluster the peer's certificate belongs to; empty when the
	// peer presented no certificate.
	Org string
}

// Message is anything one node sends another. Method names the RPC the
// message stands for ("/swarm.Raft/Step"); authorization, metrics and
// traces key on it. The simulator passes messages by pointer without
// copying, so a sender must not change a message after Send and a receiver
// must not change one it received.
type Message interface {
	Method() string
}

// Transport sends messages to other nodes. Send never blocks and never
// fails: a message may be lost, delayed, duplicated or reordered, and the
// protocols above must cope.
type Transport interface {
	Send(to NodeID, m Message)
}

// Handler receives a node's inbound messages, on the node's loop.
type Handler func(from Peer, m Message)

// Env is everything a node's engine gets from its world.
type Env struct {
	ID        NodeID
	Loop      Loop
	Clock     Clock
	Rand      Rand
	Transport Transport
	Storage   Storage
	Executor  Executor
}
