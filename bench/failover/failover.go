package failover

import (
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/manager"
	"github.com/swarmsim/swarmsim/scenarios"
	"github.com/swarmsim/swarmsim/sim"
	"github.com/swarmsim/swarmsim/sim/cluster"
)

//go:embed default.yaml
var defaultYAML []byte

// DefaultFile names the built-in scenario in messages and reports.
const DefaultFile = "bench/failover/default.yaml"

// DefaultScenario is the cluster the benchmark runs on unless given a
// scenario file: five managers, ten workers, one twenty-replica service.
func DefaultScenario() (*scenarios.Scenario, error) {
	return scenarios.Parse(DefaultFile, defaultYAML)
}

// The Raft paper's leader-election experiment: 1ms ticks and these
// minimum election timeouts (raft draws each node's timeout from
// [T, 2T), as the paper's 12–24ms ... 150–300ms ranges).
var PaperElectionTicks = []int{12, 24, 50, 150}

// PaperTick is the raft tick of the leader trials.
const PaperTick = time.Millisecond

// trialLimit bounds the virtual time a trial may wait for recovery.
const trialLimit = 5 * time.Minute

// benchKey is the key the trials write.
const benchKey = "bench/failover"

// WithElection returns a copy of sc whose managers tick every PaperTick,
// with the given minimum election timeout in ticks and a heartbeat of
// half of it, as in the paper.
func WithElection(sc *scenarios.Scenario, electionTicks int) *scenarios.Scenario {
	c := *sc
	c.Cluster.Raft.Tick = PaperTick
	c.Cluster.Raft.ElectionTicks = electionTicks
	c.Cluster.Raft.HeartbeatTicks = max(1, electionTicks/2)
	return &c
}

// LeaderResult is one leader trial. Times are virtual, from the crash.
type LeaderResult struct {
	Seed          uint64 `json:"seed"`
	ElectionTicks int    `json:"election_ticks"`
	// Offset is when the crash came within the heartbeat interval window
	// (uniform in [0, interval)); WriteLead how long before the crash the
	// leader took its last write.
	Offset    time.Duration `json:"offset_ns"`
	WriteLead time.Duration `json:"write_lead_ns"`
	// Elected: a quorum of managers follows a new leader, which runs the
	// leader's subsystems. Accepted: that leader acknowledged a write.
	Elected  time.Duration `json:"elected_ns"`
	Accepted time.Duration `json:"accepted_ns"`
	// Terms is how many terms the election took (1: the first candidate
	// won).
	Terms  uint64 `json:"terms"`
	Events uint64 `json:"events"`
	// Err is why the trial failed, when it did (the other times are then
	// meaningless); the seed replays it.
	Err string `json:"error,omitempty"`
}

// RunLeaderTrial boots sc's cluster with the given seed, waits until a
// leader has acknowledged a write, has the leader take another write and
// crashes it at a uniformly random point of its heartbeat interval, then
// measures until a new leader acknowledges a write.
func RunLeaderTrial(sc *scenarios.Scenario, seed uint64) (LeaderResult, error) {
	res := LeaderResult{Seed: seed, ElectionTicks: sc.Cluster.Raft.ElectionTicks}
	w, err := open(sc, seed)
	if err != nil {
		return res, err
	}
	defer w.Close()
	k, c := w.Kernel(), w.Cluster()
	rnd := k.NewRand("bench/failover")

	lead, err := settle(w)
	if err != nil {
		return res, fmt.Errorf("failover: seed %d: %w", seed, err)
	}
	oldTerm := lead.Engine.Manager().Raft().Status().Term

	// The crash falls uniformly in a window one heartbeat interval long:
	// heartbeats are periodic, so any such window covers every phase of
	// the interval once. The write goes out up to one disk sync plus one
	// link latency before it, so it may have reached some followers and
	// not others.
	hb := sc.Cluster.Raft.Tick * time.Duration(sc.Cluster.Raft.HeartbeatTicks)
	reach := sc.Cluster.Disk.Sync.Max + sc.Network.Latency.Max
	res.Offset = time.Duration(rnd.Int63n(int64(hb)))
	res.WriteLead = time.Duration(rnd.Int63n(int64(reach) + 1))
	crashAt := k.Now() + reach + res.Offset
	mgr := lead.Engine.Manager()
	lead.Kernel.At(crashAt-res.WriteLead-k.Now(), sim.KindPost, 0, func() {
		mgr.KVWrite(benchKey, "before-crash", func(error) {})
	})
	if !k.RunUntil(crashAt, func() bool { return w.Violation() != nil }) {
		return res, violation(w, seed)
	}
	if err := c.Crash(lead.Name); err != nil {
		return res, fmt.Errorf("failover: seed %d: %w", seed, err)
	}
	ev0 := k.Processed()

	elected, accepted := time.Duration(-1), time.Duration(-1)
	var writing *cluster.Machine
	var lastTry time.Duration = -1
	var newLeader *manager.Manager
	k.RunUntil(crashAt+trialLimit, func() bool {
		if accepted >= 0 || w.Violation() != nil {
			return true
		}
		m, ok := c.Leader()
		if !ok || m.Name == lead.Name || m == writing {
			return false
		}
		if lastTry >= 0 && k.Now()-lastTry < sc.Cluster.Raft.Tick {
			return false // the last try failed just now: wait a tick
		}
		if elected < 0 {
			elected = k.Now() - crashAt
		}
		writing, lastTry, newLeader = m, k.Now(), m.Engine.Manager()
		nm := newLeader
		m.Kernel.Post(func() {
			nm.KVWrite(benchKey, "after-crash", func(err error) {
				switch {
				case err == nil && accepted < 0:
					accepted = k.Now() - crashAt
				case err != nil:
					writing = nil // ask whichever leader is known next
				}
			})
		})
		return false
	})
	res.Events = k.Processed() - ev0
	if w.Violation() != nil {
		return res, violation(w, seed)
	}
	if accepted < 0 {
		return res, fmt.Errorf("failover: seed %d: no new leader acknowledged a write within %s of the crash", seed, trialLimit)
	}
	res.Elected, res.Accepted = elected, accepted
	res.Terms = newLeader.Raft().Status().Term - oldTerm
	return res, nil
}

// open builds sc's world with the given seed and runs the file's steps,
// which set the cluster up (the benchmark's own crash comes after them).
func open(sc *scenarios.Scenario, seed uint64) (*scenarios.SimWorld, error) {
	w, err := scenarios.NewSimWorld(sc, seed, nil)
	if err != nil {
		return nil, fmt.Errorf("failover: seed %d: %w", seed, err)
	}
	if len(sc.Steps) > 0 {
		res := scenarios.NewRunner(sc, w, nil, time.Now).Run(seed)
		if !res.Passed {
			w.Close()
			return nil, fmt.Errorf("failover: seed %d: setting up with %s's steps: %s", seed, sc.File, res.Failure)
		}
	}
	return w, nil
}

// settle runs the world until a leader has acknowledged a write, and
// returns that leader.
func settle(w *scenarios.SimWorld) (*cluster.Machine, error) {
	k, c := w.Kernel(), w.Cluster()
	deadline := k.Now() + trialLimit
	for k.Now() < deadline {
		var lead *cluster.Machine
		k.RunUntil(deadline, func() bool {
			m, ok := c.Leader()
			lead = m
			return ok || w.Violation() != nil
		})
		if w.Violation() != nil || lead == nil {
			break
		}
		mgr := lead.Engine.Manager()
		done, failed := false, false
		lead.Kernel.Post(func() {
			mgr.KVWrite(benchKey, "settle", func(err error) { done, failed = true, err != nil })
		})
		k.RunUntil(deadline, func() bool { return done || w.Violation() != nil })
		if done && !failed && lead.Status == cluster.NodeUp {
			if m, ok := c.Leader(); ok && m == lead {
				return lead, nil
			}
		}
	}
	if v := w.Violation(); v != nil {
		return nil, v
	}
	return nil, fmt.Errorf("no leader acknowledged a write within %s", trialLimit)
}

func violation(w *scenarios.SimWorld, seed uint64) error {
	return fmt.Errorf("failover: seed %d: %w (replay with this seed)", seed, w.Violation())
}

// WorkerResult is one worker trial. Times are virtual, from the crash.
type WorkerResult struct {
	Seed   uint64 `json:"seed"`
	Worker string `json:"worker"`
	// Tasks is how many tasks of replicated services the worker ran.
	Tasks  int           `json:"tasks"`
	Offset time.Duration `json:"offset_ns"` // into the dispatcher's heartbeat period
	// Down: the leader's store marks the worker down. Recovered: every
	// replicated service the worker ran tasks of runs all its replicas
	// again, on other workers.
	Down      time.Duration `json:"down_ns"`
	Recovered time.Duration `json:"recovered_ns"`
	Events    uint64        `json:"events"`
	// Err is why the trial failed, when it did; the seed replays it.
	Err string `json:"error,omitempty"`
}

// pollEvery is how often the worker trial checks convergence before the
// crash (it is only a start condition, not a measured time).
const pollEvery = 10 * time.Millisecond

// RunWorkerTrial boots sc's cluster with the given seed, waits until its
// services converge, crashes a worker (chosen by the seed among those
// running tasks of replicated services) at a uniformly random point of its
// heartbeat period, and measures until those services run all their
// replicas again.
func RunWorkerTrial(sc *scenarios.Scenario, seed uint64) (WorkerResult, error) {
	res := WorkerResult{Seed: seed}
	w, err := open(sc, seed)
	if err != nil {
		return res, err
	}
	defer w.Close()
	k, c := w.Kernel(), w.Cluster()
	rnd := k.NewRand("bench/failover")

	deadline := k.Now() + trialLimit
	for {
		ok, _ := w.Holds(scenarios.Converged{})
		if ok {
			break
		}
		if w.Violation() != nil {
			return res, violation(w, seed)
		}
		if k.Now() >= deadline {
			return res, fmt.Errorf("failover: seed %d: services not converged within %s", seed, trialLimit)
		}
		k.RunUntil(k.Now()+pollEvery, func() bool { return w.Violation() != nil })
	}
	lm, ok := c.Leader()
	if !ok {
		return res, fmt.Errorf("failover: seed %d: no leader after convergence", seed)
	}
	st := lm.Engine.Manager().Store()

	// Workers running tasks of replicated services, and which services.
	type candidate struct {
		m        *cluster.Machine
		services map[string]int // name -> replicas
		tasks    int
	}
	var cands []candidate
	for _, m := range c.Machines() {
		if m.Manager || m.Status != cluster.NodeUp {
			continue
		}
		cd := candidate{m: m, services: map[string]int{}}
		for _, id := range m.Executor.Running() {
			t := st.Task(id)
			if t == nil {
				continue
			}
			svc := st.Service(t.GetServiceId())
			if r := svc.GetSpec().GetReplicated(); r != nil {
				cd.services[svc.GetSpec().GetName()] = int(r.GetReplicas())
				cd.tasks++
			}
		}
		if cd.tasks > 0 {
			cands = append(cands, cd)
		}
	}
	if len(cands) == 0 {
		return res, errors.New("failover: the scenario runs no replicated service task on any worker")
	}
	victim := cands[rnd.Int63n(int64(len(cands)))]
	res.Worker, res.Tasks = victim.m.Name, victim.tasks
	before := runningContainers(c)
	period := sc.Cluster.Dispatcher.Heartbeat
	res.Offset = time.Duration(rnd.Int63n(int64(period)))
	crashAt := k.Now() + res.Offset
	if !k.RunUntil(crashAt, func() bool { return w.Violation() != nil }) {
		return res, violation(w, seed)
	}
	if err := c.Crash(victim.m.Name); err != nil {
		return res, fmt.Errorf("failover: seed %d: %w", seed, err)
	}
	ev0 := k.Processed()
	down, recovered := time.Duration(-1), time.Duration(-1)
	// The store shows the lost tasks running until the worker is marked
	// down and they are replaced, so recovery is judged on the containers
	// actually running: first their total, cheaply, then per service.
	k.RunUntil(crashAt+trialLimit, func() bool {
		if w.Violation() != nil {
			return true
		}
		if down < 0 && isDown(c, victim.m.Name) {
			down = k.Now() - crashAt
		}
		if runningContainers(c) < before || !allRunning(c, victim.services) {
			return false
		}
		recovered = k.Now() - crashAt
		return true
	})
	res.Events = k.Processed() - ev0
	if w.Violation() != nil {
		return res, violation(w, seed)
	}
	if recovered < 0 {
		return res, fmt.Errorf("failover: seed %d: %s's tasks not running elsewhere within %s", seed, victim.m.Name, trialLimit)
	}
	res.Down, res.Recovered = down, recovered
	return res, nil
}

// isDown reports whether the current leader's store shows node name DOWN.
func isDown(c *cluster.Cluster, name string) bool {
	lm, ok := c.Leader()
	if !ok {
		return false
	}
	st := lm.Engine.Manager().Store()
	n := st.Node(name)
	if n == nil {
		if ns := st.NodesByName(name); len(ns) > 0 {
			n = ns[0]
		}
	}
	return n.GetStatus().GetState() == api.NodeState_NODE_STATE_DOWN
}

// runningContainers counts the containers running on machines that are up.
func runningContainers(c *cluster.Cluster) int {
	n := 0
	for _, m := range c.Machines() {
		if m.Status == cluster.NodeUp {
			n += m.Executor.NumRunning()
		}
	}
	return n
}

// allRunning reports whether every service named in want (name ->
// replicas) has that many containers running on machines that are up,
// as the current leader's store maps containers to services.
func allRunning(c *cluster.Cluster, want map[string]int) bool {
	lm, ok := c.Leader()
	if !ok {
		return false
	}
	st := lm.Engine.Manager().Store()
	got := make(map[string]int, len(want))
	for _, m := range c.Machines() {
		if m.Status != cluster.NodeUp || m.Executor.NumRunning() == 0 {
			continue
		}
		for _, id := range m.Executor.Running() {
			if t := st.Task(id); t != nil {
				got[st.Service(t.GetServiceId()).GetSpec().GetName()]++
			}
		}
	}
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if got[n] < want[n] {
			return false
		}
	}
	return true
}
