package agent_test

import (
	"slices"
	"testing"
	"time"

	"github.com/swarmsim/swarmsim/engine/agent"
	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/sim"
)

// rig is one agent (w1) facing scripted managers: each manager's handler
// is the test's, so the test decides what the agent hears.
type rig struct {
	t     *testing.T
	k     *sim.Kernel
	net   *sim.Network
	w     *sim.Node
	ep    *sim.Endpoint
	exec  *sim.Executor
	agent *agent.Agent
	mgrs  map[env.NodeID]*manager
}

// manager records what the agent sent it and answers as its script says.
type manager struct {
	id   env.NodeID
	ep   *sim.Endpoint
	got  []env.Message
	on   func(m *manager, from env.Peer, msg env.Message)
	seq  uint64
	sess string
}

func newRig(t *testing.T, managers []env.NodeID, known []env.NodeID, exec sim.ExecutorConfig) *rig {
	r := &rig{t: t, k: sim.NewKernel(1), mgrs: map[env.NodeID]*manager{}}
	r.net = sim.NewNetwork(r.k, sim.LinkModel{Latency: sim.Fixed(time.Millisecond)})
	for _, id := range managers {
		m := &manager{id: id, sess: "s-" + string(id)}
		n := r.k.AddNode(string(id))
		m.ep = r.net.Attach(n, id, func(from env.Peer, msg env.Message) {
			m.got = append(m.got, msg)
			if m.on != nil {
				m.on(m, from, msg)
			}
		})
		r.mgrs[id] = m
	}
	r.w = r.k.AddNode("w1")
	r.ep = r.net.Attach(r.w, "w1", func(from env.Peer, m env.Message) { r.agent.Handle(from, m) })
	r.exec = sim.NewExecutor(r.w, "w1", exec)
	r.start(known)
	return r
}

func (r *rig) start(known []env.NodeID) {
	r.agent = agent.New(agent.Deps{
		ID: "w1", Loop: r.w, Clock: r.w, Rand: r.w.Rand("agent"), Transport: r.ep, Executor: r.exec,
		Config: agent.Config{Managers: known, Description: &api.NodeDescription{Hostname: "w1"}},
	})
	r.w.Post(r.agent.Start)
}

func (r *rig) run(d time.Duration) { r.k.RunUntil(r.k.Now()+d, nil) }

// leader answers like a working dispatcher: a session, heartbeat answers,
// and acks for every report (unless dropReports says otherwise).
func leader(dropReports *int) func(m *manager, from env.Peer, msg env.Message) {
	return func(m *manager, from env.Peer, msg env.Message) {
		switch msg := msg.(type) {
		case *api.SessionRequest:
			m.ep.Send(from.ID, &api.SessionResponse{Incarnation: msg.Incarnation, Attempt: msg.Attempt,
				SessionId: m.sess, HeartbeatPeriod: int64(5 * time.Second)})
		case *api.Heartbeat:
			m.ep.Send(from.ID, &api.HeartbeatResponse{SessionId: msg.SessionId, HeartbeatPeriod: int64(5 * time.Second),
				AssignmentsSeq: m.seq})
		case *api.TaskStatusReport:
			if dropReports != nil && *dropReports > 0 {
				*dropReports--
				return
			}
			m.ep.Send(from.ID, &api.TaskStatusAck{SessionId: msg.SessionId, Seq: msg.Seq})
		}
	}
}

func (m *manager) assign(to env.NodeID, full bool, tasks []*api.Task, removed ...string) {
	m.seq++
	m.ep.Send(to, &api.Assignments{SessionId: m.sess, Seq: m.seq, Full: full, Tasks: tasks, Removed: removed})
}

func newTask(id, image string, desired api.TaskState) *api.Task {
	return &api.Task{
		Id: id, NodeId: "w1", DesiredState: desired,
		Spec:   &api.TaskSpec{Container: &api.ContainerSpec{Image: image}},
		Status: &api.TaskStatus{State: api.TaskState_TASK_STATE_ASSIGNED},
	}
}

// reports lists the statuses the manager received, "task:STATE".
func (m *manager) reports() []string {
	var out []string
	for _, msg := range m.got {
		if rep, ok := msg.(*api.TaskStatusReport); ok {
			for _, u := range rep.Updates {
				out = append(out, u.TaskId+":"+u.Status.State.String())
			}
		}
	}
	return out
}

func count[T env.Message](msgs []env.Message) int {
	n := 0
	for _, m := range msgs {
		if _, ok := m.(T); ok {
			n++
		}
	}
	return n
}

// A manager that never answers is given up on after the session timeout;
// the agent tries the next one, after a backoff.
func TestAgentTriesAnotherManager(t *testing.T) {
	r := newRig(t, []env.NodeID{"m1", "m2"}, []env.NodeID{"m1", "m2"}, sim.ExecutorConfig{})
	defer r.k.Activate()()
	r.mgrs["m2"].on = leader(nil) // m1 is silent
	r.run(time.Minute)
	if r.agent.Manager() != "m2" || r.agent.SessionID() != "s-m2" {
		t.Fatalf("agent on %q session %q", r.agent.Manager(), r.agent.SessionID())
	}
	if n := count[*api.SessionRequest](r.mgrs["m1"].got); n > 1 {
		t.Errorf("asked the silent manager %d times in a row", n)
	}
	// Once it has a session it stays: heartbeats every 5s ± 25%.
	if n := count[*api.Heartbeat](r.mgrs["m2"].got); n < 9 || n > 16 {
		t.Errorf("%d heartbeats in a minute", n)
	}
}

// A manager whose session died is not asked again while another is
// known: whatever order the manager list came in, the next ask goes to
// another manager (the dead one is likely down or cut off).
func TestAgentLeavesTheManagerThatFailed(t *testing.T) {
	r := newRig(t, []env.NodeID{"m1", "m2"}, []env.NodeID{"m1"}, sim.ExecutorConfig{})
	defer r.k.Activate()()
	alive := true
	lead := leader(nil)
	r.mgrs["m1"].on = func(m *manager, from env.Peer, msg env.Message) {
		if !alive {
			return
		}
		if hb, ok := msg.(*api.Heartbeat); ok {
			m.ep.Send(from.ID, &api.HeartbeatResponse{SessionId: hb.SessionId, HeartbeatPeriod: int64(5 * time.Second),
				Managers: []string{"m1", "m2"}})
			return
		}
		lead(m, from, msg)
	}
	lead2 := leader(nil)
	r.mgrs["m2"].on = func(m *manager, from env.Peer, msg env.Message) {
		if req, ok := msg.(*api.SessionRequest); ok && alive {
			m.ep.Send(from.ID, &api.SessionResponse{Incarnation: req.Incarnation, Attempt: req.Attempt,
				Error: api.DispatcherError_DISPATCHER_ERROR_NOT_LEADER, Leader: "m1"})
			return
		}
		lead2(m, from, msg)
	}
	r.run(12 * time.Second)
	if r.agent.SessionID() != "s-m1" || !slices.Equal(r.agent.Managers(), []env.NodeID{"m1", "m2"}) {
		t.Fatalf("session %q, managers %v", r.agent.SessionID(), r.agent.Managers())
	}
	alive = false
	for end := r.k.Now() + time.Minute; r.k.Now() < end && r.agent.SessionID() != "s-m2"; {
		r.run(100 * time.Millisecond)
	}
	if r.agent.SessionID() != "s-m2" {
		t.Fatalf("no session with m2: %q on %q", r.agent.SessionID(), r.agent.Manager())
	}
	if n := count[*api.SessionRequest](r.mgrs["m1"].got); n != 1 {
		t.Errorf("asked m1, whose session died, for %d sessions; want only the first", n)
	}
}

// A redirect is followed at once, to the manager it names.
func TestAgentFollowsRedirect(t *testing.T) {
	r := newRig(t, []env.NodeID{"m1", "m2"}, []env.NodeID{"m1"}, sim.ExecutorConfig{})
	defer r.k.Activate()()
	r.mgrs["m1"].on = func(m *manager, from env.Peer, msg env.Message) {
		if req, ok := msg.(*api.SessionRequest); ok {
			m.ep.Send(from.ID, &api.SessionResponse{Incarnation: req.Incarnation, Attempt: req.Attempt,
				Error: api.DispatcherError_DISPATCHER_ERROR_NOT_LEADER, Leader: "m2"})
		}
	}
	r.mgrs["m2"].on = leader(nil)
	r.run(10 * time.Millisecond)
	if r.agent.SessionID() != "s-m2" || r.agent.Stats().Redirects != 1 {
		t.Fatalf("session %q, stats %+v", r.agent.SessionID(), r.agent.Stats())
	}
}

// A session that stops answering heartbeats is dead after DownAfter
// periods; the agent opens another.
func TestAgentDetectsDeadSession(t *testing.T) {
	r := newRig(t, []env.NodeID{"m1"}, []env.NodeID{"m1"}, sim.ExecutorConfig{})
	defer r.k.Activate()()
	answer := true
	lead := leader(nil)
	r.mgrs["m1"].on = func(m *manager, from env.Peer, msg env.Message) {
		if _, hb := msg.(*api.Heartbeat); hb && !answer {
			return
		}
		lead(m, from, msg)
	}
	r.run(10 * time.Second)
	answer = false
	// The last answer came at most a period (5s) before: the grace (15s)
	// cannot run out within 8s, and has run out 20s later.
	r.run(8 * time.Second)
	if r.agent.Stats().Reconnects != 0 {
		t.Fatalf("session dropped before the grace")
	}
	for end := r.k.Now() + 15*time.Second; r.k.Now() < end && r.agent.Stats().Reconnects == 0; {
		r.run(100 * time.Millisecond)
	}
	answer = true
	r.run(5 * time.Second)
	if st := r.agent.Stats(); st.Reconnects != 1 || st.SessionsOpened != 2 || r.agent.SessionID() == "" {
		t.Fatalf("stats %+v", st)
	}
}

// Statuses are coalesced (only the newest per task goes), resent until
// acknowledged, and not resent after.
func TestAgentReportsRetriedUntilAcked(t *testing.T) {
	r := newRig(t, []env.NodeID{"m1"}, []env.NodeID{"m1"}, sim.ExecutorConfig{Start: sim.Fixed(time.Second)})
	defer r.k.Activate()()
	drop := 2
	m := r.mgrs["m1"]
	m.on = leader(&drop)
	r.run(10 * time.Millisecond)
	m.assign("w1", true, []*api.Task{newTask("a", "web:1", api.TaskState_TASK_STATE_RUNNING)})
	r.run(10 * time.Second)
	got := m.reports()
	// PREPARING (ACCEPTED coalesced into it) and STARTING (READY into it)
	// at once, RUNNING 1s later; the first two reports are dropped, so
	// what they carried comes again.
	want := []string{"a:TASK_STATE_STARTING", "a:TASK_STATE_RUNNING", "a:TASK_STATE_RUNNING"}
	if !slices.Equal(got, want) {
		t.Errorf("reports %v, want %v", got, want)
	}
	st := r.agent.Stats()
	if r.agent.PendingReports() != 0 || st.ReportsRetried != 1 || st.StatusesAcked != 1 {
		t.Errorf("pending %d, stats %+v", r.agent.PendingReports(), st)
	}
	r.run(time.Minute)
	if n := len(m.reports()); n != 3 {
		t.Errorf("%d reports after the ack", n)
	}
}

// A gap in the sequence, or a heartbeat answer naming a message never
// received, makes the agent ask for the whole set; a late or duplicate
// message is ignored.
func TestAgentResyncOnGap(t *testing.T) {
	r := newRig(t, []env.NodeID{"m1"}, []env.NodeID{"m1"}, sim.ExecutorConfig{})
	defer r.k.Activate()()
	m := r.mgrs["m1"]
	m.on = leader(nil)
	r.run(10 * time.Millisecond)
	m.assign("w1", true, nil)
	r.run(10 * time.Millisecond)
	m.seq++ // message 2 is lost
	m.assign("w1", false, []*api.Task{newTask("b", "web:1", api.TaskState_TASK_STATE_RUNNING)})
	r.run(10 * time.Millisecond)
	resyncs := func() int {
		n := 0
		for _, msg := range m.got {
			if hb, ok := msg.(*api.Heartbeat); ok && hb.Resync {
				n++
			}
		}
		return n
	}
	if resyncs() != 1 || r.exec.Has("b") {
		t.Fatalf("resyncs %d; a task from past the gap was applied: %v", resyncs(), r.exec.Has("b"))
	}
	m.assign("w1", true, []*api.Task{newTask("a", "web:1", api.TaskState_TASK_STATE_RUNNING)})
	r.run(time.Second)
	if !r.exec.IsRunning("a") || r.exec.Has("b") {
		t.Fatalf("running %v", r.exec.Running())
	}
	// The last message is lost: the heartbeat answer shows it.
	m.seq++
	r.run(5 * time.Second)
	if resyncs() != 2 {
		t.Fatalf("resyncs %d after a lost last message", resyncs())
	}
}

// Without any manager the agent keeps its tasks running; the backoff
// between attempts grows, bounded.
func TestAgentKeepsTasksWithoutManagers(t *testing.T) {
	r := newRig(t, []env.NodeID{"m1"}, []env.NodeID{"m1"}, sim.ExecutorConfig{})
	defer r.k.Activate()()
	m := r.mgrs["m1"]
	m.on = leader(nil)
	r.run(10 * time.Millisecond)
	m.assign("w1", true, []*api.Task{newTask("a", "web:1", api.TaskState_TASK_STATE_RUNNING)})
	r.run(time.Second)
	m.on = nil // the manager goes silent for good
	before := len(m.got)
	r.run(10 * time.Minute)
	if !r.exec.IsRunning("a") {
		t.Fatal("task stopped without a manager")
	}
	attempts := count[*api.SessionRequest](m.got[before:])
	// Session timeout 5s plus a backoff that reaches 10s ± 50%: about 40
	// attempts in 10 minutes, not hundreds.
	if attempts < 20 || attempts > 80 {
		t.Errorf("%d session attempts in 10 minutes", attempts)
	}
}

// At restart, containers the executor lists are adopted by the tasks of
// the first whole set; the rest are stopped and removed. Nothing is done
// to them before that set arrives.
func TestAgentAdoptsAtRestart(t *testing.T) {
	r := newRig(t, []env.NodeID{"m1"}, []env.NodeID{"m1"}, sim.ExecutorConfig{})
	defer r.k.Activate()()
	m := r.mgrs["m1"]
	m.on = leader(nil)
	r.run(10 * time.Millisecond)
	a, b := newTask("a", "web:1", api.TaskState_TASK_STATE_RUNNING), newTask("b", "web:1", api.TaskState_TASK_STATE_RUNNING)
	m.assign("w1", true, []*api.Task{a, b})
	r.run(time.Second)
	if got := r.exec.Running(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("running %v", got)
	}
	r.agent.Stop()
	m.on = nil
	r.start([]env.NodeID{"m1"})
	r.run(time.Minute)
	if got := r.exec.Running(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("before any set, running %v", got)
	}
	m.on = leader(nil)
	r.run(20 * time.Second)
	running := newTask("a", "web:1", api.TaskState_TASK_STATE_RUNNING)
	running.Status = &api.TaskStatus{State: api.TaskState_TASK_STATE_RUNNING}
	m.seq = 0
	m.assign("w1", true, []*api.Task{running})
	r.run(time.Second)
	if got := r.exec.Running(); !slices.Equal(got, []string{"a"}) || r.exec.Has("b") {
		t.Fatalf("running %v, b kept %v", got, r.exec.Has("b"))
	}
	if st := r.agent.Stats(); st.TasksAdopted != 1 || st.TasksStarted != 0 {
		t.Errorf("stats %+v", st)
	}
	if r.exec.Stats.Started != 2 {
		t.Errorf("%d starts", r.exec.Stats.Started)
	}
}

// A container whose start the old agent asked for turns running after the
// restart, before any set arrived: the new agent leaves it alone, then
// adopts it and reports it RUNNING.
func TestAgentAdoptsContainerStartedBeforeRestart(t *testing.T) {
	r := newRig(t, []env.NodeID{"m1"}, []env.NodeID{"m1"}, sim.ExecutorConfig{Start: sim.Fixed(5 * time.Second)})
	defer r.k.Activate()()
	m := r.mgrs["m1"]
	m.on = leader(nil)
	r.run(10 * time.Millisecond)
	m.assign("w1", true, []*api.Task{newTask("a", "web:1", api.TaskState_TASK_STATE_RUNNING)})
	r.run(time.Second) // prepared, start asked for
	r.agent.Stop()
	m.on = nil
	r.start([]env.NodeID{"m1"})
	r.run(10 * time.Second) // running now, with nobody to tell
	if !r.exec.IsRunning("a") {
		t.Fatal("container stopped before the first set")
	}
	m.on = leader(nil)
	r.run(20 * time.Second)
	m.seq = 0
	starting := newTask("a", "web:1", api.TaskState_TASK_STATE_RUNNING)
	starting.Status = &api.TaskStatus{State: api.TaskState_TASK_STATE_STARTING}
	m.assign("w1", true, []*api.Task{starting})
	r.run(time.Second)
	if !r.exec.IsRunning("a") || r.exec.Stats.Started != 1 {
		t.Fatalf("running %v after %d starts", r.exec.Running(), r.exec.Stats.Started)
	}
	if got := m.reports(); len(got) == 0 || got[len(got)-1] != "a:TASK_STATE_RUNNING" {
		t.Errorf("reports %v", got)
	}
}

// Stop and Start of one Agent behave as a restart: containers are kept and
// adopted, none started again.
func TestAgentStopStart(t *testing.T) {
	r := newRig(t, []env.NodeID{"m1"}, []env.NodeID{"m1"}, sim.ExecutorConfig{})
	defer r.k.Activate()()
	m := r.mgrs["m1"]
	m.on = leader(nil)
	r.run(10 * time.Millisecond)
	m.assign("w1", true, []*api.Task{newTask("a", "web:1", api.TaskState_TASK_STATE_RUNNING)})
	r.run(time.Second)
	r.agent.Stop()
	r.run(time.Second)
	r.w.Post(r.agent.Start)
	r.run(10 * time.Millisecond)
	running := newTask("a", "web:1", api.TaskState_TASK_STATE_RUNNING)
	running.Status = &api.TaskStatus{State: api.TaskState_TASK_STATE_RUNNING}
	m.seq = 0
	m.assign("w1", true, []*api.Task{running})
	r.run(time.Second)
	if !r.exec.IsRunning("a") || r.exec.Stats.Started != 1 || r.agent.Stats().TasksAdopted != 1 {
		t.Fatalf("running %v, %d starts, stats %+v", r.exec.Running(), r.exec.Stats.Started, r.agent.Stats())
	}
}
