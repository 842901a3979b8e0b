package orchestrator_test

import (
	"slices"
	"testing"
	"time"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/store"
)

func TestScaleUpAndDown(t *testing.T) {
	h := newHarness(t, 1)
	for _, n := range []string{"n1", "n2", "n3"} {
		h.addNode(n, nil)
	}
	h.o.Start()
	h.startAgents()
	svc := h.createService(replicated("web", "web:1", 3))
	h.waitFor(10*time.Second, "3 running", func() bool { return h.running(svc) == 3 })
	h.scale(svc, 5)
	h.waitFor(10*time.Second, "5 running", func() bool { return h.running(svc) == 5 })
	if got := h.slots(svc); len(got) != 5 || got[0] != 1 || got[4] != 5 {
		t.Fatalf("slots %v, want 1..5", got)
	}
	h.scale(svc, 2)
	h.waitFor(10*time.Second, "2 running", func() bool { return h.running(svc) == 2 && len(h.live(svc)) == 2 })
	// The removed slots' tasks are deleted once they stopped.
	h.waitFor(10*time.Second, "reaped", func() bool { return len(h.tasks(svc)) == 2 })
	st := h.o.Stats()
	if st.TasksCreated != 5 || st.TasksRemoved != 3 {
		t.Fatalf("stats %+v", st)
	}
}

// TestScaleDownChoice: scale down picks tasks not running yet, then the
// nodes holding the most tasks of the service, then the highest slots.
func TestScaleDownChoice(t *testing.T) {
	type task struct {
		node    string // "" : not placed yet
		running bool
	}
	cases := []struct {
		name  string
		tasks []task // slot i+1
		to    uint64
		keep  []uint64
	}{
		{"not running first", []task{{"n1", true}, {"", false}, {"n2", true}, {"n3", false}}, 2, []uint64{1, 3}},
		{"busiest node next", []task{{"n1", true}, {"n2", true}, {"n1", true}, {"n3", true}}, 3, []uint64{1, 2, 4}},
		{"highest slots last", []task{{"n1", true}, {"n2", true}, {"n3", true}, {"n4", true}}, 2, []uint64{1, 2}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, 1)
			for _, n := range []string{"n1", "n2", "n3", "n4"} {
				h.addNode(n, nil)
			}
			h.o.Start()
			svc := h.createService(replicated("web", "web:1", uint64(len(tc.tasks))))
			h.settle()
			for _, tk := range h.tasks(svc) {
				want := tc.tasks[tk.Slot-1]
				if want.node == "" {
					continue
				}
				h.do(func(tx *store.Tx) error {
					if err := tx.UpdateTaskStatus(tk.Id, &api.TaskStatus{State: api.TaskState_TASK_STATE_PENDING, Timestamp: 1}); err != nil {
						return err
					}
					return nil
				})
				h.do(func(tx *store.Tx) error { return tx.AssignTask(tk.Id, want.node, h.st.Task(tk.Id).Meta.Version) })
				if want.running {
					h.setStatus(tk.Id, running, false)
				}
			}
			h.settle()
			h.scale(svc, tc.to)
			h.settle()
			if got := h.slots(svc); !slices.Equal(got, tc.keep) {
				t.Fatalf("kept slots %v, want %v\n%s", got, tc.keep, h.dump())
			}
		})
	}
}

// TestScaleUpFillsLowestFreeSlots: after a scale down left holes, a scale
// up fills the lowest free slot numbers.
func TestScaleUpFillsLowestFreeSlots(t *testing.T) {
	h := newHarness(t, 1)
	h.addNode("n1", nil)
	h.o.Start()
	svc := h.createService(replicated("web", "web:1", 4))
	h.settle()
	// Slot 2's task runs nowhere yet; the others run: scaling to 3 drops
	// slot 2.
	for _, tk := range h.tasks(svc) {
		if tk.Slot != 2 {
			h.setStatus(tk.Id, running, false)
		}
	}
	h.scale(svc, 3)
	h.settle()
	if got := h.slots(svc); !slices.Equal(got, []uint64{1, 3, 4}) {
		t.Fatalf("slots %v", got)
	}
	h.scale(svc, 5)
	h.settle()
	if got := h.slots(svc); !slices.Equal(got, []uint64{1, 2, 3, 4, 5}) {
		t.Fatalf("slots %v", got)
	}
}

// TestDrainReplacesTasks: draining a node shuts its tasks down and they
// are replaced elsewhere, whatever the restart policy.
func TestDrainReplacesTasks(t *testing.T) {
	h := newHarness(t, 1)
	h.addNode("n1", nil)
	h.addNode("n2", nil)
	h.o.Start()
	h.startAgents()
	spec := replicated("web", "web:1", 4)
	spec.Task.Restart = &api.RestartPolicy{Condition: api.RestartPolicy_NONE}
	svc := h.createService(spec)
	h.waitFor(10*time.Second, "4 running", func() bool { return h.running(svc) == 4 })
	h.setAvailability("n1", api.NodeAvailability_NODE_AVAILABILITY_DRAIN)
	h.waitFor(10*time.Second, "4 running on n2", func() bool {
		return h.count(svc, func(t *api.Task) bool { return isRunning(t) && t.NodeId == "n2" }) == 4
	})
	if n := len(h.st.TasksByNode("n1")); n == 0 {
		t.Fatalf("the drained node's tasks are history, kept: none left")
	}
	for _, tk := range h.st.TasksByNode("n1") {
		if tk.DesiredState != shutdown || tk.Status.State != shutdown {
			t.Fatalf("task on drained node: desired %v state %v", tk.DesiredState, tk.Status.State)
		}
	}
	if h.o.Stats().Reschedules != 2 {
		t.Fatalf("reschedules %d", h.o.Stats().Reschedules)
	}
}

// TestNodeDownReplacesTasks: tasks on a node that goes down are shut down
// and replaced elsewhere after the restart delay; when the node is
// removed, they are ORPHANED and reaped.
func TestNodeDownReplacesTasks(t *testing.T) {
	h := newHarness(t, 1)
	h.addNode("n1", nil)
	h.addNode("n2", nil)
	h.o.Start()
	h.startAgents()
	spec := replicated("web", "web:1", 4)
	spec.Task.Restart = &api.RestartPolicy{Condition: api.RestartPolicy_ANY, Delay: int64(2 * time.Second)}
	svc := h.createService(spec)
	h.waitFor(10*time.Second, "4 running", func() bool { return h.running(svc) == 4 })
	h.setNodeState("n1", api.NodeState_NODE_STATE_DOWN)
	h.run(200 * time.Millisecond)
	lost := h.st.TasksByNode("n1")
	for _, tk := range lost {
		if tk.DesiredState != shutdown {
			t.Fatalf("task on down node desired %v", tk.DesiredState)
		}
	}
	// The replacements wait out the restart delay.
	if n := h.count(svc, func(t *api.Task) bool { return t.DesiredState == ready }); n != 2 {
		t.Fatalf("%d replacements READY, want 2\n%s", n, h.dump())
	}
	h.run(1 * time.Second)
	if h.running(svc) != 2 {
		t.Fatalf("replacements started before the delay\n%s", h.dump())
	}
	h.waitFor(5*time.Second, "4 running", func() bool { return h.running(svc) == 4 })
	h.editNode("n1", func(n *api.Node) { n.Removed = true })
	h.waitFor(5*time.Second, "lost tasks reaped or orphaned", func() bool {
		for _, tk := range h.st.TasksByNode("n1") {
			if tk.Status.State != api.TaskState_TASK_STATE_ORPHANED {
				return false
			}
		}
		return true
	})
	if h.o.Stats().Restarts != 2 {
		t.Fatalf("restarts %d", h.o.Stats().Restarts)
	}
}

// TestConstraintNoLongerMet: a replicated task on a node whose labels stop
// matching the task's constraints is moved, like a drain; pausing a node
// moves nothing.
func TestConstraintNoLongerMet(t *testing.T) {
	h := newHarness(t, 1)
	h.addNode("n1", map[string]string{"zone": "a"})
	h.addNode("n2", map[string]string{"zone": "a"})
	h.o.Start()
	h.startAgents()
	spec := replicated("web", "web:1", 4)
	spec.Task.Placement = &api.Placement{Constraints: []string{"node.labels.zone==a"}}
	svc := h.createService(spec)
	h.waitFor(10*time.Second, "running", func() bool { return h.running(svc) == 4 })
	h.setAvailability("n2", api.NodeAvailability_NODE_AVAILABILITY_PAUSE)
	h.run(2 * time.Second)
	if n := h.count(svc, func(t *api.Task) bool { return isRunning(t) && t.NodeId == "n2" }); n != 2 {
		t.Fatalf("pause moved tasks: %d left on n2", n)
	}
	h.setAvailability("n2", api.NodeAvailability_NODE_AVAILABILITY_ACTIVE)
	h.editNode("n1", func(n *api.Node) {
		spec := protoClone(n.Spec)
		spec.Labels = map[string]string{"zone": "b"}
		n.Spec = spec
	})
	h.waitFor(10*time.Second, "moved to n2", func() bool {
		return h.count(svc, func(t *api.Task) bool { return isRunning(t) && t.NodeId == "n2" }) == 4
	})
}

// TestStoreRestored: when the store is replaced by a snapshot (a follower
// catching up, then leading), the orchestrator re-reads everything.
func TestStoreRestored(t *testing.T) {
	h := newHarness(t, 1)
	h.addNode("n1", nil)
	svc := h.createService(replicated("web", "web:1", 2))
	snap, err := h.st.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	h.deleteService(svc)
	h.o.Start()
	h.settle()
	if err := h.st.Restore(snap); err != nil {
		t.Fatal(err)
	}
	h.settle()
	if n := len(h.live(svc)); n != 2 {
		t.Fatalf("%d live tasks after the restore\n%s", n, h.dump())
	}
}
