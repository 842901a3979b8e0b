package orchestrator_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/store"
)

// globalNodes lists the nodes that run a live task of svc.
func (h *harness) globalNodes(svc string) []string {
	var out []string
	for _, t := range h.live(svc) {
		out = append(out, t.NodeId)
	}
	slices.Sort(out)
	return out
}

func TestGlobalService(t *testing.T) {
	h := newHarness(t, 1)
	h.addNode("n1", map[string]string{"zone": "a"})
	h.addNode("n2", map[string]string{"zone": "b"})
	h.o.Start()
	h.startAgents()
	spec := global("agent", "agent:1")
	spec.Task.Placement = &api.Placement{Constraints: []string{"node.labels.zone!=c"}}
	svc := h.createService(spec)
	h.waitFor(5*time.Second, "2 running", func() bool { return h.running(svc) == 2 })
	for _, tk := range h.tasks(svc) {
		if tk.Slot != 0 || tk.NodeId == "" {
			t.Fatalf("global task slot %d node %q", tk.Slot, tk.NodeId)
		}
	}

	steps := []struct {
		name string
		do   func()
		want []string
	}{
		{"node joins", func() { h.addNode("n3", map[string]string{"zone": "a"}) }, []string{"n1", "n2", "n3"}},
		{"node off constraints joins", func() { h.addNode("n4", map[string]string{"zone": "c"}) }, []string{"n1", "n2", "n3"}},
		{"labels change to match", func() {
			h.editNode("n4", func(n *api.Node) {
				spec := protoClone(n.Spec)
				spec.Labels = map[string]string{"zone": "b"}
				n.Spec = spec
			})
		}, []string{"n1", "n2", "n3", "n4"}},
		{"drain", func() { h.setAvailability("n2", api.NodeAvailability_NODE_AVAILABILITY_DRAIN) }, []string{"n1", "n3", "n4"}},
		{"pause keeps", func() { h.setAvailability("n3", api.NodeAvailability_NODE_AVAILABILITY_PAUSE) }, []string{"n1", "n3", "n4"}},
		{"down", func() { h.setNodeState("n1", api.NodeState_NODE_STATE_DOWN) }, []string{"n3", "n4"}},
		{"back up", func() { h.setNodeState("n1", api.NodeState_NODE_STATE_READY) }, []string{"n1", "n3", "n4"}},
		{"activate", func() { h.setAvailability("n2", api.NodeAvailability_NODE_AVAILABILITY_ACTIVE) }, []string{"n1", "n2", "n3", "n4"}},
		{"stops matching", func() {
			h.editNode("n4", func(n *api.Node) {
				spec := protoClone(n.Spec)
				spec.Labels = map[string]string{"zone": "c"}
				n.Spec = spec
			})
		}, []string{"n1", "n2", "n3"}},
		{"removed", func() { h.editNode("n3", func(n *api.Node) { n.Removed = true }) }, []string{"n1", "n2"}},
	}
	for _, s := range steps {
		s.do()
		h.run(2 * time.Second)
		if got := h.globalNodes(svc); !slices.Equal(got, s.want) {
			t.Fatalf("%s: live on %v, want %v\n%s", s.name, got, s.want, h.dump())
		}
	}
	// One live task per node at most, always.
	seen := map[string]bool{}
	for _, tk := range h.live(svc) {
		if seen[tk.NodeId] {
			t.Fatalf("two live tasks on %s", tk.NodeId)
		}
		seen[tk.NodeId] = true
	}
}

// TestGlobalRestart: a global task that fails restarts on its node.
func TestGlobalRestart(t *testing.T) {
	h := newHarness(t, 1)
	h.addNode("n1", nil)
	h.o.Start()
	spec := global("agent", "agent:1")
	spec.Task.Restart = &api.RestartPolicy{Condition: api.RestartPolicy_ON_FAILURE}
	svc := h.createService(spec)
	h.settle()
	first := h.tasks(svc)[0]
	h.setStatus(first.Id, api.TaskState_TASK_STATE_FAILED, false)
	h.settle()
	live := h.live(svc)
	if len(live) != 1 || live[0].NodeId != "n1" || live[0].Id == first.Id || live[0].DesiredState != running {
		t.Fatalf("want a running replacement on n1\n%s", h.dump())
	}
}

// TestGlobalTaskFailedAsNodeWentDown: a global task fails about when its
// node goes down: in the same write, or reported only once the node is
// back, after the orchestrator shut the task down with its node. Either
// way the failed, shut-down task must not pass for a restart its policy
// declined: the node, back, gets a task again.
func TestGlobalTaskFailedAsNodeWentDown(t *testing.T) {
	for _, failFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("failed-first=%v", failFirst), func(t *testing.T) {
			h := newHarness(t, 1)
			h.addNode("n1", nil)
			h.addNode("n2", nil)
			h.o.Start()
			h.startAgents()
			spec := global("agent", "agent:1")
			spec.Task.Restart = &api.RestartPolicy{Condition: api.RestartPolicy_ANY, Delay: int64(time.Second)}
			svc := h.createService(spec)
			h.waitFor(5*time.Second, "2 running", func() bool { return h.running(svc) == 2 })
			var onN1 *api.Task
			for _, tk := range h.live(svc) {
				if tk.NodeId == "n1" {
					onN1 = tk
				}
			}
			ts := h.now()
			failed := &api.TaskStatus{State: api.TaskState_TASK_STATE_FAILED, Timestamp: ts, Err: "container lost"}
			if failFirst {
				// One write: the orchestrator sees the failure and the
				// lost node at once.
				h.do(func(tx *store.Tx) error {
					if err := tx.UpdateTaskStatus(onN1.Id, failed); err != nil {
						return err
					}
					n := tx.Node("n1").ShallowCopy()
					n.Status = &api.NodeStatus{State: api.NodeState_NODE_STATE_DOWN}
					return tx.Update(n)
				})
				h.run(5 * time.Second)
			} else {
				// The node is lost with its task running: the task is shut
				// down. The failure its agent saw before comes in later.
				h.setNodeState("n1", api.NodeState_NODE_STATE_DOWN)
				h.waitFor(5*time.Second, "the task shut down", func() bool {
					return h.st.Task(onN1.Id).GetDesiredState() == api.TaskState_TASK_STATE_SHUTDOWN
				})
				h.do(func(tx *store.Tx) error { return tx.UpdateTaskStatus(onN1.Id, failed) })
			}
			h.setNodeState("n1", api.NodeState_NODE_STATE_READY)
			h.waitFor(10*time.Second, "a task on n1 again", func() bool {
				return slices.Equal(h.globalNodes(svc), []string{"n1", "n2"}) && h.running(svc) == 2
			})
		})
	}
}
