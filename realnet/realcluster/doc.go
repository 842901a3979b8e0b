// Package realcluster runs a swarmsim cluster for real: every node is a
// swarmd container (an image built FROM scratch from a static build of
// cmd/swarmd), started through testcontainers-go on Docker networks this
// package creates, with the Docker socket mounted so that each node's
// tasks run as real containers of images built the same way (the test
// workload). It is what `swarmsim run --real` and the end-to-end tests
// stand on.
//
// Network layout. Every node's container is created on one control
// network of its own run, on which nothing depends (peers reach each
// other by name, and the names are aliases on the other networks only;
// the driving process talks to each node through its local socket). Nodes talk to each other over
// either one shared network, or, when the run needs partial partitions,
// one small network per pair of nodes: disconnecting a container from a
// network cuts it from everyone on it, so a cut between two nodes needs a
// network of their own. Docker's inter-bridge isolation drops anything
// routed between networks, and the transport's gRPC keepalives notice
// cut streams. Subnets are small and explicit (a /24 for control, /29 per
// pair) from a /20 of 10.0.0.0/8 that no Docker network or host address
// overlaps.
//
// Security. The nodes run as swarmd runs by default: the first creates
// the cluster's root CA, the others join with a token, and every
// connection between them is mutual TLS on the CA's certificates. The
// driving process holds no certificate: each node's data directory is a
// directory of this process's, mounted at /data, and swarmd runs as this
// process's user (with the Docker socket's group), so the node's
// owner-only local socket (DATA_DIR/swarmd.sock) is this process's to
// use, as the swarmd CLI uses it on a node's machine.
//
// What it must never do: touch a container, network or image it did not
// create. Everything it creates carries the label LabelRun with the run's
// ID; task containers carry the executor's node label, and only those of
// this run's nodes are removed.
package realcluster
