package orchestrator_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/store"
)

// TestRollingUpdate: order, parallelism and delay, watched on every event.
func TestRollingUpdate(t *testing.T) {
	const replicas = 6
	for _, order := range []api.UpdateConfig_Order{api.UpdateConfig_STOP_FIRST, api.UpdateConfig_START_FIRST} {
		for _, par := range []uint64{1, 2, 0} {
			for _, delay := range []time.Duration{0, 3 * time.Second} {
				name := fmt.Sprintf("%s/par=%d/delay=%v", order, par, delay)
				t.Run(name, func(t *testing.T) {
					h := newHarness(t, 1)
					h.addNode("n1", nil)
					h.addNode("n2", nil)
					h.o.Start()
					h.startAgents()
					spec := replicated("web", "web:1", replicas)
					spec.Update = &api.UpdateConfig{Parallelism: par, Delay: int64(delay), Order: order, Monitor: int64(time.Second)}
					svc := h.createService(spec)
					h.waitFor(10*time.Second, "running", func() bool { return h.running(svc) == replicas })
					h.updateService(svc, func(s *api.ServiceSpec) { s.Task.Container.Image = "web:2" })
					width := int(par)
					if par == 0 {
						width = replicas
					}
					maxRunning, maxInFlight := 0, 0
					h.waitFor(2*time.Minute, "update completed", func() bool {
						maxRunning = max(maxRunning, h.running(svc))
						// slots holding a new task that is not running yet
						inFlight := h.count(svc, func(t *api.Task) bool {
							return live(t) && t.GetSpec().GetContainer().GetImage() == "web:2" && t.GetStatus().GetState() < running
						})
						maxInFlight = max(maxInFlight, inFlight)
						return h.updateState(svc) == api.UpdateStatus_COMPLETED
					})
					if n := h.runningImage(svc, "web:2"); n != replicas || h.running(svc) != replicas {
						t.Fatalf("%d running web:2 of %d running\n%s", n, h.running(svc), h.dump())
					}
					if maxInFlight > width {
						t.Fatalf("%d slots updating at once, parallelism %d", maxInFlight, width)
					}
					switch order {
					case api.UpdateConfig_STOP_FIRST:
						if maxRunning > replicas {
							t.Fatalf("stop-first ran %d tasks at once", maxRunning)
						}
					case api.UpdateConfig_START_FIRST:
						if maxRunning > replicas+width || maxRunning == replicas {
							t.Fatalf("start-first ran %d tasks at once, want more than %d and at most %d",
								maxRunning, replicas, replicas+width)
						}
					}
					// Batches: tasks of web:2 created at one time; the next
					// batch starts no earlier than delay after the previous
					// one came up (came up: at least one tick later).
					var created []int64
					for _, tk := range h.tasks(svc) {
						if tk.GetSpec().GetContainer().GetImage() == "web:2" {
							created = append(created, tk.GetMeta().GetCreatedAt())
						}
					}
					slices.Sort(created)
					batches := slices.Compact(slices.Clone(created))
					if want := (replicas + width - 1) / width; len(batches) != want {
						t.Fatalf("%d batches, want %d", len(batches), want)
					}
					for i := 1; i < len(batches); i++ {
						if gap := time.Duration(batches[i] - batches[i-1]); gap < delay {
							t.Fatalf("batches %v apart, delay %v", gap, delay)
						}
					}
					st := h.st.Service(svc).GetUpdateStatus()
					if st.Message != "update completed" || st.CompletedAt == 0 || st.StartedAt == 0 || st.SpecVersion != 2 {
						t.Fatalf("status %v", st)
					}
					if s := h.o.Stats(); s.UpdatesStarted != 1 || s.UpdatesCompleted != 1 {
						t.Fatalf("stats %+v", s)
					}
				})
			}
		}
	}
}

// TestUpdateFailureAction: the new image fails at start; the update's
// failure action applies once failures/slots passes max_failure_ratio.
func TestUpdateFailureAction(t *testing.T) {
	const replicas = 4
	cases := []struct {
		name    string
		action  api.UpdateConfig_FailureAction
		ratio   float64
		state   api.UpdateStatus_State
		message string
		broken  int // slots that received the broken image
		image   string
	}{
		{"pause at first failure", api.UpdateConfig_PAUSE, 0, api.UpdateStatus_PAUSED, "update paused due to failure or early termination of task ", 1, "web:broken"},
		{"pause past the ratio", api.UpdateConfig_PAUSE, 0.5, api.UpdateStatus_PAUSED, "update paused due to failure or early termination of task ", 3, "web:broken"},
		{"continue", api.UpdateConfig_CONTINUE, 0, api.UpdateStatus_COMPLETED, "update completed", 4, "web:broken"},
		{"rollback", api.UpdateConfig_ROLLBACK, 0, api.UpdateStatus_ROLLBACK_COMPLETED, "rollback completed", 1, "web:1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, 1)
			h.setCluster(100)
			h.addNode("n1", nil)
			h.o.Start()
			h.startAgents()
			h.fail["web:broken"] = true
			spec := replicated("web", "web:1", replicas)
			spec.Task.Restart = &api.RestartPolicy{Condition: api.RestartPolicy_ANY, Delay: int64(time.Second)}
			spec.Update = &api.UpdateConfig{Parallelism: 1, FailureAction: tc.action, MaxFailureRatio: tc.ratio, Monitor: int64(2 * time.Second)}
			svc := h.createService(spec)
			h.waitFor(10*time.Second, "running", func() bool { return h.running(svc) == replicas })
			h.updateService(svc, func(s *api.ServiceSpec) { s.Task.Container.Image = "web:broken" })
			var states []api.UpdateStatus_State
			var messages []string
			h.waitFor(2*time.Minute, tc.state.String(), func() bool {
				if st := h.st.Service(svc).GetUpdateStatus(); len(states) == 0 || states[len(states)-1] != st.GetState() {
					states = append(states, st.GetState())
					messages = append(messages, st.GetMessage())
				}
				return h.updateState(svc) == tc.state
			})
			if tc.action == api.UpdateConfig_ROLLBACK {
				want := []api.UpdateStatus_State{api.UpdateStatus_UNKNOWN, api.UpdateStatus_UPDATING,
					api.UpdateStatus_ROLLBACK_STARTED, api.UpdateStatus_ROLLBACK_COMPLETED}
				if !slices.Equal(states, want) || !strings.HasPrefix(messages[2], "update rolled back due to failure or early termination of task ") {
					t.Fatalf("states %v messages %q", states, messages)
				}
			}
			h.run(10 * time.Second)
			st := h.st.Service(svc).GetUpdateStatus()
			if st.State != tc.state || !strings.HasPrefix(st.Message, tc.message) {
				t.Fatalf("status %v %q", st.State, st.Message)
			}
			broken := map[uint64]bool{}
			for _, tk := range h.tasks(svc) {
				if tk.GetSpec().GetContainer().GetImage() == "web:broken" {
					broken[tk.Slot] = true
				}
			}
			if len(broken) != tc.broken {
				t.Fatalf("%d slots got the broken image, want %d\n%s", len(broken), tc.broken, h.dump())
			}
			if got := h.st.Service(svc).GetSpec().GetTask().GetContainer().GetImage(); got != tc.image {
				t.Fatalf("spec image %s, want %s", got, tc.image)
			}
			if tc.action == api.UpdateConfig_ROLLBACK {
				if h.runningImage(svc, "web:1") != replicas {
					t.Fatalf("not rolled back\n%s", h.dump())
				}
				s := h.o.Stats()
				if s.RollbacksStarted != 1 || s.RollbacksCompleted != 1 {
					t.Fatalf("stats %+v", s)
				}
			}
			if tc.state == api.UpdateStatus_PAUSED {
				// Paused: the slots not reached keep running the old image.
				if n := h.runningImage(svc, "web:1"); n != replicas-tc.broken {
					t.Fatalf("%d still on web:1, want %d", n, replicas-tc.broken)
				}
				if h.o.Stats().UpdatesPaused != 1 {
					t.Fatalf("paused %d", h.o.Stats().UpdatesPaused)
				}
			}
		})
	}
}

// TestUnhealthyCountsAsFailure: a new task that starts, then fails its
// health check within the monitor window, pauses the update.
func TestUnhealthyCountsAsFailure(t *testing.T) {
	h := newHarness(t, 1)
	h.addNode("n1", nil)
	h.o.Start()
	h.startAgents()
	h.sick["web:sick"] = true
	spec := replicated("web", "web:1", 3)
	spec.Update = &api.UpdateConfig{Parallelism: 1, Monitor: int64(5 * time.Second)}
	svc := h.createService(spec)
	h.waitFor(10*time.Second, "running", func() bool { return h.running(svc) == 3 })
	h.updateService(svc, func(s *api.ServiceSpec) { s.Task.Container.Image = "web:sick" })
	h.waitFor(30*time.Second, "paused", func() bool { return h.updateState(svc) == api.UpdateStatus_PAUSED })
	var sick *api.Task
	for _, tk := range h.tasks(svc) {
		if tk.GetStatus().GetUnhealthy() {
			sick = tk
		}
	}
	if sick == nil || !strings.HasSuffix(h.st.Service(svc).UpdateStatus.Message, sick.Id) {
		t.Fatalf("message %q should name the unhealthy task\n%s", h.st.Service(svc).UpdateStatus.Message, h.dump())
	}
}

// TestFailureAfterMonitorWindow: a task that fails after its monitor
// window does not count against the update.
func TestFailureAfterMonitorWindow(t *testing.T) {
	h := newHarness(t, 1)
	h.addNode("n1", nil)
	h.o.Start()
	spec := replicated("web", "web:1", 1)
	spec.Update = &api.UpdateConfig{Monitor: int64(2 * time.Second)}
	svc := h.createService(spec)
	h.settle()
	old := h.tasks(svc)[0]
	h.setStatus(old.Id, running, false)
	h.updateService(svc, func(s *api.ServiceSpec) { s.Task.Container.Image = "web:2" })
	h.run(100 * time.Millisecond)
	h.setStatus(old.Id, shutdown, false) // stop-first: the old one stops
	h.run(100 * time.Millisecond)
	var nt *api.Task
	for _, tk := range h.live(svc) {
		nt = tk
	}
	if nt == nil || nt.DesiredState != running || nt.Spec.Container.Image != "web:2" {
		t.Fatalf("new task not started\n%s", h.dump())
	}
	h.setStatus(nt.Id, running, false)
	h.run(3 * time.Second)
	h.setStatus(nt.Id, api.TaskState_TASK_STATE_FAILED, false)
	h.run(10 * time.Second)
	if s := h.updateState(svc); s != api.UpdateStatus_COMPLETED {
		t.Fatalf("state %v\n%s", s, h.dump())
	}
}

// TestManualRollback: the control API swaps spec and previous_spec and
// says ROLLBACK_STARTED; the orchestrator rolls back with the rollback
// policy and completes it.
func TestManualRollback(t *testing.T) {
	h := newHarness(t, 1)
	h.addNode("n1", nil)
	h.o.Start()
	h.startAgents()
	spec := replicated("web", "web:1", 4)
	spec.Update = &api.UpdateConfig{Parallelism: 4, Monitor: int64(time.Second)}
	spec.Rollback = &api.UpdateConfig{Parallelism: 1, Monitor: int64(time.Second), Order: api.UpdateConfig_START_FIRST}
	svc := h.createService(spec)
	h.waitFor(10*time.Second, "running", func() bool { return h.running(svc) == 4 })
	h.updateService(svc, func(s *api.ServiceSpec) { s.Task.Container.Image = "web:2" })
	h.waitFor(time.Minute, "updated", func() bool { return h.updateState(svc) == api.UpdateStatus_COMPLETED })
	h.rollbackService(svc)
	maxRunning := 0
	h.waitFor(time.Minute, "rolled back", func() bool {
		maxRunning = max(maxRunning, h.running(svc))
		return h.updateState(svc) == api.UpdateStatus_ROLLBACK_COMPLETED
	})
	if h.runningImage(svc, "web:1") != 4 {
		t.Fatalf("not rolled back\n%s", h.dump())
	}
	if maxRunning > 5 {
		t.Fatalf("rollback ran %d at once: it must use the rollback policy (parallelism 1)", maxRunning)
	}
	if st := h.st.Service(svc).UpdateStatus; st.Message != "rollback completed" || st.SpecVersion != 3 {
		t.Fatalf("status %v", st)
	}
	if s := h.o.Stats(); s.RollbacksStarted != 1 || s.RollbacksCompleted != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// TestScaleDoesNotRoll: a spec change that leaves the task spec alone
// (replicas) bumps spec_version but replaces no task.
func TestScaleDoesNotRoll(t *testing.T) {
	h := newHarness(t, 1)
	h.addNode("n1", nil)
	h.o.Start()
	h.startAgents()
	svc := h.createService(replicated("web", "web:1", 2))
	h.waitFor(10*time.Second, "running", func() bool { return h.running(svc) == 2 })
	before := h.live(svc)
	h.scale(svc, 3)
	h.waitFor(10*time.Second, "running", func() bool { return h.running(svc) == 3 })
	for _, tk := range before {
		if !live(h.st.Task(tk.Id)) {
			t.Fatalf("task %s was replaced by a scale", tk.Id)
		}
	}
	if h.st.Service(svc).UpdateStatus != nil {
		t.Fatalf("update status %v", h.st.Service(svc).UpdateStatus)
	}
}

// TestGlobalRollingUpdate: a global service rolls node by node.
func TestGlobalRollingUpdate(t *testing.T) {
	h := newHarness(t, 1)
	for i := 1; i <= 4; i++ {
		h.addNode(fmt.Sprintf("n%d", i), nil)
	}
	h.o.Start()
	h.startAgents()
	spec := global("agent", "agent:1")
	spec.Update = &api.UpdateConfig{Parallelism: 1, Monitor: int64(time.Second)}
	svc := h.createService(spec)
	h.waitFor(10*time.Second, "running", func() bool { return h.running(svc) == 4 })
	h.updateService(svc, func(s *api.ServiceSpec) { s.Task.Container.Image = "agent:2" })
	h.waitFor(time.Minute, "updated", func() bool { return h.updateState(svc) == api.UpdateStatus_COMPLETED })
	if h.runningImage(svc, "agent:2") != 4 || len(h.live(svc)) != 4 {
		t.Fatalf("not updated\n%s", h.dump())
	}
}

// TestUpdateLeavesRestartedSlot: when a dirty slot's task fails in the
// pass that would take the slot into the next batch, the restart (with the
// new spec) replaces it and the update does not add a second task.
func TestUpdateLeavesRestartedSlot(t *testing.T) {
	h := newHarness(t, 1)
	h.addNode("n1", nil)
	h.o.Start()
	spec := replicated("web", "web:1", 2)
	spec.Task.Restart = &api.RestartPolicy{Condition: api.RestartPolicy_ANY}
	spec.Update = &api.UpdateConfig{Parallelism: 1, Delay: int64(time.Hour), Monitor: int64(time.Second)}
	svc := h.createService(spec)
	h.settle()
	for _, tk := range h.tasks(svc) {
		h.setStatus(tk.Id, running, false)
	}
	h.updateService(svc, func(s *api.ServiceSpec) { s.Task.Container.Image = "web:2" })
	h.run(100 * time.Millisecond)
	// Batch 1 took one slot (stop-first): its old task stops, the new one
	// runs.
	for _, tk := range h.tasks(svc) {
		if tk.DesiredState == shutdown {
			h.setStatus(tk.Id, shutdown, false)
		}
	}
	h.run(100 * time.Millisecond)
	for _, tk := range h.live(svc) {
		if tk.Spec.Container.Image == "web:2" {
			h.setStatus(tk.Id, running, false)
		}
	}
	h.run(100 * time.Millisecond)
	var other *api.Task
	for _, tk := range h.live(svc) {
		if tk.Spec.Container.Image == "web:1" {
			other = tk
		}
	}
	if other == nil {
		t.Fatalf("no slot left to update\n%s", h.dump())
	}
	// The other slot's task fails, and the next batch is due in the same
	// pass.
	h.setStatus(other.Id, api.TaskState_TASK_STATE_FAILED, false)
	h.o.DueNextBatch(svc)
	h.run(100 * time.Millisecond)
	if n := len(h.st.TasksBySlot(svc, other.Slot)); n != 2 {
		t.Fatalf("slot %d has %d tasks, want the failed one and one replacement\n%s", other.Slot, n, h.dump())
	}
}

// TestUpdateBatchWriteLost: the transaction that starts a batch loses a
// race and applies nothing. The batch's tasks were never created, so their
// slots are still to update: the update retries them and completes only
// once every slot runs the new spec.
func TestUpdateBatchWriteLost(t *testing.T) {
	const replicas = 4
	h := newHarness(t, 1)
	hp := &hookProposer{next: store.NewLoopback(h.st, h.n)}
	h.st.SetProposer(hp)
	h.addNode("n1", nil)
	h.addNode("n2", nil)
	h.o.Start()
	h.startAgents()
	spec := replicated("web", "web:1", replicas)
	spec.Update = &api.UpdateConfig{Parallelism: 2, Monitor: int64(time.Second)}
	svc := h.createService(spec)
	h.waitFor(10*time.Second, "running", func() bool { return h.running(svc) == replicas })
	h.updateService(svc, func(s *api.ServiceSpec) { s.Task.Container.Image = "web:2" })
	// Just before the orchestrator proposes the first batch, another writer
	// changes every task of the service: the batch's shutdowns no longer
	// match, and its whole transaction is refused.
	hp.hook = func() { h.touchTasks(svc) }
	h.waitFor(2*time.Minute, "update completed", func() bool { return h.updateState(svc) == api.UpdateStatus_COMPLETED })
	if s := h.o.Stats(); s.Conflicts == 0 {
		t.Fatalf("no write conflicted; the test does not test what it says: %+v", s)
	}
	h.waitFor(10*time.Second, "every slot on web:2", func() bool {
		return h.runningImage(svc, "web:2") == replicas && h.running(svc) == replicas
	})
	// The lost batch's tasks were to start once the old ones stopped; the
	// orchestrator forgot them with the failed write.
	if n := h.o.PendingPromotions(); n != 0 {
		t.Fatalf("%d start times kept for tasks that do not wait to start", n)
	}
}
