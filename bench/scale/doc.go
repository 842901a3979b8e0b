// Package scale measures how the simulator's cost grows with the size of
// the simulated cluster: five managers and N workers, every worker
// heartbeating to the leader and running one task of a global service,
// run through the scenario runner for ten virtual minutes, as
// `swarmsim run` runs a file. It reports wall time, events per second,
// the virtual/wall ratio and peak memory.
//
// It lives outside engine/ because it reads the wall clock and the Go
// runtime's memory statistics. What it must never do: run two simulations
// at once in one process, or measure memory in a process that ran other
// work first when the figure is meant to be clean (the suite runs each
// size in a child process of its own).
package scale
