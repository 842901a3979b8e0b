package orchestrator

import (
	"testing"
	"time"
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
