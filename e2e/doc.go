// Package e2e holds the end-to-end tests of real mode: swarmd clusters as
// containers on the local Docker (realnet/realcluster), their tasks as
// real containers of the FROM-scratch test workload, and scenario files
// run through scenarios.RunReal as `swarmsim run --real` runs them.
//
// Every test skips with one line when no Docker daemon answers. The
// package builds one image set for all its tests, and removes every
// container, network and image it created (all labelled with their run).
// Tests never assert on wall-clock speed: waits are bounded only so that
// a broken cluster fails instead of hanging.
package e2e
