package raftbench

import (
	"regexp"

	"github.com/swarmsim/swarmsim/bench/cpuprof"
)

// StoreStages are the parts of the store path a CPU profile is split
// into. A sample goes to the first stage found walking its stack from the
// leaf, so each stage holds the time spent in its code and below it (its
// allocations and the GC assists they cost, its protobuf coding) but not
// in the stages above: the store's Apply, reached from the raft driver,
// counts as "store apply", not "raft driver"; protobuf decoding inside it
// counts as "protobuf coding", the first stage.
var StoreStages = []cpuprof.Stage{
	{Name: "protobuf coding", Pattern: regexp.MustCompile(`^google\.golang\.org/protobuf/`)},
	{Name: "store apply (decode, index, watches), every manager", Pattern: regexp.MustCompile(`swarmsim/engine/store\.\(\*Store\)\.Apply$`)},
	// A KV write is built and encoded by Store.WriteKV (its tries by
	// pendingKV.propose); any other write by a transaction (Update).
	{Name: "store write and encoding, leader", Pattern: regexp.MustCompile(`swarmsim/engine/store\.(\(\*Store\)\.(Update|WriteKV)|\(\*pendingKV\)\.propose)$`)},
	{Name: "manager KVWrite and callbacks", Pattern: regexp.MustCompile(`swarmsim/engine/manager\.`)},
	{Name: "etcd raft", Pattern: regexp.MustCompile(`^go\.etcd\.io/raft/v3`)},
	// Sealing raft entries for the disk (XChaCha20-Poly1305, engine/crypt)
	// runs under the raft driver; it is a stage of its own, since raw raft
	// writes no disk and seals nothing.
	{Name: "encryption at rest (engine/crypt)", Pattern: regexp.MustCompile(`swarmsim/engine/crypt\.`)},
	{Name: "raft driver (engine/raft)", Pattern: regexp.MustCompile(`swarmsim/engine/raft\.`)},
	{Name: "simulated network", Pattern: regexp.MustCompile(`swarmsim/sim\.\(\*(Endpoint|Network)\)`)},
	{Name: "simulated disk", Pattern: regexp.MustCompile(`swarmsim/sim\.\(\*(Disk|image)\)`)},
	{Name: "simulator kernel", Pattern: regexp.MustCompile(`swarmsim/sim\.`)},
	{Name: "benchmark driver", Pattern: regexp.MustCompile(`swarmsim/bench/`)},
	{Name: "garbage collector (background)", Pattern: regexp.MustCompile(`^runtime\.(gcBgMarkWorker|bgsweep|bgscavenge)`)},
}

// Profile runs n writes under the CPU profiler and splits the CPU time
// among StoreStages.
func (s *StoreCluster) Profile(n int) ([]cpuprof.Share, error) {
	return cpuprof.Record(StoreStages, func() error {
		_, err := s.Write(n)
		return err
	})
}

// Profile runs n raw writes under the CPU profiler and splits the CPU
// time among StoreStages (only etcd raft, the driver and the GC apply).
func (r *RawCluster) Profile(n int) ([]cpuprof.Share, error) {
	return cpuprof.Record(StoreStages, func() error {
		_, err := r.Write(n)
		return err
	})
}
