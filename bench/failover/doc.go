// Package failover measures how long a simulated swarm takes to recover
// from a crash, in virtual time: from a leader crash to a new leader that
// accepts writes, and from a worker crash to its tasks running on other
// workers. Each trial is a fresh simulated cluster (a scenario file's
// cluster, network, disk, executor and services) with its own seed.
//
// The leader trials follow the Raft paper's leader-election experiment
// (Ongaro and Ousterhout, 2014, §9.3): five managers, 1ms ticks, the
// leader crashed at a uniformly random point of its heartbeat interval,
// which is half the minimum election timeout; just before the crash the
// leader takes a write, so that when it dies the survivors' logs may
// differ and some of them cannot win an election.
//
// It lives outside engine/ because it drives whole simulations. What it
// must never do: measure in wall time (the figures are properties of the
// protocol, the same on any machine), or run two trials at once in one
// process (crypto/rand.Reader is swapped process-wide while one runs).
package failover
