package orchestrator_test

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/store"
)

const benchReplicas = 100_000

// BenchmarkScaleFromEmpty: one 100,000-replica service, reconciled from an
// empty store: the pass, its 10 transactions, and their apply through the
// store's codec on the loopback.
func BenchmarkScaleFromEmpty(b *testing.B) {
	b.ReportAllocs()
	var total, cpu time.Duration
	for range b.N {
		b.StopTimer()
		h := newHarness(b, 1)
		h.addNode("n1", nil)
		svc := h.createService(replicated("web", "web:1", benchReplicas))
		h.o.Start()
		b.StartTimer()
		start, cpu0 := time.Now(), cpuTime()
		for h.o.Stats().TasksCreated < benchReplicas && h.k.Step() {
		}
		total += time.Since(start)
		cpu += cpuTime() - cpu0
		b.StopTimer()
		if n := h.st.CountTasksByService(svc); n != benchReplicas {
			b.Fatalf("%d tasks", n)
		}
		h.restore()
		b.StartTimer()
	}
	b.ReportMetric(float64(benchReplicas)*float64(b.N)/total.Seconds(), "tasks/s")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
}

// BenchmarkPlanFromEmpty is the orchestrator's own share of the above: the
// pass that decides 100,000 creations and records them in transactions,
// without the store's apply.
func BenchmarkPlanFromEmpty(b *testing.B) {
	b.ReportAllocs()
	h := newHarness(b, 1)
	h.addNode("n1", nil)
	h.createService(replicated("web", "web:1", benchReplicas))
	h.st.SetProposer(dropProposer{})
	h.o.Start()
	h.o.Detach()
	b.ResetTimer()
	cpu0 := cpuTime()
	for range b.N {
		h.o.PassNow("svc-web", nil)
	}
	b.ReportMetric(float64(benchReplicas)*float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
	b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
}

// dropProposer never applies nor answers.
type dropProposer struct{}

func (dropProposer) Propose([]byte, store.Proposal) {}

// BenchmarkReactToFailures: 10,000 of 100,000 running tasks fail in one
// dispatcher batch; the orchestrator restarts each in its slot (restart
// delay 0). Measured from the failures' proposal to the replacements
// committed.
func BenchmarkReactToFailures(b *testing.B) {
	b.ReportAllocs()
	const fails = 10_000
	h := newHarness(b, 1)
	for _, n := range []string{"n1", "n2", "n3", "n4"} {
		h.addNode(n, nil)
	}
	spec := replicated("web", "web:1", benchReplicas)
	spec.Task.Restart = &api.RestartPolicy{Condition: api.RestartPolicy_ANY}
	svc := h.createService(spec)
	h.o.Start()
	for h.o.Stats().TasksCreated < benchReplicas && h.k.Step() {
	}
	h.settle()
	// Every task runs (as agents would report, in batches).
	h.setAllRunning(svc)
	b.ResetTimer()
	var total, cpu time.Duration
	for range b.N {
		b.StopTimer()
		var victims []string
		for t := range h.st.EachTaskByService(svc) {
			if isRunning(t) {
				victims = append(victims, t.Id)
				if len(victims) == fails {
					break
				}
			}
		}
		want := h.o.Stats().Restarts + fails
		ts := h.now()
		b.StartTimer()
		start, cpu0 := time.Now(), cpuTime()
		h.st.Update(func(tx *store.Tx) error {
			for _, id := range victims {
				if err := tx.UpdateTaskStatus(id, &api.TaskStatus{State: failed, Timestamp: ts, Err: "exit 1"}); err != nil {
					return err
				}
			}
			return nil
		}, nil)
		for h.o.Stats().Restarts < want && h.k.Step() {
		}
		total += time.Since(start)
		cpu += cpuTime() - cpu0
		b.StopTimer()
		if h.o.Stats().Restarts < want {
			b.Fatalf("restarts %d, want %d", h.o.Stats().Restarts, want)
		}
		h.settle() // the reaper and the shutdowns
		h.setAllRunning(svc)
		b.StartTimer()
	}
	b.ReportMetric(float64(fails)*float64(b.N)/total.Seconds(), "restarts/s")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
}

// setAllRunning plays the agents: every live task of svc runs, written in
// batches of 10,000.
func (h *harness) setAllRunning(svc string) {
	ts := h.now()
	var ids []string
	for t := range h.st.EachTaskByService(svc) {
		if live(t) && t.GetStatus().GetState() < running {
			ids = append(ids, t.Id)
		}
	}
	for len(ids) > 0 {
		n := min(len(ids), 10000)
		batch := ids[:n]
		ids = ids[n:]
		h.do(func(tx *store.Tx) error {
			for _, id := range batch {
				if err := tx.UpdateTaskStatus(id, &api.TaskStatus{State: running, Timestamp: ts}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	h.settle()
}

// BenchmarkPlanReactToFailures is the orchestrator's own share of the
// above: the pass that reacts to 10,000 failed tasks of a 100,000-task
// service (10,000 slot reconciles, 20,000 actions recorded), without the
// store's apply.
func BenchmarkPlanReactToFailures(b *testing.B) {
	b.ReportAllocs()
	const fails = 10_000
	h := newHarness(b, 1)
	h.addNode("n1", nil)
	spec := replicated("web", "web:1", benchReplicas)
	spec.Task.Restart = &api.RestartPolicy{Condition: api.RestartPolicy_ANY}
	svc := h.createService(spec)
	h.o.Start()
	for h.o.Stats().TasksCreated < benchReplicas && h.k.Step() {
	}
	h.settle()
	h.setAllRunning(svc)
	var victims []*api.Task
	for t := range h.st.EachTaskByService(svc) {
		if len(victims) < fails {
			victims = append(victims, t)
		}
	}
	ts := h.now()
	h.do(func(tx *store.Tx) error {
		for _, t := range victims {
			if err := tx.UpdateTaskStatus(t.Id, &api.TaskStatus{State: failed, Timestamp: ts}); err != nil {
				return err
			}
		}
		return nil
	})
	h.o.Detach() // from here on the benchmark drives passes by hand
	h.st.SetProposer(dropProposer{})
	b.ResetTimer()
	var cpu time.Duration
	for range b.N {
		cpu0 := cpuTime()
		h.o.PassNow(svc, victims)
		cpu += cpuTime() - cpu0
	}
	b.ReportMetric(float64(fails)*float64(b.N)/b.Elapsed().Seconds(), "restarts/s")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
}

// cpuTime is the process's user+system CPU time. The benchmarks report it
// beside wall time because the machines that run them are often shared:
// CPU seconds per operation are what a loaded host does not inflate.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkReconcileSteady: a full reconcile of a converged 100,000-task
// service (what a leader change or a spec change costs before any write):
// every slot looked at, nothing to do.
func BenchmarkReconcileSteady(b *testing.B) {
	b.ReportAllocs()
	h := newHarness(b, 1)
	h.addNode("n1", nil)
	svc := h.createService(replicated("web", "web:1", benchReplicas))
	h.o.Start()
	for h.o.Stats().TasksCreated < benchReplicas && h.k.Step() {
	}
	h.settle()
	h.setAllRunning(svc)
	h.o.Detach()
	h.st.SetProposer(dropProposer{})
	before := h.o.Stats().Transactions
	b.ResetTimer()
	var cpu time.Duration
	for range b.N {
		cpu0 := cpuTime()
		h.o.PassNow(svc, nil)
		cpu += cpuTime() - cpu0
	}
	b.StopTimer()
	if h.o.Stats().Transactions != before {
		b.Fatalf("a converged service was written")
	}
	b.ReportMetric(float64(benchReplicas)*float64(b.N)/b.Elapsed().Seconds(), "slots/s")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
}

// BenchmarkGlobal10kNodes: a global service on 10,000 nodes reconciled
// from empty: every node checked, 10,000 pinned tasks planned and recorded
// (not applied).
func BenchmarkGlobal10kNodes(b *testing.B) {
	b.ReportAllocs()
	const nodes = 10_000
	h := newHarness(b, 1)
	h.do(func(tx *store.Tx) error {
		for i := range nodes {
			id := fmt.Sprintf("n%05d", i)
			if err := tx.Create(&api.Node{Id: id, Spec: &api.NodeSpec{Name: id},
				Status: &api.NodeStatus{State: api.NodeState_NODE_STATE_READY}}); err != nil {
				return err
			}
		}
		return nil
	})
	svc := h.createService(global("agent", "agent:1"))
	h.o.Start()
	h.o.Detach()
	h.st.SetProposer(dropProposer{})
	b.Run("from-empty", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			h.o.PassNow(svc, nil)
		}
		b.ReportMetric(float64(nodes)*float64(b.N)/b.Elapsed().Seconds(), "nodes/s")
	})
}
