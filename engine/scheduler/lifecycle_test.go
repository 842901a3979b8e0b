package scheduler_test

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/scheduler"
	"github.com/swarmsim/swarmsim/engine/store"
)

// TestPendingReason: the reason counts the first failing filter of every
// node, and is written only when it changes: retries that reach the same
// verdict write nothing.
func TestPendingReason(t *testing.T) {
	h := newHarness(t)
	defer h.k.Activate()()
	small := resources(4e9, gib)
	h.addNodes(
		mkNode("n1", labels("zone", "a"), small), mkNode("n2", labels("zone", "a"), small),
		mkNode("n3", labels("zone", "a"), small),
		mkNode("n4", labels("zone", "a"), down), mkNode("n5", labels("zone", "a"), down),
		mkNode("n6", labels("zone", "b")),
	)
	ts := spec(0, 2*gib, "node.labels.zone==a")
	h.addService("svc", ts)
	h.s.Start()
	id := h.addTasks("svc", ts, 1)[0]
	want := "no suitable node: 3 nodes lack memory, 2 nodes are not ready, 1 node fails constraint node.labels.zone==a"
	h.assertPending(want, id)
	// Writing the reason comes back as an event that changes nothing the
	// placement reads: no second turn.
	if got := h.s.Stats().Turns; got != 1 {
		t.Fatalf("%d turns, want 1", got)
	}
	version := h.st.Task(id).Meta.Version
	writes := h.s.Stats().ReasonWrites
	turns := h.s.Stats().Turns

	// A node change that cannot help (a status message) does not even
	// retry; one that might (a new label) retries and writes nothing.
	h.setNode("n6", func(n *api.Node) { n.Status.Message = "heartbeat" })
	if st := h.s.Stats(); st.Turns != turns {
		t.Fatalf("a status message caused %d turns", st.Turns-turns)
	}
	h.setNode("n6", func(n *api.Node) { n.Spec.Labels["rack"] = "r1" })
	st := h.s.Stats()
	if st.Turns == turns {
		t.Fatal("a label change did not retry the waiting task")
	}
	if st.ReasonWrites != writes || h.st.Task(id).Meta.Version != version {
		t.Fatalf("same verdict rewritten: %d reason writes, version %d -> %d",
			st.ReasonWrites-writes, version, h.st.Task(id).Meta.Version)
	}
	// A change of verdict is written once.
	h.setNode("n4", func(n *api.Node) {
		n.Status.State = api.NodeState_NODE_STATE_READY
		n.Description.Resources = &api.Resources{}
	})
	h.advance(scheduler.RetryInterval) // retries are at least this far apart
	h.assertPending("no suitable node: 4 nodes lack memory, 1 node is not ready, 1 node fails constraint node.labels.zone==a", id)
	if got := h.s.Stats().ReasonWrites - writes; got != 1 {
		t.Fatalf("%d reason writes, want 1", got)
	}
	// Nothing keeps the loop busy while the task waits.
	h.advance(time.Minute)
	if n := h.k.Pending(); n != 0 {
		t.Fatalf("%d events pending while the task waits", n)
	}
}

// TestRetryWhenCapacityAppears: a task no node fits waits, without a busy
// loop, and is placed when a node joins, a node becomes ready or a task
// frees its resources.
func TestRetryWhenCapacityAppears(t *testing.T) {
	h := newHarness(t)
	defer h.k.Activate()()
	h.addNodes(mkNode("n1", resources(1e9, gib)))
	ts := spec(1e9, 0)
	h.addService("svc", ts)
	h.s.Start()
	ids := h.addTasks("svc", ts, 3)
	h.assertAssigned(ids[0])
	h.assertPending("no suitable node: 1 node lacks CPU", ids[1:]...)
	turns := h.s.Stats().Turns
	h.advance(10 * time.Minute)
	if st := h.s.Stats(); st.Turns != turns || h.k.Pending() != 0 {
		t.Fatalf("waiting tasks kept the loop busy: %d turns, %d events pending", st.Turns-turns, h.k.Pending())
	}

	// A task's resources free up when it completes.
	h.setStatus(ids[0], api.TaskState_TASK_STATE_RUNNING)
	h.setStatus(ids[0], api.TaskState_TASK_STATE_COMPLETE)
	h.assertAssigned(ids[1])
	h.assertPending("no suitable node: 1 node lacks CPU", ids[2])

	// A node that joins is used at once.
	h.addNodes(mkNode("n2", resources(1e9, gib), down))
	h.advance(scheduler.RetryInterval)
	h.assertPending("no suitable node: 1 node is not ready, 1 node lacks CPU", ids[2])
	h.setNode("n2", func(n *api.Node) { n.Status.State = api.NodeState_NODE_STATE_READY })
	h.advance(scheduler.RetryInterval)
	h.assertAssigned(ids[2])
	if got := h.nodeOf(ids[2]); got != "n2" {
		t.Fatalf("task on %s, want n2", got)
	}

	// A task whose desired state leaves RUNNING frees its node too.
	more := h.addTasks("svc", ts, 1)
	h.assertPending("no suitable node: 2 nodes lack CPU", more...)
	h.update(func(tx *store.Tx) error {
		t := h.st.Task(ids[1]).ShallowCopy()
		t.DesiredState = api.TaskState_TASK_STATE_SHUTDOWN
		return tx.Update(t)
	})
	h.advance(scheduler.RetryInterval)
	h.assertAssigned(more...)
}

// TestInFlight: while a batch is proposed and not applied, its decisions
// hold their nodes' capacity, no task is assigned twice, and an assignment
// that does not take (the task changed first) goes back to be scheduled.
func TestInFlight(t *testing.T) {
	h := newHarness(t)
	defer h.k.Activate()()
	h.addNodes(mkNode("n1", resources(1e9, gib)), mkNode("n2", resources(1e9, gib)))
	ts := spec(1e9, 0)
	h.addService("svc", ts)
	h.s.Start()
	h.hold = true

	create := func(k int) []string {
		var ids []string
		h.st.Update(func(tx *store.Tx) error {
			for range k {
				t := h.pendingTask("svc", ts, "")
				ids = append(ids, t.Id)
				if err := tx.Create(t); err != nil {
					return err
				}
			}
			return nil
		}, nil)
		h.releaseLast() // the creation, not what the scheduler proposes after it
		return ids
	}
	first := create(2)
	if st := h.s.Stats(); st.InFlight != 2 || len(h.held) != 1 {
		t.Fatalf("in flight %d, held proposals %d; want 2 assignments in one proposal", st.InFlight, len(h.held))
	}
	// More tasks while the batch is in flight: the in-flight decisions
	// hold both nodes, so the new task waits instead of doubling up.
	second := create(1)
	if len(h.held) != 2 {
		t.Fatalf("%d proposals held, want the assignments and a pending reason", len(h.held))
	}
	h.release()
	h.assertAssigned(first...)
	h.assertPending("no suitable node: 2 nodes lack CPU", second...)
	if per := h.perNode(first); !maps.Equal(per, map[string]int{"n1": 1, "n2": 1}) {
		t.Fatalf("per node %v, want one task on each", per)
	}

	// An assignment overtaken by another writer's change does not take;
	// the task is scheduled again from its new version.
	h.addNodesHeld(mkNode("n3", resources(1e9, gib)))
	if len(h.held) != 1 {
		t.Fatalf("%d proposals held, want the assignment of the waiting task", len(h.held))
	}
	h.st.Update(func(tx *store.Tx) error {
		t := h.st.Task(second[0]).ShallowCopy()
		t.SpecVersion = 2
		return tx.Update(t)
	}, nil)
	h.releaseLast() // the other writer's change applies first
	h.release()     // the stale assignment is skipped; the new one applies
	h.assertAssigned(second...)
	if got := h.nodeOf(second[0]); got != "n3" {
		t.Fatalf("task on %s, want n3", got)
	}
	if st := h.s.Stats(); st.Skipped != 1 || st.InFlight != 0 || st.Assigned != 3 {
		t.Fatalf("stats %+v, want 1 skipped, 0 in flight, 3 assigned", st)
	}
	if len(h.st.TasksByNode("n3")) != 1 {
		t.Fatalf("n3 holds %d tasks, want 1", len(h.st.TasksByNode("n3")))
	}
}

// releaseFirst applies the oldest held proposal and settles, holding what
// follows.
func (h *harness) releaseFirst() {
	p := h.held[0]
	h.held = h.held[1:]
	h.lb.Propose(p.data, p.done)
	h.settle()
}

// releaseLast applies the newest held proposal and settles.
func (h *harness) releaseLast() {
	p := h.held[len(h.held)-1]
	h.held = h.held[:len(h.held)-1]
	h.lb.Propose(p.data, p.done)
	h.settle()
}

// addNodesHeld creates nodes while proposals are held.
func (h *harness) addNodesHeld(nodes ...*api.Node) {
	h.st.Update(func(tx *store.Tx) error {
		for _, n := range nodes {
			if err := tx.Create(n); err != nil {
				return err
			}
		}
		return nil
	}, nil)
	h.releaseLast()
}

// TestPreplaced: a PENDING task that already names its node (a global
// service's) is assigned there if it fits, or waits with a reason naming
// the node; it never moves.
func TestPreplaced(t *testing.T) {
	h := newHarness(t)
	defer h.k.Activate()()
	h.addNodes(mkNode("n1"), mkNode("n2"), mkNode("n3", resources(4e9, gib)), mkNode("n4", down))
	ts := spec(0, 2*gib)
	h.addService("global", ts)
	h.s.Start()
	ids := map[string]string{}
	h.update(func(tx *store.Tx) error {
		for _, n := range []string{"n1", "n2", "n3", "n4", "n9"} {
			t := h.pendingTask("global", ts, n)
			ids[n] = t.Id
			if err := tx.Create(t); err != nil {
				return err
			}
		}
		return nil
	})
	for _, n := range []string{"n1", "n2"} {
		h.assertAssigned(ids[n])
		if got := h.nodeOf(ids[n]); got != n {
			t.Fatalf("pre-placed task moved from %s to %s", n, got)
		}
	}
	h.assertPending("node n3 lacks memory", ids["n3"])
	h.assertPending("node n4 is not ready", ids["n4"])
	h.assertPending("node n9 is not in the cluster", ids["n9"])
	if got := h.nodeOf(ids["n3"]); got != "n3" {
		t.Fatalf("waiting pre-placed task on %q, want it kept on n3", got)
	}

	// When n3 grows, its task is assigned there and the reason goes.
	h.setNode("n3", func(n *api.Node) { n.Description.Resources = &api.Resources{NanoCpus: 4e9, MemoryBytes: 8 * gib} })
	h.assertAssigned(ids["n3"])

	// A pre-placed task has the first claim on its node: a replicated task
	// created with it must not take the room it needs.
	h.addNodes(mkNode("n5", resources(4e9, 2*gib)))
	h.addService("replicated", ts)
	var global, replicated string
	h.update(func(tx *store.Tx) error {
		r := h.pendingTask("replicated", ts, "")
		g := h.pendingTask("global", ts, "n5")
		replicated, global = r.Id, g.Id
		if err := tx.Create(r); err != nil {
			return err
		}
		return tx.Create(g)
	})
	h.assertAssigned(global)
	if got := h.nodeOf(global); got != "n5" {
		t.Fatalf("global task on %s, want n5", got)
	}
	if got := h.nodeOf(replicated); got == "n5" {
		t.Fatal("replicated task took the pre-placed task's node")
	}
}

// TestStopStart: after Stop the scheduler writes nothing, whatever is in
// flight; Start rebuilds its view from the store.
func TestStopStart(t *testing.T) {
	h := newHarness(t)
	defer h.k.Activate()()
	h.addNodes(mkNode("n1", resources(3e9, gib)))
	ts := spec(1e9, 0)
	h.addService("svc", ts)
	watchers := h.st.Stats().Watchers
	h.s.Start()
	if got := h.st.Stats().Watchers; got != watchers+1 {
		t.Fatalf("%d watchers after Start, want %d", got, watchers+1)
	}
	h.assertAssigned(h.addTasks("svc", ts, 1)...)

	// Stop with a batch in flight: the batch may still commit (it was
	// proposed), but nothing follows it.
	h.hold = true
	var inflight []string
	h.st.Update(func(tx *store.Tx) error {
		t := h.pendingTask("svc", ts, "")
		inflight = append(inflight, t.Id)
		return tx.Create(t)
	}, nil)
	h.releaseFirst()
	if len(h.held) != 1 {
		t.Fatalf("%d proposals held, want the assignment", len(h.held))
	}
	h.s.Stop()
	h.hold = false
	if got := h.st.Stats().Watchers; got != watchers {
		t.Fatalf("%d watchers after Stop, want %d", got, watchers)
	}
	applied := h.st.AppliedIndex()
	h.release()
	h.assertAssigned(inflight...)
	stopped := h.addTasks("svc", ts, 2)
	h.advance(time.Minute)
	if got := h.st.AppliedIndex(); got != applied+2 {
		t.Fatalf("applied index %d, want %d: the stopped scheduler wrote", got, applied+2)
	}
	h.assertPending("", stopped...)

	// Start again: the store shows two tasks holding n1's CPU, so of the
	// two waiting tasks one fits.
	h.s.Start()
	h.settle()
	h.assertAssigned(stopped[0])
	h.assertPending("no suitable node: 1 node lacks CPU", stopped[1])
	h.s.Start() // no-op
	h.s.Stop()
	h.s.Stop() // no-op
}

// TestRestore: after a Restore replaced the store's content, the view is
// read again.
func TestRestore(t *testing.T) {
	h := newHarness(t)
	defer h.k.Activate()()
	h.addNodes(mkNode("n1", resources(1e9, gib)))
	ts := spec(1e9, 0)
	h.addService("svc", ts)
	ids := h.addTasks("svc", ts, 2)
	snap, err := h.st.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	h.s.Start()
	h.settle()
	h.assertAssigned(ids[0])
	h.assertPending("no suitable node: 1 node lacks CPU", ids[1])
	if err := h.st.Restore(snap); err != nil {
		t.Fatal(err)
	}
	h.settle()
	// The restored store holds both tasks pending and n1 empty.
	h.assertAssigned(ids[0])
	h.assertPending("no suitable node: 1 node lacks CPU", ids[1])
}

// TestBatches: a large turn is committed in proposals of at most
// SetMaxBatch actions.
func TestBatches(t *testing.T) {
	h := newHarness(t)
	defer h.k.Activate()()
	h.addNodes(mkNode("n1"), mkNode("n2"))
	ts := spec(0, 0)
	h.addService("svc", ts)
	h.s.SetMaxBatch(3)
	h.s.Start()
	applied := h.st.AppliedIndex()
	ids := h.addTasks("svc", ts, 10)
	h.assertAssigned(ids...)
	st := h.s.Stats()
	if st.Batches != 4 || st.Assigned != 10 || st.Decisions != 10 || st.Turns != 1 {
		t.Fatalf("stats %+v, want 10 decisions in 4 batches of one turn", st)
	}
	if got := h.st.AppliedIndex() - applied; got != 5 {
		t.Fatalf("%d entries applied, want 1 creation and 4 batches", got)
	}
	if st.Latency.Count != 10 {
		t.Fatalf("latency histogram holds %d observations, want 10", st.Latency.Count)
	}
}

// TestDeterministic: the same input gives the same assignments.
func TestDeterministic(t *testing.T) {
	run := func() map[string]string {
		h := newHarness(t)
		defer h.k.Activate()()
		var nodes []*api.Node
		for i := range 30 {
			nodes = append(nodes, mkNode(fmt.Sprintf("node-%02d", (i*7)%30),
				labels("zone", string(rune('a'+i%3)), "tier", []string{"web", "db"}[i%2]),
				resources(int64(1+i%4)*1e9, 4*gib)))
		}
		h.addNodes(nodes...)
		specs := map[string]*api.TaskSpec{
			"plain":  spec(5e8, gib),
			"picky":  spec(1e8, 0, "node.labels.tier==db"),
			"spread": spreadSpec(2e8, "node.labels.zone"),
		}
		for _, name := range sortedKeys(specs) {
			h.addService(name, specs[name])
		}
		h.s.Start()
		var ids []string
		for round := range 3 {
			for _, name := range sortedKeys(specs) {
				ids = append(ids, h.addTasks(name, specs[name], 10+round*5)...)
			}
		}
		out := map[string]string{}
		for _, id := range ids {
			out[id] = h.nodeOf(id) + "|" + h.reason(id)
		}
		return out
	}
	a, b := run(), run()
	if !maps.Equal(a, b) {
		for _, id := range sortedKeys(a) {
			if a[id] != b[id] {
				t.Errorf("task %s: %q then %q", id, a[id], b[id])
			}
		}
	}
}

// TestHistogram checks bucket boundaries and quantiles.
func TestHistogram(t *testing.T) {
	var h scheduler.Histogram
	if h.Quantile(0.5) != 0 {
		t.Fatal("empty histogram has a quantile")
	}
	for _, d := range []time.Duration{0, time.Millisecond, 3 * time.Millisecond, 20 * time.Second, time.Hour, -time.Second} {
		h.Observe(d)
	}
	if h.Count != 6 || h.Counts[0] != 3 || h.Counts[2] != 1 || h.Counts[len(h.Counts)-2] != 0 || h.Counts[len(h.Counts)-1] != 1 {
		t.Fatalf("counts %v", h.Counts)
	}
	if got := h.Quantile(0.5); got != time.Millisecond {
		t.Fatalf("median bound %v, want 1ms", got)
	}
	if got := h.Quantile(1); got != time.Minute {
		t.Fatalf("max bound %v, want the last bound", got)
	}
	if i := slices.Index(scheduler.LatencyBuckets[:], 30*time.Second); h.Counts[i] != 1 {
		t.Fatalf("20s not in the 30s bucket: %v", h.Counts)
	}
}

// TestProposalErrors: when proposals fail (leadership lost, a proposal
// refused), the tasks wait and are retried after a delay, not in a loop.
func TestProposalErrors(t *testing.T) {
	h := newHarness(t)
	defer h.k.Activate()()
	h.addNodes(mkNode("n1"))
	ts := spec(0, 0)
	h.addService("svc", ts)
	h.s.Start()
	h.hold = true
	var ids []string
	h.st.Update(func(tx *store.Tx) error {
		for range 3 {
			t := h.pendingTask("svc", ts, "")
			ids = append(ids, t.Id)
			if err := tx.Create(t); err != nil {
				return err
			}
		}
		return nil
	}, nil)
	h.releaseLast()
	h.hold = false
	h.fail = errors.New("not the leader")
	// The held batch fails too: the proposer says it will not apply.
	p := h.held[0]
	h.held = nil
	h.n.Post(func() { p.done.Done(nil, h.fail) })
	h.settle()
	st := h.s.Stats()
	if st.ProposalErrors != 1 || st.Waiting != 3 || st.InFlight != 0 {
		t.Fatalf("stats %+v, want 1 error and 3 tasks waiting", st)
	}
	h.advance(10 * time.Second)
	st = h.s.Stats()
	if st.Turns > 12 || st.ProposalErrors < 5 {
		t.Fatalf("%d turns and %d errors in 10s: want a retry about every second", st.Turns, st.ProposalErrors)
	}
	h.assertPending("", ids...)
	h.fail = nil
	h.advance(2 * time.Second)
	h.assertAssigned(ids...)
	if per := h.perNode(ids); per["n1"] != 3 {
		t.Fatalf("per node %v", per)
	}
	if st := h.s.Stats(); st.Waiting != 0 || st.InFlight != 0 || st.Queued != 0 {
		t.Fatalf("stats %+v, want nothing left", st)
	}
}

// TestServiceDeleted: deleting a service while its tasks still run keeps
// their reservations until they stop.
func TestServiceDeleted(t *testing.T) {
	h := newHarness(t)
	defer h.k.Activate()()
	h.addNodes(mkNode("n1", resources(1e9, gib)))
	ts := spec(1e9, 0)
	h.addService("svc", ts)
	h.addService("next", ts)
	h.s.Start()
	old := h.addTasks("svc", ts, 1)
	h.update(func(tx *store.Tx) error { return tx.Delete(store.KindService, "svc", 0) })
	next := h.addTasks("next", ts, 1)
	h.assertPending("no suitable node: 1 node lacks CPU", next...)
	h.update(func(tx *store.Tx) error { return tx.Delete(store.KindTask, old[0], 0) })
	h.assertAssigned(next...)
}

// TestRetryInterval: retries of waiting tasks are at least RetryInterval
// apart, however often capacity changes; new tasks do not wait.
func TestRetryInterval(t *testing.T) {
	h := newHarness(t)
	defer h.k.Activate()()
	h.addNodes(mkNode("n1", resources(1e9, gib)))
	ts := spec(2e9, 0)
	h.addService("svc", ts)
	h.s.Start()
	waiting := h.addTasks("svc", ts, 1)
	h.assertPending("no suitable node: 1 node lacks CPU", waiting...)
	turns := h.s.Stats().Turns
	for i := range 5 {
		h.addNodes(mkNode(fmt.Sprintf("m%d", i), resources(1e9, gib)))
	}
	if got := h.s.Stats().Turns - turns; got != 1 {
		t.Fatalf("%d retries for 5 joins at one instant, want 1", got)
	}
	// A new task is placed at once even while retries are held back.
	small := spec(1e9, 0)
	h.addService("small", small)
	h.assertAssigned(h.addTasks("small", small, 1)...)
	h.assertPending("no suitable node: 2 nodes lack CPU", waiting...)
	// The joins after the first retry are seen by the next one.
	h.advance(scheduler.RetryInterval)
	if got := h.s.Stats().Turns - turns; got != 3 {
		t.Fatalf("%d turns, want the retry, the new task and one more retry", got)
	}
	h.assertPending("no suitable node: 6 nodes lack CPU", waiting...)
	if n := h.k.Pending(); n != 0 {
		t.Fatalf("%d events pending after the retries", n)
	}
}

// TestStopDuringCommit: a synchronous proposer applies each chunk inside
// Update, so a watcher that stops the scheduler (leadership lost while
// applying) runs in the middle of a commit; no chunk may follow.
func TestStopDuringCommit(t *testing.T) {
	h := newHarness(t)
	defer h.k.Activate()()
	h.st.SetProposer(store.NewSyncLoopback(h.st))
	h.addNodes(mkNode("n1"))
	ts := spec(0, 0)
	h.addService("svc", ts)
	h.s.SetMaxBatch(2)
	h.s.Start()
	applied := 0
	h.st.Watch(func(evs []store.Event) {
		for _, e := range evs {
			if t, ok := e.New.(*api.Task); ok && t.NodeId != "" {
				applied++
				h.s.Stop()
			}
		}
	})
	ids := h.addTasks("svc", ts, 6)
	h.advance(time.Minute)
	if applied != 2 {
		t.Fatalf("%d assignments applied, want the first chunk's 2 only", applied)
	}
	if got := h.perNode(ids)[""]; got != 4 {
		t.Fatalf("%d tasks left pending, want 4", got)
	}
}
