package scale

import (
	"regexp"
	"time"

	"github.com/swarmsim/swarmsim/bench/cpuprof"
)

// Stages are the parts a scale run's CPU profile is split into: each
// sample goes to the first stage found walking its stack from the leaf,
// so a stage holds its own code and what it calls that no other stage
// claims (its allocations, map lookups, protobuf coding).
var Stages = []cpuprof.Stage{
	{Name: "dispatcher (sessions, heartbeats, status)", Pattern: regexp.MustCompile(`swarmsim/engine/dispatcher\.`)},
	{Name: "agent", Pattern: regexp.MustCompile(`swarmsim/engine/agent\.`)},
	{Name: "store (apply, reads, transactions)", Pattern: regexp.MustCompile(`swarmsim/engine/store\.`)},
	{Name: "raft (driver and etcd raft)", Pattern: regexp.MustCompile(`swarmsim/engine/raft\.|^go\.etcd\.io/raft/v3`)},
	{Name: "orchestrator, scheduler, allocator", Pattern: regexp.MustCompile(`swarmsim/engine/(orchestrator|scheduler|allocator)\.`)},
	{Name: "certificates and admission", Pattern: regexp.MustCompile(`swarmsim/engine/ca\.`)},
	{Name: "node and manager composition", Pattern: regexp.MustCompile(`swarmsim/engine/`)},
	{Name: "scenario runner and checkers", Pattern: regexp.MustCompile(`swarmsim/scenarios\.`)},
	{Name: "cluster builder (sim/cluster)", Pattern: regexp.MustCompile(`swarmsim/sim/cluster\.`)},
	{Name: "simulated network", Pattern: regexp.MustCompile(`swarmsim/sim\.\(\*(Endpoint|Network)\)`)},
	{Name: "simulated containers", Pattern: regexp.MustCompile(`swarmsim/sim\.\(\*Executor\)`)},
	{Name: "simulator kernel (event heap, timers)", Pattern: regexp.MustCompile(`swarmsim/sim\.`)},
	{Name: "garbage collector (background)", Pattern: regexp.MustCompile(`^runtime\.(gcBgMarkWorker|bgsweep|bgscavenge)`)},
}

// Profile runs like Run under the CPU profiler and splits the CPU time
// among Stages. Its wall time includes the profiler's overhead: use Run
// for the figures.
func Profile(workers int, virtual time.Duration, seed uint64) (Result, []cpuprof.Share, error) {
	var res Result
	shares, err := cpuprof.Record(Stages, func() error {
		var err error
		res, err = Run(workers, virtual, seed, nil)
		return err
	})
	return res, shares, err
}
