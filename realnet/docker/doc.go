// Package docker runs a node's tasks as Docker containers: it implements
// env.Executor on the Docker Engine API (github.com/moby/moby/client), and
// builds the FROM scratch images of the test workload (cmd/workload) that
// real-mode runs use, since no registry is reachable.
//
// The executor's methods return at once. Docker calls run on goroutines,
// one queue per task so that a task's calls reach the daemon in the order
// they were made; every result reaches the engine through loop.Post. The
// lifecycle (running, exited, health, removed) comes from the daemon's
// event stream filtered to this node's label, so what a container does on
// its own is reported the same way as what the executor asked of it.
//
// It owns the containers labelled swarmsim.node.id=<its node> and never
// touches another: every call that names a container checks its labels
// first. It never logs a task's files (secrets, configs) or environment.
//
// API version: the client (v0.6.2, the version testcontainers-go v0.45
// requires) speaks API 1.40 to 1.56 and negotiates down to the daemon's
// version on its first request; Docker Engine 20.10 answers 1.41. See
// Connect.
package docker
