package schedbench

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"syscall"
	"time"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/scheduler"
	"github.com/swarmsim/swarmsim/engine/store"
)

// Variants of the workload.
const (
	// Plain: every node is eligible; tasks spread by load alone.
	Plain = "plain"
	// Constraints: the service asks for node.labels.tier==frontend (half
	// the nodes carry it, the other half say backend),
	// engine.labels.os==linux (all nodes) and node.role!=manager (all
	// workers), so every task goes through three constraints and half the
	// nodes take twice the tasks.
	Constraints = "constraints"
	// Spread: every node is eligible, and the service spreads over
	// node.labels.zone, three zones of (nearly) equal size.
	Spread = "spread"
)

// Variants lists the workloads, in the order reports show them.
var Variants = []string{Plain, Constraints, Spread}

// Node and task sizes: a node has 8 CPUs and 32 GiB, a task reserves a
// tenth of a CPU and 128 MiB, so twenty tasks per node (the constraints
// variant) use a quarter of a node and resources never run out; the
// resource filter still runs on every decision.
const (
	nodeNanoCPUs   = 8e9
	nodeMemory     = 32 << 30
	taskNanoCPUs   = 1e8
	taskMemory     = 128 << 20
	createPerBatch = 20000
)

// BenchResult is what one run measured.
type BenchResult struct {
	Variant      string
	Nodes        int
	TasksPerNode int
	Tasks        int
	// Assigned counts the tasks the store shows assigned at the end.
	Assigned int
	// Elapsed runs from the scheduler's Start, over a store where every
	// task is pending, to the moment the last assignment has applied:
	// reading the store, deciding, encoding, applying and confirming.
	Elapsed        time.Duration
	TasksPerSecond float64
	// CPU is the process's CPU time (user and system, every thread: the
	// garbage collector's too) during Elapsed. On a machine busy with
	// other work, Tasks/CPU is the steadier figure.
	CPU time.Duration
	// Allocs and Bytes are the heap allocations made during Elapsed.
	Allocs, Bytes uint64
	// Setup is the time spent building the store (not measured).
	Setup time.Duration
	Stats scheduler.Stats
}

// Cluster is a prepared workload: a store with nodes and pending tasks and
// a stopped scheduler over it.
type Cluster struct {
	Variant      string
	Nodes        int
	TasksPerNode int
	Store        *store.Store
	Loop         *Loop
	Scheduler    *scheduler.Scheduler
	serviceID    string
	timers       *int // retry timers armed on the wall clock
}

// Loop is an env.Loop that queues posted functions until Drain runs them.
type Loop struct{ q []func() }

// Post implements env.Loop.
func (l *Loop) Post(f func()) { l.q = append(l.q, f) }

// Drain runs posted functions, and those they post, until none is left.
func (l *Loop) Drain() {
	for len(l.q) > 0 {
		f := l.q[0]
		l.q[0] = nil
		l.q = l.q[1:]
		f()
	}
	l.q = nil
}

// wallClock is the real clock. Timers are not needed by a run that
// succeeds (the scheduler arms one only after a failed proposal); they
// never fire, and Verify reports that one was armed.
type wallClock struct{ timers *int }

func (c wallClock) Now() time.Time { return time.Now() }

var wallStart = time.Now()

func (c wallClock) Monotonic() time.Duration { return time.Since(wallStart) }
func (c wallClock) AfterFunc(time.Duration, func()) env.Timer {
	*c.timers++
	return stoppedTimer{}
}

type stoppedTimer struct{}

func (stoppedTimer) Stop() bool { return false }

// seededRand is an env.Rand on a fixed seed: the same workload every run.
type seededRand struct{ r *rand.Rand }

func (s seededRand) Int63n(n int64) int64 { return s.r.Int64N(n) }
func (s seededRand) Float64() float64     { return s.r.Float64() }
func (s seededRand) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(s.r.Uint32())
	}
	return len(p), nil
}

// Prepare builds the store of a workload: nodes ready nodes and one
// service with nodes*tasksPerNode pending tasks, and a stopped scheduler.
// clock stamps the store's proposals (nil: the wall clock).
func Prepare(nodes, tasksPerNode int, variant string, clock env.Clock) (*Cluster, error) {
	if nodes <= 0 || tasksPerNode <= 0 {
		return nil, fmt.Errorf("schedbench: %d nodes, %d tasks per node: both must be positive", nodes, tasksPerNode)
	}
	if !slices.Contains(Variants, variant) {
		return nil, fmt.Errorf("schedbench: unknown variant %q (want one of %v)", variant, Variants)
	}
	timers := 0
	if clock == nil {
		clock = wallClock{&timers}
	}
	rnd := seededRand{rand.New(rand.NewPCG(1, uint64(nodes)))}
	st := store.New(clock)
	st.SetProposer(store.NewSyncLoopback(st))
	c := &Cluster{Variant: variant, Nodes: nodes, TasksPerNode: tasksPerNode, Store: st, Loop: &Loop{}, timers: &timers}

	spec := &api.TaskSpec{
		Container:    &api.ContainerSpec{Image: "workload:latest"},
		Reservations: &api.Resources{NanoCpus: taskNanoCPUs, MemoryBytes: taskMemory},
		Placement:    &api.Placement{},
	}
	switch variant {
	case Constraints:
		spec.Placement.Constraints = []string{"node.labels.tier==frontend", "engine.labels.os==linux", "node.role!=manager"}
	case Spread:
		spec.Placement.Preferences = []*api.PlacementPreference{{Spread: "node.labels.zone"}}
	}
	svc := &api.Service{Id: api.NewID(rnd), Spec: &api.ServiceSpec{
		Name: "bench", Task: spec,
		Mode: &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: uint64(nodes * tasksPerNode)}},
	}}
	c.serviceID = svc.Id
	zones := [...]string{"a", "b", "c"}
	tiers := [...]string{"frontend", "backend"}
	err := update(st, func(tx *store.Tx) error {
		if err := tx.Create(svc); err != nil {
			return err
		}
		for i := range nodes {
			n := &api.Node{
				Id: api.NewID(rnd),
				Spec: &api.NodeSpec{
					Name:   fmt.Sprintf("node-%d", i),
					Labels: map[string]string{"zone": zones[i%len(zones)], "tier": tiers[i%len(tiers)]},
				},
				Description: &api.NodeDescription{
					Hostname:     fmt.Sprintf("node-%d", i),
					Resources:    &api.Resources{NanoCpus: nodeNanoCPUs, MemoryBytes: nodeMemory},
					EngineLabels: map[string]string{"os": "linux"},
				},
				Status: &api.NodeStatus{State: api.NodeState_NODE_STATE_READY},
			}
			if err := tx.Create(n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("schedbench: create nodes: %w", err)
	}
	total := nodes * tasksPerNode
	for first := 0; first < total; first += createPerBatch {
		err := update(st, func(tx *store.Tx) error {
			for slot := first; slot < min(total, first+createPerBatch); slot++ {
				t := &api.Task{
					Id: api.NewID(rnd), ServiceId: svc.Id, ServiceName: "bench", Slot: uint64(slot + 1),
					Spec: spec, SpecVersion: 1, DesiredState: api.TaskState_TASK_STATE_RUNNING,
					Status: &api.TaskStatus{State: api.TaskState_TASK_STATE_PENDING, Timestamp: tx.Timestamp()},
				}
				if err := tx.Create(t); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("schedbench: create tasks: %w", err)
		}
	}
	c.Scheduler = scheduler.New(st, c.Loop, clock, nil)
	return c, nil
}

// update runs one transaction on a store with a synchronous proposer.
func update(st *store.Store, fn func(tx *store.Tx) error) error {
	err := errors.New("schedbench: proposal did not complete synchronously")
	st.Update(fn, func(e error) { err = e })
	return err
}

// Place starts the scheduler and runs the loop until it has nothing left
// to do: with a synchronous proposer, every decision has then applied.
func (c *Cluster) Place() {
	c.Scheduler.Start()
	c.Loop.Drain()
}

// Verify checks that every task is assigned, on a node the variant allows,
// and as evenly as the variant promises. It returns the number assigned.
func (c *Cluster) Verify() (int, error) {
	perNode := make(map[string]int)
	assigned := 0
	for t := range c.Store.EachTaskByService(c.serviceID) {
		if t.NodeId == "" || t.GetStatus().GetState() != api.TaskState_TASK_STATE_ASSIGNED {
			continue
		}
		assigned++
		perNode[t.NodeId]++
	}
	total := c.Nodes * c.TasksPerNode
	if assigned != total {
		return assigned, fmt.Errorf("schedbench: %d of %d tasks assigned", assigned, total)
	}
	// Every eligible node holds within one task of every other; with
	// spread, every zone holds within one task of every other, and nodes
	// within one of the others of their zone.
	type span struct{ lo, hi, sum int }
	spans := make(map[string]*span)
	for n := range c.Store.EachNode() {
		k := perNode[n.Id]
		if c.Variant == Constraints && n.Spec.Labels["tier"] != "frontend" {
			if k != 0 {
				return assigned, fmt.Errorf("schedbench: %d tasks on node %s outside the constraints", k, n.Id)
			}
			continue
		}
		key := ""
		if c.Variant == Spread {
			key = n.Spec.Labels["zone"]
		}
		sp := spans[key]
		if sp == nil {
			sp = &span{lo: k, hi: k}
			spans[key] = sp
		}
		sp.lo, sp.hi, sp.sum = min(sp.lo, k), max(sp.hi, k), sp.sum+k
	}
	zl, zh := total, 0
	for key, sp := range spans {
		if sp.hi-sp.lo > 1 {
			return assigned, fmt.Errorf("schedbench: %d to %d tasks per eligible node (zone %q), want an even spread", sp.lo, sp.hi, key)
		}
		zl, zh = min(zl, sp.sum), max(zh, sp.sum)
	}
	if zh-zl > 1 {
		return assigned, fmt.Errorf("schedbench: %d to %d tasks per zone, want an even spread", zl, zh)
	}
	if *c.timers > 0 {
		return assigned, fmt.Errorf("schedbench: the scheduler armed %d retry timers: a proposal failed", *c.timers)
	}
	return assigned, nil
}

// RunBenchmark prepares a workload, places it once and reports what it
// measured. It reads the wall clock and the runtime's counters, and must
// not run alongside a simulation's kernel (none is involved here).
func RunBenchmark(nodes, tasksPerNode int, variant string) (BenchResult, error) {
	t0 := time.Now()
	c, err := Prepare(nodes, tasksPerNode, variant, nil)
	if err != nil {
		return BenchResult{}, err
	}
	r := BenchResult{Variant: variant, Nodes: nodes, TasksPerNode: tasksPerNode, Tasks: nodes * tasksPerNode, Setup: time.Since(t0)}
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	cpu0 := CPUTime()
	start := time.Now()
	c.Place()
	r.Elapsed = time.Since(start)
	r.CPU = CPUTime() - cpu0
	runtime.ReadMemStats(&m1)
	r.Allocs = m1.Mallocs - m0.Mallocs
	r.Bytes = m1.TotalAlloc - m0.TotalAlloc
	r.TasksPerSecond = float64(r.Tasks) / r.Elapsed.Seconds()
	r.Stats = c.Scheduler.Stats()
	r.Assigned, err = c.Verify()
	return r, err
}

// CPUTime returns the CPU time the process has used so far, user and
// system, or 0 where the platform does not say.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
