package orchestrator_test

import (
	"testing"
	"time"

	"github.com/swarmsim/swarmsim/engine/api"
)

func replicatedJob(name, image string, total, maxc uint64) *api.ServiceSpec {
	return &api.ServiceSpec{
		Name: name,
		Task: &api.TaskSpec{Container: &api.ContainerSpec{Image: image}},
		Mode: &api.ServiceSpec_ReplicatedJob{ReplicatedJob: &api.ReplicatedJob{TotalCompletions: total, MaxConcurrent: maxc}},
	}
}

func (h *harness) completed(svc string, iter uint64) int {
	return h.count(svc, func(t *api.Task) bool {
		return t.JobIteration == iter && t.GetStatus().GetState() == complete
	})
}

// active counts the job's tasks that are meant to run and have not ended.
func (h *harness) active(svc string) int {
	return h.count(svc, func(t *api.Task) bool { return live(t) && !ended(t) })
}

// TestReplicatedJob: total completions, never more than max_concurrent at
// once, completed tasks never restarted.
func TestReplicatedJob(t *testing.T) {
	h := newHarness(t, 1)
	h.addNode("n1", nil)
	h.addNode("n2", nil)
	h.o.Start()
	h.startAgents()
	h.exits["batch:1"] = true
	svc := h.createService(replicatedJob("nightly", "batch:1", 10, 3))
	peak := 0
	h.waitFor(30*time.Second, "10 completions", func() bool {
		peak = max(peak, h.active(svc))
		return h.completed(svc, 0) == 10
	})
	if peak > 3 {
		t.Fatalf("%d tasks at once, max_concurrent 3", peak)
	}
	h.run(10 * time.Second)
	if n := len(h.tasks(svc)); n != 10 {
		t.Fatalf("%d tasks after completion, want the 10 completed ones\n%s", n, h.dump())
	}
	seen := map[uint64]bool{}
	for _, tk := range h.tasks(svc) {
		if tk.Slot < 1 || tk.Slot > 10 || seen[tk.Slot] {
			t.Fatalf("slot %d", tk.Slot)
		}
		seen[tk.Slot] = true
	}
	if js := h.st.Service(svc).GetJobStatus(); js == nil || js.JobIteration != 0 || js.SpecVersion != 1 {
		t.Fatalf("job status %v", js)
	}
}

// TestReplicatedJobRetriesFailures: a failed run is retried in its slot
// under the restart policy; completions are not.
func TestReplicatedJobRetriesFailures(t *testing.T) {
	h := newHarness(t, 1)
	h.addNode("n1", nil)
	h.o.Start()
	spec := replicatedJob("j", "batch:1", 2, 2)
	spec.Task.Restart = &api.RestartPolicy{Condition: api.RestartPolicy_ON_FAILURE, MaxAttempts: 1}
	svc := h.createService(spec)
	h.settle()
	ts := h.tasks(svc)
	if len(ts) != 2 {
		t.Fatalf("%d tasks", len(ts))
	}
	h.setStatus(ts[0].Id, complete, false)
	h.setStatus(ts[1].Id, api.TaskState_TASK_STATE_FAILED, false)
	h.settle()
	var retry *api.Task
	for _, tk := range h.live(svc) {
		if !ended(tk) {
			retry = tk
		}
	}
	if retry == nil || retry.Slot != ts[1].Slot || h.active(svc) != 1 {
		t.Fatalf("want one retry in slot %d\n%s", ts[1].Slot, h.dump())
	}
	// The retry fails too: max_attempts 1 is spent, the job stays short.
	h.setStatus(retry.Id, api.TaskState_TASK_STATE_FAILED, false)
	h.settle()
	if h.active(svc) != 0 || len(h.tasks(svc)) != 3 {
		t.Fatalf("want no further retry\n%s", h.dump())
	}
}

// TestJobRerunOnSpecChange: changing a job's spec runs it again as a new
// iteration; the old iteration's tasks go.
func TestJobRerunOnSpecChange(t *testing.T) {
	h := newHarness(t, 1)
	h.addNode("n1", nil)
	h.o.Start()
	h.startAgents()
	h.exits["batch:1"] = true
	h.exits["batch:2"] = true
	svc := h.createService(replicatedJob("j", "batch:1", 3, 0))
	h.waitFor(10*time.Second, "3 completions", func() bool { return h.completed(svc, 0) == 3 })
	h.updateService(svc, func(s *api.ServiceSpec) { s.Task.Container.Image = "batch:2" })
	h.waitFor(10*time.Second, "3 completions of iteration 1", func() bool { return h.completed(svc, 1) == 3 })
	h.waitFor(10*time.Second, "old iteration removed", func() bool { return len(h.tasks(svc)) == 3 })
	for _, tk := range h.tasks(svc) {
		if tk.JobIteration != 1 || tk.GetSpec().GetContainer().GetImage() != "batch:2" {
			t.Fatalf("task of iteration %d image %s", tk.JobIteration, tk.GetSpec().GetContainer().GetImage())
		}
	}
	if js := h.st.Service(svc).GetJobStatus(); js.JobIteration != 1 || js.SpecVersion != 2 {
		t.Fatalf("job status %v", js)
	}
	if st := h.o.Stats(); st.JobIterations != 2 {
		t.Fatalf("job iterations %d", st.JobIterations)
	}
}

// TestGlobalJob: one completion per eligible node, including nodes that
// join later; none restarted.
func TestGlobalJob(t *testing.T) {
	h := newHarness(t, 1)
	h.addNode("n1", nil)
	h.addNode("n2", nil)
	h.o.Start()
	h.startAgents()
	h.exits["once:1"] = true
	svc := h.createService(&api.ServiceSpec{
		Name: "once",
		Task: &api.TaskSpec{Container: &api.ContainerSpec{Image: "once:1"}},
		Mode: &api.ServiceSpec_GlobalJob{GlobalJob: &api.GlobalJob{}},
	})
	h.waitFor(10*time.Second, "2 completions", func() bool { return h.completed(svc, 0) == 2 })
	h.addNode("n3", nil)
	h.waitFor(10*time.Second, "3 completions", func() bool { return h.completed(svc, 0) == 3 })
	h.run(10 * time.Second)
	if n := len(h.tasks(svc)); n != 3 {
		t.Fatalf("%d tasks\n%s", n, h.dump())
	}
}
