package orchestrator_test

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/orchestrator"
	"github.com/swarmsim/swarmsim/engine/raft"
	"github.com/swarmsim/swarmsim/engine/store"
	"github.com/swarmsim/swarmsim/sim"
)

// TestServiceRemoval: a deleted service's tasks get desired REMOVE and are
// deleted once stopped; a pending_delete service goes too once its tasks
// are gone.
func TestServiceRemoval(t *testing.T) {
	for _, pendingDelete := range []bool{false, true} {
		t.Run(fmt.Sprintf("pending_delete=%v", pendingDelete), func(t *testing.T) {
			h := newHarness(t, 1)
			h.addNode("n1", nil)
			h.o.Start()
			h.startAgents()
			svc := h.createService(replicated("web", "web:1", 3))
			other := h.createService(replicated("db", "db:1", 1))
			h.waitFor(10*time.Second, "running", func() bool { return h.running(svc) == 3 })
			if pendingDelete {
				h.do(func(tx *store.Tx) error {
					n := tx.Service(svc).ShallowCopy()
					n.PendingDelete = true
					return tx.Update(n)
				})
			} else {
				h.deleteService(svc)
			}
			h.run(50 * time.Millisecond)
			for _, tk := range h.tasks(svc) {
				if tk.DesiredState != remove {
					t.Fatalf("task desired %v", tk.DesiredState)
				}
			}
			h.waitFor(10*time.Second, "reaped", func() bool {
				return len(h.tasks(svc)) == 0 && h.st.Service(svc) == nil
			})
			if h.running(other) != 1 {
				t.Fatalf("the other service was touched")
			}
			if pendingDelete && h.o.Stats().ServicesDeleted != 1 {
				t.Fatalf("stats %+v", h.o.Stats())
			}
		})
	}
}

// TestHistoryLimit: a crash-looping slot keeps at most task_history_limit
// finished tasks, plus its live one.
func TestHistoryLimit(t *testing.T) {
	for _, limit := range []uint64{0, 2, 5} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			h := newHarness(t, 1)
			h.setCluster(limit)
			h.addNode("n1", nil)
			h.addNode("n2", nil)
			h.o.Start()
			h.startAgents()
			h.fail["app:1"] = true
			spec := replicated("app", "app:1", 2)
			spec.Task.Restart = &api.RestartPolicy{Condition: api.RestartPolicy_ANY, Delay: int64(200 * time.Millisecond)}
			svc := h.createService(spec)
			gspec := global("g", "app:1")
			gspec.Task.Restart = spec.Task.Restart
			gsvc := h.createService(gspec)
			worst := 0
			end := h.k.Now() + 20*time.Second
			for h.k.Now() < end && h.k.Step() {
				for _, s := range []uint64{1, 2} {
					worst = max(worst, len(h.st.TasksBySlot(svc, s)))
				}
				for _, n := range []string{"n1", "n2"} {
					worst = max(worst, len(h.slotTasksOf(gsvc, n)))
				}
			}
			// limit finished + the live one + the one just failed (it is
			// finished, and reaped, only after its shutdown is written).
			if worst > int(limit)+2 {
				t.Fatalf("a slot held %d tasks, limit %d\n%s", worst, limit, h.dump())
			}
			if h.o.Stats().Restarts < 20 {
				t.Fatalf("only %d restarts: not crash-looping", h.o.Stats().Restarts)
			}
			h.run(time.Second)
			for _, s := range []uint64{1, 2} {
				if n := len(h.st.TasksBySlot(svc, s)); n > int(limit)+1 {
					t.Fatalf("slot %d settled with %d tasks\n%s", s, n, h.dump())
				}
			}
		})
	}
}

// slotTasksOf lists a global service's tasks on a node.
func (h *harness) slotTasksOf(svc, node string) []*api.Task {
	var out []*api.Task
	for _, t := range h.st.TasksByNode(node) {
		if t.ServiceId == svc {
			out = append(out, t)
		}
	}
	return out
}

// TestAttemptsSurviveHistoryLimit: the failures a max_attempts policy
// counts are kept even beyond the history limit, so the slot still stops.
func TestAttemptsSurviveHistoryLimit(t *testing.T) {
	h := newHarness(t, 1)
	h.setCluster(1)
	h.addNode("n1", nil)
	h.o.Start()
	h.startAgents()
	h.fail["app:1"] = true
	spec := replicated("app", "app:1", 1)
	spec.Task.Restart = &api.RestartPolicy{Condition: api.RestartPolicy_ANY, MaxAttempts: 4}
	svc := h.createService(spec)
	h.run(20 * time.Second)
	if n, l := len(h.tasks(svc)), len(h.live(svc)); n != 5 || l != 0 {
		t.Fatalf("%d tasks (%d live), want 5 failures and no restart\n%s", n, l, h.dump())
	}
}

// TestLeaderChangeMidUpdate: a new orchestrator started on the same store
// (a new leader) continues a rolling update where the old one stopped,
// and the old one writes nothing after Stop.
func TestLeaderChangeMidUpdate(t *testing.T) {
	h := newHarness(t, 1)
	h.addNode("n1", nil)
	h.addNode("n2", nil)
	h.o.Start()
	h.startAgents()
	spec := replicated("web", "web:1", 6)
	spec.Update = &api.UpdateConfig{Parallelism: 1, Delay: int64(2 * time.Second), Monitor: int64(time.Second)}
	spec.Task.Restart = &api.RestartPolicy{Condition: api.RestartPolicy_ANY, Delay: int64(3 * time.Second)}
	svc := h.createService(spec)
	h.waitFor(10*time.Second, "running", func() bool { return h.running(svc) == 6 })
	h.updateService(svc, func(s *api.ServiceSpec) { s.Task.Container.Image = "web:2" })
	h.waitFor(time.Minute, "two slots updated", func() bool { return h.runningImage(svc, "web:2") == 2 })
	// A restart delay is running too when the leader goes.
	for _, tk := range h.live(svc) {
		if tk.Spec.Container.Image == "web:1" {
			h.setStatus(tk.Id, api.TaskState_TASK_STATE_FAILED, false)
			break
		}
	}
	h.run(10 * time.Millisecond)
	if n := h.count(svc, func(t *api.Task) bool { return t.DesiredState == ready }); n == 0 {
		t.Fatalf("no restart delay running at the handover\n%s", h.dump())
	}
	old := h.o
	old.Stop()
	before := old.Stats()
	h.o = orchestrator.New(orchestrator.Deps{Store: h.st, Clock: h.n, Loop: h.n, Rand: h.n.Rand("orchestrator-2")})
	h.run(5 * time.Second) // no leader for a while
	h.o.Start()
	h.waitFor(2*time.Minute, "update completed", func() bool { return h.updateState(svc) == api.UpdateStatus_COMPLETED })
	if h.runningImage(svc, "web:2") != 6 || len(h.live(svc)) != 6 {
		t.Fatalf("not converged\n%s", h.dump())
	}
	// Every slot got exactly one web:2 task: nothing was redone.
	perSlot := map[uint64]int{}
	for _, tk := range h.tasks(svc) {
		if tk.Spec.Container.Image == "web:2" {
			perSlot[tk.Slot]++
		}
	}
	for s, n := range perSlot {
		if n != 1 {
			t.Fatalf("slot %d got %d web:2 tasks\n%s", s, n, h.dump())
		}
	}
	if after := old.Stats(); after.Transactions != before.Transactions || after.Passes != before.Passes {
		t.Fatalf("the stopped orchestrator kept working: %+v -> %+v", before, after)
	}
	if s := h.o.Stats(); s.UpdatesStarted != 0 || s.UpdatesCompleted != 1 {
		t.Fatalf("the new leader should resume, not restart, the update: %+v", s)
	}
}

// TestStopDropsWritesInFlight: a pass's proposal that applies after Stop
// is not acted upon, and no pass runs after Stop.
func TestStopDropsWritesInFlight(t *testing.T) {
	h := newHarness(t, 1)
	h.addNode("n1", nil)
	h.o.Start()
	svc := h.createService(replicated("web", "web:1", 3))
	// Let the pass run and propose, but stop before the loopback applies.
	for h.o.Stats().Passes == 0 {
		h.k.Step()
	}
	h.o.Stop()
	h.settle()
	if n := len(h.tasks(svc)); n != 3 {
		t.Fatalf("the proposal in flight applies (it was proposed): %d tasks", n)
	}
	if s := h.o.Stats(); s.Transactions != 0 || s.Passes != 1 {
		t.Fatalf("callbacks after Stop were acted upon: %+v", s)
	}
	h.scale(svc, 5)
	h.settle()
	if n := len(h.tasks(svc)); n != 3 {
		t.Fatalf("a stopped orchestrator reacted: %d tasks", n)
	}
	h.o.Start()
	h.settle()
	if n := len(h.tasks(svc)); n != 5 {
		t.Fatalf("restarted orchestrator: %d tasks", n)
	}
}

// hookProposer runs hook (once) before passing the next proposal on: a
// way to let another writer win a race.
type hookProposer struct {
	next store.Proposer
	hook func()
}

func (p *hookProposer) Propose(data []byte, done store.Proposal) {
	if f := p.hook; f != nil {
		p.hook = nil
		f()
	}
	p.next.Propose(data, done)
}

// touchTasks changes every task of svc (a write that moves their versions),
// as another writer would.
func (h *harness) touchTasks(svc string) {
	for _, tk := range h.tasks(svc) {
		h.st.Update(func(tx *store.Tx) error {
			n := tx.Task(tk.Id).ShallowCopy()
			n.PendingReason = "touched"
			return tx.Update(n)
		}, nil)
	}
}

// TestConflictRetried: a write that loses a race with another writer is
// rejected by the store and retried by reconciling again.
func TestConflictRetried(t *testing.T) {
	h := newHarness(t, 1)
	hp := &hookProposer{next: store.NewLoopback(h.st, h.n)}
	h.st.SetProposer(hp)
	h.addNode("n1", nil)
	h.o.Start()
	svc := h.createService(replicated("web", "web:1", 2))
	h.settle()
	for _, tk := range h.tasks(svc) {
		h.do(func(tx *store.Tx) error { return tx.AssignTask(tk.Id, "n1", tk.Meta.Version) })
		h.setStatus(tk.Id, running, false)
	}
	h.scale(svc, 1)
	// The orchestrator's next proposal removes a slot; just before it,
	// another writer changes both tasks (a full update moves the version).
	hp.hook = func() { h.touchTasks(svc) }
	h.settle()
	if s := h.o.Stats(); s.Conflicts != 1 || s.FailedWrites != 1 {
		t.Fatalf("want one conflict: %+v\n%s", s, h.dump())
	}
	if n := len(h.live(svc)); n != 1 {
		t.Fatalf("%d live after the retry\n%s", n, h.dump())
	}
}

// TestDeterminism: one seed, one history: the same task IDs and the same
// store snapshot bytes; another seed draws other IDs.
func TestDeterminism(t *testing.T) {
	run := func(seed uint64) ([]string, []byte) {
		h := newHarness(t, seed)
		for i := 1; i <= 5; i++ {
			h.addNode(fmt.Sprintf("n%d", i), map[string]string{"zone": fmt.Sprint(i % 2)})
		}
		h.o.Start()
		h.startAgents()
		h.fail["web:3"] = true
		h.exits["batch:1"] = true
		spec := replicated("web", "web:1", 8)
		spec.Update = &api.UpdateConfig{Parallelism: 2, Delay: int64(time.Second), FailureAction: api.UpdateConfig_ROLLBACK, Monitor: int64(2 * time.Second)}
		spec.Task.Restart = &api.RestartPolicy{Condition: api.RestartPolicy_ANY, Delay: int64(time.Second)}
		web := h.createService(spec)
		h.createService(global("agent", "agent:1"))
		h.createService(replicatedJob("nightly", "batch:1", 12, 4))
		h.run(10 * time.Second)
		h.updateService(web, func(s *api.ServiceSpec) { s.Task.Container.Image = "web:2" })
		h.run(20 * time.Second)
		h.setNodeState("n2", api.NodeState_NODE_STATE_DOWN)
		h.setAvailability("n3", api.NodeAvailability_NODE_AVAILABILITY_DRAIN)
		h.updateService(web, func(s *api.ServiceSpec) { s.Task.Container.Image = "web:3" })
		h.run(time.Minute)
		var ids []string
		for tk := range h.st.EachTask() {
			ids = append(ids, tk.Id)
		}
		snap, err := h.st.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		h.stopTick = true
		h.restore()
		return ids, snap
	}
	ids1, snap1 := run(7)
	ids2, snap2 := run(7)
	if !slices.Equal(ids1, ids2) || !bytes.Equal(snap1, snap2) {
		t.Fatalf("same seed, different runs: %d vs %d tasks, snapshots equal: %v", len(ids1), len(ids2), bytes.Equal(snap1, snap2))
	}
	ids3, _ := run(8)
	if slices.Equal(ids1, ids3) {
		t.Fatalf("another seed drew the same IDs")
	}
	if len(ids1) < 20 {
		t.Fatalf("only %d tasks: the scenario did little", len(ids1))
	}
}

// droppingProposer refuses every proposal as raft does during a leadership
// transfer (ErrProposalDropped), answering on the loop, while drop is set.
type droppingProposer struct {
	next     store.Proposer
	n        *sim.Node
	drop     bool
	attempts int
}

func (p *droppingProposer) Propose(data []byte, done store.Proposal) {
	if !p.drop {
		p.next.Propose(data, done)
		return
	}
	p.attempts++
	p.n.Post(func() { done.Done(nil, fmt.Errorf("%w: raft proposal dropped", raft.ErrProposalDropped)) })
}

// TestDroppedWriteRetriedLater: a write raft drops is retried after a
// delay, not at once: at once, a pass at the same instant would propose
// again, be dropped again, and never let virtual time reach the end of the
// transfer that drops it.
func TestDroppedWriteRetriedLater(t *testing.T) {
	h := newHarness(t, 1)
	dp := &droppingProposer{next: store.NewLoopback(h.st, h.n), n: h.n}
	h.st.SetProposer(dp)
	h.addNode("n1", nil)
	h.o.Start()
	svc := h.createService(replicated("web", "web:1", 2))
	h.settle()
	h.scale(svc, 3)
	dp.drop = true // from the orchestrator's write on
	// Step at most 100,000 events: a retry loop at one instant spends them
	// all without moving the clock.
	end := h.k.Now() + time.Second
	for i := 0; i < 100000 && h.k.Now() < end && h.k.Step(); i++ {
	}
	if h.k.Now() < end {
		t.Fatalf("virtual time stuck at %v after %d dropped attempts", h.k.Now(), dp.attempts)
	}
	if dp.attempts > 10 {
		t.Fatalf("%d attempts in a second of dropped proposals, want one per retry delay", dp.attempts)
	}
	dp.drop = false
	h.settle()
	if n := len(h.live(svc)); n != 3 {
		t.Fatalf("%d live once proposals pass again\n%s", n, h.dump())
	}
}
