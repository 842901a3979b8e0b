package dispatcher_test

import (
	"slices"
	"testing"
	"time"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/dispatcher"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/store"
	"github.com/swarmsim/swarmsim/sim"
)

func TestRegistrationCreatesReadyNode(t *testing.T) {
	c := newCluster(t, clusterOpts{seed: 1, workers: 3})
	defer c.k.Activate()()
	c.run(time.Second)
	for _, w := range c.workers {
		n := c.st.Node(string(w.id))
		if n == nil {
			t.Fatalf("%s: no node in the store", w.id)
		}
		if n.Status.State != ready || n.Status.Addr != string(w.id) {
			t.Errorf("%s: status %v", w.id, n.Status)
		}
		if n.Description.GetHostname() != string(w.id) || n.Description.GetResources().GetNanoCpus() != 4e9 {
			t.Errorf("%s: description %v", w.id, n.Description)
		}
		if n.Role != api.NodeRole_NODE_ROLE_WORKER || n.Spec.GetName() != string(w.id) {
			t.Errorf("%s: role %v spec %v", w.id, n.Role, n.Spec)
		}
		if w.agent.SessionID() == "" {
			t.Errorf("%s: agent has no session", w.id)
		}
	}
	st := c.disp["m1"].Stats()
	if st.Sessions != 3 || st.SessionsOpened != 3 || st.NodeWrites != 3 {
		t.Errorf("stats %+v", st)
	}
}

func TestHeartbeatsKeepNodesReady(t *testing.T) {
	c := newCluster(t, clusterOpts{seed: 2, workers: 5})
	defer c.k.Activate()()
	c.run(2 * time.Minute)
	if n := c.readyNodes(); n != 5 {
		t.Fatalf("%d nodes ready, want 5", n)
	}
	st := c.disp["m1"].Stats()
	// 5 workers beating every 5s ± 25% for two minutes.
	if st.HeartbeatsReceived < 5*18 || st.HeartbeatsReceived > 5*33 || st.NodesDown != 0 || st.UnknownSessions != 0 {
		t.Errorf("stats %+v", st)
	}
	// Heartbeats never reach the store: only the three registrations did.
	if p := c.st.Stats().Proposals; p > 2 {
		t.Errorf("%d proposals for registrations and heartbeats", p)
	}
}

// A crashed worker is DOWN once it missed its grace (3 periods, plus up to
// one sweep interval), not before; it is READY again when it comes back.
func TestCrashedWorkerGoesDownAndReturns(t *testing.T) {
	c := newCluster(t, clusterOpts{seed: 3, workers: 3})
	defer c.k.Activate()()
	c.run(10 * time.Second)
	w := c.workers[1]
	c.crash(w)
	crashed := c.k.Now()
	// The last heartbeat came at most 6.25s (a jittered period) before the
	// crash, so the grace of 15s cannot end before 8.75s after it.
	c.run(8 * time.Second)
	if c.nodeState(w.id) != ready {
		t.Fatalf("down too early")
	}
	if !c.runUntil(10*time.Second, func() bool { return c.nodeState(w.id) == down }) {
		t.Fatalf("crashed worker still %v", c.nodeState(w.id))
	}
	if after := c.k.Now() - crashed; after > 17*time.Second {
		t.Errorf("down %v after the crash", after)
	}
	if msg := c.st.Node(string(w.id)).Status.Message; msg != "heartbeat failure" {
		t.Errorf("down message %q", msg)
	}
	for _, o := range []*worker{c.workers[0], c.workers[2]} {
		if c.nodeState(o.id) != ready {
			t.Errorf("%s: %v", o.id, c.nodeState(o.id))
		}
	}
	c.restart(w)
	if !c.runUntil(5*time.Second, func() bool { return c.nodeState(w.id) == ready }) {
		t.Fatalf("restarted worker still %v", c.nodeState(w.id))
	}
	if st := c.disp["m1"].Stats(); st.NodesDown != 1 || st.Sessions != 3 {
		t.Errorf("stats %+v", st)
	}
}

// The grace is measured on the monotonic clock: a manager whose wall clock
// is set back 3 minutes still calls a crashed worker DOWN after its grace,
// and one set forward does not call the live ones DOWN.
func TestGraceIgnoresWallClockSteps(t *testing.T) {
	for _, step := range []time.Duration{-3 * time.Minute, 3 * time.Minute} {
		c := newCluster(t, clusterOpts{seed: 3, workers: 3})
		restore := c.k.Activate()
		c.run(10 * time.Second)
		c.m.SetSkew(step)
		w := c.workers[1]
		c.crash(w)
		if !c.runUntil(20*time.Second, func() bool { return c.nodeState(w.id) == down }) {
			t.Errorf("clock stepped by %v: crashed worker still %v 20s later", step, c.nodeState(w.id))
		}
		for _, o := range []*worker{c.workers[0], c.workers[2]} {
			if c.nodeState(o.id) != ready {
				t.Errorf("clock stepped by %v: live %s is %v", step, o.id, c.nodeState(o.id))
			}
		}
		restore()
	}
}

// A partitioned worker is DOWN after its grace; its agent calls the
// session dead, keeps its tasks running, and once the partition heals
// opens a new session: READY again.
func TestPartitionedWorkerGoesDownAndReturns(t *testing.T) {
	c := newCluster(t, clusterOpts{seed: 4, workers: 3})
	defer c.k.Activate()()
	c.run(time.Second)
	w := c.workers[0]
	ids := c.assign(w.id, "web:1", 2)
	if !c.runUntil(10*time.Second, func() bool { return c.allInState(api.TaskState_TASK_STATE_RUNNING, ids) }) {
		t.Fatal("tasks not running")
	}
	c.net.Isolate(w.node)
	if !c.runUntil(30*time.Second, func() bool { return c.nodeState(w.id) == down }) {
		t.Fatal("isolated worker not down")
	}
	c.run(time.Minute)
	if got := w.exec.Running(); !slices.Equal(got, ids) {
		t.Errorf("cut off from every manager, the worker runs %v, want %v", got, ids)
	}
	if w.agent.Stats().Reconnects == 0 {
		t.Errorf("agent never noticed: %+v", w.agent.Stats())
	}
	c.net.Heal()
	if !c.runUntil(time.Minute, func() bool { return c.nodeState(w.id) == ready }) {
		t.Fatal("healed worker not ready")
	}
	if got := w.exec.Running(); !slices.Equal(got, ids) {
		t.Errorf("after the heal the worker runs %v, want %v", got, ids)
	}
}

// Assignments reach the right worker only, as incremental changes after
// the first (full) message of the session, carrying only what changed.
func TestAssignmentsIncremental(t *testing.T) {
	c := newCluster(t, clusterOpts{seed: 5, workers: 3, record: true})
	defer c.k.Activate()()
	c.run(time.Second)
	w1, w2, w3 := c.workers[0], c.workers[1], c.workers[2]
	a := c.assign(w1.id, "web:1", 3)
	b := c.assign(w2.id, "web:1", 2)
	c.run(5 * time.Second)
	more := c.assign(w1.id, "web:1", 1)
	c.run(5 * time.Second)
	c.setDesired(api.TaskState_TASK_STATE_SHUTDOWN, a[0])
	c.run(5 * time.Second)

	for _, w := range c.workers {
		msgs := c.received[w.id]
		if len(msgs) == 0 || !msgs[0].Full || msgs[0].Seq != 1 {
			t.Fatalf("%s: first message %v", w.id, msgs)
		}
		for i, m := range msgs {
			if i > 0 && (m.Full || m.Seq != uint64(i+1)) {
				t.Errorf("%s: message %d: full=%v seq=%d", w.id, i, m.Full, m.Seq)
			}
			for _, task := range m.Tasks {
				if task.NodeId != string(w.id) {
					t.Errorf("%s got %s's task %s", w.id, task.NodeId, task.Id)
				}
			}
		}
	}
	// w1: full (empty), the three tasks, the fourth, a[0]'s desired state,
	// then a[0] leaving the set once it is SHUTDOWN.
	var got [][]string
	for _, m := range c.received[w1.id] {
		var ids []string
		for _, task := range m.Tasks {
			ids = append(ids, "+"+task.Id)
		}
		for _, id := range m.Removed {
			ids = append(ids, "-"+id)
		}
		got = append(got, ids)
	}
	want := [][]string{nil, {"+" + a[0], "+" + a[1], "+" + a[2]}, {"+" + more[0]}, {"+" + a[0]}, {"-" + a[0]}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("w1 received %v, want %v", got, want)
	}
	if n := len(c.received[w2.id]); n != 2 {
		t.Errorf("w2 got %d messages, want 2 (full, its two tasks)", n)
	}
	if n := len(c.received[w3.id]); n != 1 {
		t.Errorf("w3 got %d messages, want only the first", n)
	}
	if !c.allInState(api.TaskState_TASK_STATE_RUNNING, append(a[1:], append(b, more...)...)) {
		t.Errorf("tasks not running")
	}
	st := c.disp["m1"].Stats()
	if st.AssignmentsFull != 3 || st.Resyncs != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestTaskRunsToRunning(t *testing.T) {
	c := newCluster(t, clusterOpts{seed: 6, workers: 2})
	defer c.k.Activate()()
	c.run(time.Second)
	w := c.workers[1]
	ids := c.assign(w.id, "web:1", 3)
	if !c.runUntil(10*time.Second, func() bool { return c.allInState(api.TaskState_TASK_STATE_RUNNING, ids) }) {
		t.Fatalf("states %v %v %v", c.taskState(ids[0]), c.taskState(ids[1]), c.taskState(ids[2]))
	}
	if got := w.exec.Running(); !slices.Equal(got, ids) {
		t.Errorf("executor runs %v", got)
	}
	if cpu, _ := w.exec.Usage(); cpu != 3e8 {
		t.Errorf("cpu use %d", cpu)
	}
	if n := c.workers[0].exec.NumRunning(); n != 0 {
		t.Errorf("the other worker runs %d containers", n)
	}
	if st := c.st.Task(ids[0]).Status; st.Message != "started" || st.Err != "" {
		t.Errorf("status %v", st)
	}
}

func TestTaskFailures(t *testing.T) {
	cases := []struct {
		name      string
		image     string
		health    *api.HealthConfig
		state     api.TaskState
		err       string
		exitCode  int32
		unhealthy bool
	}{
		{"failing image", "web:broken", nil, api.TaskState_TASK_STATE_FAILED, "task: non-zero exit (1)", 1, false},
		{"missing image", "web:missing", nil, api.TaskState_TASK_STATE_REJECTED, `image "web:missing" not found`, 0, false},
		{"unhealthy", "web:sick", &api.HealthConfig{Interval: int64(2 * time.Second), Retries: 2},
			api.TaskState_TASK_STATE_FAILED, "container unhealthy", 0, true},
		{"exits with an error", "batch:bad", nil, api.TaskState_TASK_STATE_FAILED, "task: non-zero exit (3)", 3, false},
		{"completes", "batch:ok", nil, api.TaskState_TASK_STATE_COMPLETE, "", 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, clusterOpts{seed: 7, workers: 1, exec: sim.ExecutorConfig{
				FailImages: []string{"web:broken"}, MissingImages: []string{"web:missing"},
				UnhealthyImages: []string{"web:sick"},
				Exits: []sim.ExecutorExit{
					{Image: "batch:bad", After: sim.Fixed(3 * time.Second), Code: 3},
					{Image: "batch:ok", After: sim.Fixed(3 * time.Second)},
				},
			}})
			defer c.k.Activate()()
			c.run(time.Second)
			w := c.workers[0]
			ids := c.assign(w.id, tc.image, 1, func(task *api.Task) { task.Spec.Container.Health = tc.health })
			if !c.runUntil(time.Minute, func() bool { return c.taskState(ids[0]) == tc.state }) {
				t.Fatalf("state %v, want %v", c.taskState(ids[0]), tc.state)
			}
			st := c.st.Task(ids[0]).Status
			if st.Err != tc.err || st.ExitCode != tc.exitCode || st.Unhealthy != tc.unhealthy {
				t.Errorf("status %v", st)
			}
			// The task ended, so it left the node's set: its container goes.
			if !c.runUntil(30*time.Second, func() bool { return !w.exec.Has(ids[0]) }) {
				t.Errorf("container of an ended task kept")
			}
			if w.exec.NumRunning() != 0 {
				t.Errorf("still running: %v", w.exec.Running())
			}
		})
	}
}

// Desired SHUTDOWN stops the container within its grace, reports SHUTDOWN
// and removes the container.
func TestShutdown(t *testing.T) {
	c := newCluster(t, clusterOpts{seed: 8, workers: 1, exec: sim.ExecutorConfig{StopTime: time.Minute}})
	defer c.k.Activate()()
	c.run(time.Second)
	w := c.workers[0]
	ids := c.assign(w.id, "web:1", 2, func(task *api.Task) { task.Spec.Container.StopGracePeriod = int64(2 * time.Second) })
	if !c.runUntil(10*time.Second, func() bool { return c.allInState(api.TaskState_TASK_STATE_RUNNING, ids) }) {
		t.Fatal("not running")
	}
	c.setDesired(api.TaskState_TASK_STATE_SHUTDOWN, ids[0])
	stopAt := c.k.Now()
	if !c.runUntil(10*time.Second, func() bool { return c.taskState(ids[0]) == api.TaskState_TASK_STATE_SHUTDOWN }) {
		t.Fatalf("state %v", c.taskState(ids[0]))
	}
	if d := c.k.Now() - stopAt; d < 2*time.Second || d > 3*time.Second {
		t.Errorf("shut down after %v; the grace is 2s", d)
	}
	c.run(time.Second)
	if w.exec.Has(ids[0]) || !w.exec.IsRunning(ids[1]) {
		t.Errorf("containers: %v", w.exec.Running())
	}
	// A task never started is shut down without a container.
	late := c.assign(w.id, "web:1", 1, func(task *api.Task) { task.DesiredState = api.TaskState_TASK_STATE_SHUTDOWN })
	if !c.runUntil(5*time.Second, func() bool { return c.taskState(late[0]) == api.TaskState_TASK_STATE_SHUTDOWN }) {
		t.Errorf("state %v", c.taskState(late[0]))
	}
	// A task deleted from the store (it left the set) is stopped and
	// removed without a report.
	c.update(func(tx *store.Tx) error { return tx.Delete(store.KindTask, ids[1], 0) })
	if !c.runUntil(10*time.Second, func() bool { return !w.exec.Has(ids[1]) }) {
		t.Errorf("container of a deleted task kept")
	}
}

// Many reports become few transactions.
func TestStatusBatching(t *testing.T) {
	c := newCluster(t, clusterOpts{seed: 9, workers: 20, exec: sim.ExecutorConfig{Start: sim.Fixed(time.Second)}})
	defer c.k.Activate()()
	c.run(time.Second)
	var ids []string
	for _, w := range c.workers {
		ids = append(ids, c.assign(w.id, "web:1", 10)...)
	}
	before := c.st.Stats().Proposals
	if !c.runUntil(10*time.Second, func() bool { return c.allInState(api.TaskState_TASK_STATE_RUNNING, ids) }) {
		t.Fatal("not running")
	}
	c.run(5 * time.Second)
	st := c.disp["m1"].Stats()
	proposals := c.st.Stats().Proposals - before
	// 200 tasks, each PREPARING, READY/STARTING, RUNNING: hundreds of
	// updates, a handful of transactions.
	if st.StatusWritten < 400 || proposals > 10 || st.StatusBatches > 10 {
		t.Errorf("%d updates written in %d batches (%d proposals); stats %+v", st.StatusWritten, st.StatusBatches, proposals, st)
	}
	for _, w := range c.workers {
		if n := w.agent.PendingReports(); n != 0 {
			t.Errorf("%s: %d reports never acknowledged", w.id, n)
		}
	}
}

// Loss, duplication and reordering slow the protocol down but it still
// converges: every task runs, every node is ready, shutdowns complete.
func TestLossyNetworkConverges(t *testing.T) {
	c := newCluster(t, clusterOpts{seed: 10, workers: 20, link: sim.LinkModel{
		Latency: sim.Range{Min: time.Millisecond, Max: 30 * time.Millisecond}, Loss: 0.1, Duplicate: 0.1, Reorder: true,
	}})
	defer c.k.Activate()()
	c.run(5 * time.Second)
	var ids []string
	for _, w := range c.workers {
		ids = append(ids, c.assign(w.id, "web:1", 5)...)
	}
	if !c.runUntil(2*time.Minute, func() bool { return c.allInState(api.TaskState_TASK_STATE_RUNNING, ids) }) {
		n := 0
		for _, id := range ids {
			if c.taskState(id) == api.TaskState_TASK_STATE_RUNNING {
				n++
			}
		}
		t.Fatalf("%d of %d tasks running", n, len(ids))
	}
	c.setDesired(api.TaskState_TASK_STATE_SHUTDOWN, ids[:50]...)
	if !c.runUntil(2*time.Minute, func() bool { return c.allInState(api.TaskState_TASK_STATE_SHUTDOWN, ids[:50]) }) {
		t.Fatal("shutdowns did not converge")
	}
	c.run(30 * time.Second)
	if n := c.readyNodes(); n != 20 {
		t.Errorf("%d nodes ready", n)
	}
	running := 0
	for _, w := range c.workers {
		running += w.exec.NumRunning()
	}
	if running != 50 {
		t.Errorf("%d containers running, want 50", running)
	}
	st := c.disp["m1"].Stats()
	t.Logf("dispatcher %+v", st)
	if st.Resyncs == 0 {
		t.Errorf("10%% loss and no resync: the gap path went untested")
	}
}

// A follower answers with a redirect to the leader; the agent follows it.
// When leadership moves, agents find the new leader.
func TestRedirectAndFailover(t *testing.T) {
	c := newCluster(t, clusterOpts{seed: 11, followers: 2})
	defer c.k.Activate()()
	// This worker knows only a follower.
	w := c.addWorker("w1", sim.ExecutorConfig{Start: sim.Fixed(time.Second)}, []env.NodeID{"m2"})
	c.run(2 * time.Second)
	if w.agent.Manager() != "m1" || c.nodeState(w.id) != ready {
		t.Fatalf("agent on %q, node %v", w.agent.Manager(), c.nodeState(w.id))
	}
	if c.disp["m2"].Stats().Redirects == 0 || w.agent.Stats().Redirects == 0 {
		t.Errorf("no redirect counted")
	}
	ids := c.assign(w.id, "web:1", 1)
	c.run(5 * time.Second)

	// m1 loses leadership to m3.
	c.disp["m1"].Stop()
	c.leader = "m3"
	c.disp["m3"].Start()
	if !c.runUntil(30*time.Second, func() bool { return w.agent.Manager() == "m3" && w.agent.SessionID() != "" }) {
		t.Fatalf("agent on %q", w.agent.Manager())
	}
	more := c.assign(w.id, "web:1", 1)
	if !c.runUntil(10*time.Second, func() bool { return c.allInState(api.TaskState_TASK_STATE_RUNNING, append(ids, more...)) }) {
		t.Fatal("tasks not running after the failover")
	}
	if w.exec.Stats.Started != 2 {
		t.Errorf("%d containers started, want 2 (the first kept running)", w.exec.Stats.Started)
	}
	c.run(time.Minute)
	if c.nodeState(w.id) != ready {
		t.Errorf("node %v after the failover", c.nodeState(w.id))
	}
}

// A new leader gives the nodes the store says READY a grace to open a
// session; one that never does is marked DOWN.
func TestNewLeaderMarksSilentNodesDown(t *testing.T) {
	c := newCluster(t, clusterOpts{seed: 12, workers: 2, followers: 1, managers: true})
	defer c.k.Activate()()
	c.run(2 * time.Second)
	silent := c.workers[1]
	c.crash(silent)
	c.disp["m1"].Stop()
	c.leader = "m2"
	c.disp["m2"].Start()
	c.run(25 * time.Second)
	if c.nodeState(silent.id) != ready {
		t.Fatalf("silent node down before twice the grace")
	}
	if !c.runUntil(10*time.Second, func() bool { return c.nodeState(silent.id) == down }) {
		t.Fatal("silent node never down")
	}
	if c.nodeState(c.workers[0].id) != ready {
		t.Errorf("the live worker is %v", c.nodeState(c.workers[0].id))
	}
}

// An agent that restarts on a live node adopts the containers it finds
// instead of starting them again; one whose task is gone is removed.
func TestAgentRestartAdoptsContainers(t *testing.T) {
	c := newCluster(t, clusterOpts{seed: 13, workers: 1})
	defer c.k.Activate()()
	c.run(time.Second)
	w := c.workers[0]
	ids := c.assign(w.id, "web:1", 3)
	if !c.runUntil(10*time.Second, func() bool { return c.allInState(api.TaskState_TASK_STATE_RUNNING, ids) }) {
		t.Fatal("not running")
	}
	w.agent.Stop()
	c.update(func(tx *store.Tx) error { return tx.Delete(store.KindTask, ids[2], 0) })
	c.run(time.Second)
	c.startAgent(w)
	c.run(10 * time.Second)
	if got := w.exec.Running(); !slices.Equal(got, ids[:2]) {
		t.Errorf("running %v, want %v", got, ids[:2])
	}
	if w.exec.Stats.Started != 3 {
		t.Errorf("%d starts: the restarted agent started containers again", w.exec.Stats.Started)
	}
	if st := w.agent.Stats(); st.TasksAdopted != 2 || st.TasksFailed != 0 {
		t.Errorf("agent stats %+v", st)
	}
	if !c.allInState(api.TaskState_TASK_STATE_RUNNING, ids[:2]) {
		t.Errorf("states %v %v", c.taskState(ids[0]), c.taskState(ids[1]))
	}
	// After a crash of the whole machine the containers are gone: the
	// tasks that were running are reported lost.
	c.crash(w)
	c.restart(w)
	if !c.runUntil(10*time.Second, func() bool { return c.allInState(api.TaskState_TASK_STATE_FAILED, ids[:2]) }) {
		t.Fatalf("states %v %v", c.taskState(ids[0]), c.taskState(ids[1]))
	}
	if e := c.st.Task(ids[0]).Status.Err; e != "task: container lost" {
		t.Errorf("err %q", e)
	}
}

func TestThousandWorkersConverge(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 workers")
	}
	c := newCluster(t, clusterOpts{seed: 14, workers: 1000, link: sim.LinkModel{
		Latency: sim.Range{Min: time.Millisecond, Max: 5 * time.Millisecond}, Loss: 0.001,
	}, exec: sim.ExecutorConfig{Start: sim.Range{Min: 500 * time.Millisecond, Max: 2 * time.Second}}})
	defer c.k.Activate()()
	c.run(15 * time.Second) // a lost session request waits 5s for an answer
	if n := c.readyNodes(); n != 1000 {
		t.Fatalf("%d nodes ready", n)
	}
	var ids []string
	for _, w := range c.workers {
		ids = append(ids, c.assign(w.id, "web:1", 10)...)
	}
	if !c.runUntil(time.Minute, func() bool { return c.allInState(api.TaskState_TASK_STATE_RUNNING, ids) }) {
		t.Fatal("10,000 tasks did not converge")
	}
	st := c.disp["m1"].Stats()
	t.Logf("virtual %v, events %d, dispatcher %+v, store %+v", c.k.Now(), c.k.Processed(), st, c.st.Stats())
}

// One seed, one trace; another seed, another.
func TestDeterminism(t *testing.T) {
	run := func(seed uint64) uint64 {
		c := newCluster(t, clusterOpts{seed: seed, workers: 30, link: sim.LinkModel{
			Latency: sim.Range{Min: time.Millisecond, Max: 20 * time.Millisecond}, Loss: 0.05, Duplicate: 0.05, Reorder: true,
		}, exec: sim.ExecutorConfig{Start: sim.Range{Min: 100 * time.Millisecond, Max: 3 * time.Second}, Fail: 0.1}})
		defer c.k.Activate()()
		c.run(2 * time.Second)
		for _, w := range c.workers {
			c.assign(w.id, "web:1", 3)
		}
		c.run(20 * time.Second)
		c.crash(c.workers[3])
		c.run(40 * time.Second)
		return c.k.TraceHash()
	}
	a, b := run(21), run(21)
	if a != b {
		t.Fatalf("same seed: %x then %x", a, b)
	}
	if c := run(22); c == a {
		t.Fatalf("different seeds gave the same hash %x", a)
	}
}

// The dispatcher's own unit: a stopped dispatcher redirects every request.
func TestStoppedDispatcherRedirects(t *testing.T) {
	k := sim.NewKernel(1)
	defer k.Activate()()
	n := k.AddNode("m2")
	var sent []env.Message
	d := dispatcher.New(dispatcher.Deps{
		ID: "m2", Loop: n, Clock: n, Rand: n.Rand("dispatcher"), Store: store.New(n),
		Transport: transportFunc(func(_ env.NodeID, m env.Message) { sent = append(sent, m) }),
		LeaderID:  func() env.NodeID { return "m1" },
	})
	from := env.Peer{ID: "w1", Role: env.RoleWorker}
	d.Handle(from, &api.SessionRequest{Incarnation: 1, Attempt: 1})
	d.Handle(from, &api.Heartbeat{SessionId: "s"})
	d.Handle(from, &api.TaskStatusReport{SessionId: "s", Seq: 4})
	notLeader := api.DispatcherError_DISPATCHER_ERROR_NOT_LEADER
	if len(sent) != 3 {
		t.Fatalf("sent %v", sent)
	}
	if r := sent[0].(*api.SessionResponse); r.Error != notLeader || r.Leader != "m1" || r.Attempt != 1 {
		t.Errorf("session answer %v", r)
	}
	if r := sent[1].(*api.HeartbeatResponse); r.Error != notLeader || r.Leader != "m1" {
		t.Errorf("heartbeat answer %v", r)
	}
	if r := sent[2].(*api.TaskStatusAck); r.Error != notLeader || r.Leader != "m1" || r.Seq != 4 {
		t.Errorf("report answer %v", r)
	}
}

type transportFunc func(env.NodeID, env.Message)

func (f transportFunc) Send(to env.NodeID, m env.Message) { f(to, m) }

// A node removed from the cluster loses its session and gets no new one;
// its store object stays a tombstone.
func TestRemovedNodeRefused(t *testing.T) {
	c := newCluster(t, clusterOpts{seed: 15, workers: 2})
	defer c.k.Activate()()
	c.run(time.Second)
	w := c.workers[0]
	c.update(func(tx *store.Tx) error {
		n := tx.Node(string(w.id)).ShallowCopy()
		n.Removed = true
		return tx.Update(n)
	})
	c.run(time.Minute)
	n := c.st.Node(string(w.id))
	if !n.Removed || n.Status.State != ready {
		t.Errorf("tombstone changed: %v", n)
	}
	st := c.disp["m1"].Stats()
	if st.Refused == 0 || st.Sessions != 1 {
		t.Errorf("stats %+v", st)
	}
	if w.agent.SessionID() != "" {
		t.Errorf("removed node holds session %q", w.agent.SessionID())
	}
}

// A leader that loses and regains leadership between a task change and the
// flush it posted still sends assignments afterwards (the flush posted
// under the old generation must not block new ones).
func TestReelectedLeaderSendsAssignments(t *testing.T) {
	c := newCluster(t, clusterOpts{seed: 16, workers: 1})
	defer c.k.Activate()()
	c.run(time.Second)
	w, d := c.workers[0], c.disp["m1"]
	var ids []string
	c.m.Post(func() {
		c.st.Update(func(tx *store.Tx) error {
			ids = append(ids, "re1")
			return tx.Create(&api.Task{Id: "re1", NodeId: string(w.id), DesiredState: api.TaskState_TASK_STATE_RUNNING,
				Spec:   &api.TaskSpec{Container: &api.ContainerSpec{Image: "web:1"}},
				Status: &api.TaskStatus{State: api.TaskState_TASK_STATE_ASSIGNED}})
		}, func(error) {
			d.Stop()
			d.Start()
		})
	})
	if !c.runUntil(time.Minute, func() bool { return c.allInState(api.TaskState_TASK_STATE_RUNNING, ids) }) {
		t.Fatalf("state %v", c.taskState("re1"))
	}
}

// TestFaultSweep runs many seeds of a harsh run: 20% loss and duplication
// with reordering, failing starts and images, a worker crashed and brought
// back, a leader change and a partitioned worker. Every seed must converge
// (each task RUNNING or FAILED, the failing image FAILED, every node READY,
// every report acknowledged) and every task the store says RUNNING must
// run on its node. A failure names the seed that replays it.
func TestFaultSweep(t *testing.T) {
	seeds := uint64(40)
	if testing.Short() {
		seeds = 5
	}
	running, failed := api.TaskState_TASK_STATE_RUNNING, api.TaskState_TASK_STATE_FAILED
	for seed := uint64(100); seed < 100+seeds; seed++ {
		c := newCluster(t, clusterOpts{seed: seed, workers: 20, followers: 2, managers: true,
			link: sim.LinkModel{Latency: sim.Range{Min: time.Millisecond, Max: 30 * time.Millisecond},
				Loss: 0.2, Duplicate: 0.2, Reorder: true},
			exec: sim.ExecutorConfig{Start: sim.Range{Min: 100 * time.Millisecond, Max: 3 * time.Second},
				Fail: 0.1, FailImages: []string{"bad"}},
		})
		restore := c.k.Activate()
		c.run(5 * time.Second)
		var ids, bad []string
		for i, w := range c.workers {
			ids = append(ids, c.assign(w.id, "web:1", 5)...)
			if i%5 == 0 {
				bad = append(bad, c.assign(w.id, "bad", 1)...)
			}
		}
		crashed := c.workers[seed%20]
		c.crash(crashed)
		c.run(7 * time.Second)
		c.disp["m1"].Stop()
		c.leader = "m3"
		c.disp["m3"].Start()
		c.net.Isolate(c.workers[(seed+7)%20].node)
		c.run(13 * time.Second)
		c.net.Heal()
		c.restart(crashed)
		converged := func() bool {
			for _, id := range ids {
				if s := c.taskState(id); s != running && s != failed {
					return false
				}
			}
			for _, w := range c.workers {
				if w.agent.PendingReports() != 0 {
					return false
				}
			}
			return c.allInState(failed, bad) && c.readyNodes() == 20
		}
		if !c.runUntil(5*time.Minute, converged) {
			for _, id := range append(ids, bad...) {
				if s := c.taskState(id); s != running && s != failed {
					t.Logf("%s on %s: %v", id, c.st.Task(id).NodeId, s)
				}
			}
			t.Errorf("seed %d: no convergence; %d nodes ready", seed, c.readyNodes())
		}
		for _, id := range ids {
			task := c.st.Task(id)
			if task.Status.State == running && !c.byID[env.NodeID(task.NodeId)].exec.IsRunning(id) {
				t.Errorf("seed %d: %s RUNNING in the store but not on %s", seed, id, task.NodeId)
			}
		}
		restore()
	}
}

// A batch of node writes too large for one raft entry is split, not
// retried as it was forever: 100,000 workers registering at once queue
// more than an entry holds. Here the store takes 4 KiB per proposal and
// 200 workers register together.
func TestOversizedNodeBatchIsSplit(t *testing.T) {
	c := newCluster(t, clusterOpts{seed: 3, workers: 200})
	c.st.SetMaxProposalBytes(4 << 10)
	defer c.k.Activate()()
	c.run(10 * time.Second)
	if n := c.readyNodes(); n != 200 {
		t.Fatalf("%d of 200 nodes ready", n)
	}
	st := c.disp["m1"].Stats()
	if st.NodeWriteFailures == 0 {
		t.Fatalf("no batch was refused, so nothing was split: %+v", st)
	}
}
