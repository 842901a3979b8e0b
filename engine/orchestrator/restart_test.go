package orchestrator_test

import (
	"testing"
	"time"

	"github.com/swarmsim/swarmsim/engine/api"
)

// TestRestartPolicy runs one replica whose container always fails (or
// always exits 0) and counts the tasks its slot went through.
func TestRestartPolicy(t *testing.T) {
	sec := int64(time.Second)
	cases := []struct {
		name   string
		policy *api.RestartPolicy
		exits  bool // the container exits 0 instead of failing
		run    time.Duration
		tasks  int // tasks the slot had (1 = never restarted); 0: it never gives up
	}{
		{"none: no restart", &api.RestartPolicy{Condition: api.RestartPolicy_NONE}, false, 10 * time.Second, 1},
		{"on-failure restarts failures", &api.RestartPolicy{Condition: api.RestartPolicy_ON_FAILURE, Delay: sec, MaxAttempts: 3}, false, 30 * time.Second, 4},
		{"on-failure leaves a completion", &api.RestartPolicy{Condition: api.RestartPolicy_ON_FAILURE}, true, 10 * time.Second, 1},
		{"any restarts a completion", &api.RestartPolicy{Condition: api.RestartPolicy_ANY, Delay: sec, MaxAttempts: 2}, true, 30 * time.Second, 3},
		{"max attempts without window", &api.RestartPolicy{Condition: api.RestartPolicy_ANY, Delay: 2 * sec, MaxAttempts: 1}, false, 30 * time.Second, 2},
		// Failures 2s apart, a 1s window: each failure sees only itself.
		{"window forgets old attempts", &api.RestartPolicy{Condition: api.RestartPolicy_ANY, Delay: 2 * sec, MaxAttempts: 1, Window: sec}, false, 21 * time.Second, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, 1)
			h.setCluster(100) // keep every task, to count them
			h.addNode("n1", nil)
			h.o.Start()
			h.startAgents()
			spec := replicated("app", "app:1", 1)
			spec.Task.Restart = tc.policy
			if tc.exits {
				h.exits["app:1"] = true
			} else {
				h.fail["app:1"] = true
			}
			svc := h.createService(spec)
			h.run(tc.run)
			if tc.tasks == 0 {
				if n, l := len(h.tasks(svc)), len(h.live(svc)); n < 8 || l != 1 {
					t.Fatalf("%d tasks, %d live: the slot should keep restarting\n%s", n, l, h.dump())
				}
				return
			}
			if got := len(h.tasks(svc)); got != tc.tasks {
				t.Fatalf("slot went through %d tasks, want %d\n%s", got, tc.tasks, h.dump())
			}
			if n := len(h.live(svc)); n != 0 {
				// The last task ended and may not restart: nothing live,
				// and no other slot took its place.
				t.Fatalf("%d live tasks remain\n%s", n, h.dump())
			}
			for _, tk := range h.tasks(svc) {
				if tk.Slot != 1 {
					t.Fatalf("a new slot was opened: %d", tk.Slot)
				}
			}
		})
	}
}

// TestRestartDelay: the replacement exists at once, desired READY, and is
// promoted to RUNNING when the delay has passed, not before.
func TestRestartDelay(t *testing.T) {
	h := newHarness(t, 1)
	h.addNode("n1", nil)
	h.o.Start()
	spec := replicated("app", "app:1", 1)
	spec.Task.Restart = &api.RestartPolicy{Condition: api.RestartPolicy_ANY, Delay: int64(3 * time.Second)}
	svc := h.createService(spec)
	h.settle()
	first := h.tasks(svc)[0]
	h.setStatus(first.Id, api.TaskState_TASK_STATE_FAILED, false)
	failedAt := h.k.Now()
	h.run(10 * time.Millisecond)
	live := h.live(svc)
	if len(live) != 1 || live[0].DesiredState != ready || live[0].Slot != 1 {
		t.Fatalf("want one READY replacement in slot 1\n%s", h.dump())
	}
	if h.st.Task(first.Id).DesiredState != shutdown {
		t.Fatalf("failed task not shut down")
	}
	repl := live[0].Id
	h.waitFor(10*time.Second, "promoted", func() bool { return h.st.Task(repl).DesiredState == running })
	if waited := h.k.Now() - failedAt; waited < 3*time.Second || waited > 3*time.Second+100*time.Millisecond {
		t.Fatalf("promoted after %v, want 3s", waited)
	}
	if h.o.Stats().TasksPromoted != 1 || h.o.Stats().Restarts != 1 {
		t.Fatalf("stats %+v", h.o.Stats())
	}
}

// TestRestartDefaultPolicy: a task spec without a restart policy restarts
// on any end after 5s.
func TestRestartDefaultPolicy(t *testing.T) {
	h := newHarness(t, 1)
	h.addNode("n1", nil)
	h.o.Start()
	svc := h.createService(replicated("app", "app:1", 1))
	h.settle()
	first := h.tasks(svc)[0]
	h.setStatus(first.Id, complete, false)
	h.run(4900 * time.Millisecond)
	if n := h.count(svc, func(t *api.Task) bool { return t.DesiredState == running }); n != 0 {
		t.Fatalf("promoted before 5s\n%s", h.dump())
	}
	h.run(200 * time.Millisecond)
	if n := h.count(svc, func(t *api.Task) bool { return t.DesiredState == running }); n != 1 {
		t.Fatalf("not promoted after 5s\n%s", h.dump())
	}
}
