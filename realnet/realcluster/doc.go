// Package realcluster runs a swarmsim cluster for real: every node is a
// swarmd container (an image built FROM scratch from a static build of
// cmd/swarmd), started through testcontainers-go on Docker networks this
// package creates, with the Docker socket mounted so that each node's
// tasks run as real containers of images built the same way (the test
// workload). It is what `swarmsim run --real` and the end-to-end tests
// stand on.
//
// Network layout. Every node sits on one control network, which only the
// process driving the cluster uses (the nodes never dial each other's
// addresses there: peers reach each other by name, and the names are
// aliases on the other networks only). Nodes talk to each other over
// either one shared network, or, when the run needs partial partitions,
// one small network per pair of nodes: disconnecting a container from a
// network cuts it from everyone on it, so a cut between two nodes needs a
// network of their own. Docker's inter-bridge isolation drops anything
// routed between networks, and the transport's gRPC keepalives notice
// cut streams. Subnets are small and explicit (a /24 for control, /29 per
// pair) from a /20 of 10.0.0.0/8 that no Docker network or host address
// overlaps.
//
// The nodes run with --tls off and listen beyond loopback, which swarmd allows only
// with --insecure-private-network: acceptable on networks created here,
// which carry nothing else.
//
// What it must never do: touch a container, network or image it did not
// create. Everything it creates carries the label LabelRun with the run's
// ID; task containers carry the executor's node label, and only those of
// this run's nodes are removed.
package realcluster
