package orchestrator_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/orchestrator"
	"github.com/swarmsim/swarmsim/engine/store"
	"github.com/swarmsim/swarmsim/sim"
)

// The tests are external (package orchestrator_test): they drive the
// simulator, and sim imports the manager, which imports this package.

const (
	assigned = api.TaskState_TASK_STATE_ASSIGNED
	ready    = api.TaskState_TASK_STATE_READY
	running  = api.TaskState_TASK_STATE_RUNNING
	complete = api.TaskState_TASK_STATE_COMPLETE
	shutdown = api.TaskState_TASK_STATE_SHUTDOWN
	failed   = api.TaskState_TASK_STATE_FAILED
	remove   = api.TaskState_TASK_STATE_REMOVE
)

// live: meant to run (desired READY or RUNNING).
func live(t *api.Task) bool { return t.DesiredState <= running }

// ended: stopped, for whatever reason.
func ended(t *api.Task) bool { return t.GetStatus().GetState() > running }

// harness runs an orchestrator on one simulated manager whose store
// applies proposals through a Loopback on the manager's loop. The test
// plays the other subsystems: a fake cluster moves tasks along (allocator,
// scheduler, agents) every tick, or the test writes statuses itself.
type harness struct {
	t       testing.TB
	k       *sim.Kernel
	n       *sim.Node
	st      *store.Store
	o       *orchestrator.Orchestrator
	restore func()

	// the fake cluster
	tick     time.Duration
	agents   bool            // move tasks along on every tick
	fail     map[string]bool // images whose containers fail at start
	sick     map[string]bool // images that start, then fail their health check
	exits    map[string]bool // images whose containers exit 0 once running
	rr       int             // round-robin cursor of the fake scheduler
	stopTick bool
}

func newHarness(t testing.TB, seed uint64) *harness {
	t.Helper()
	k := sim.NewKernel(seed)
	h := &harness{t: t, k: k, restore: k.Activate(), tick: 100 * time.Millisecond,
		fail: map[string]bool{}, sick: map[string]bool{}, exits: map[string]bool{}}
	t.Cleanup(h.restore)
	h.n = k.AddNode("m1")
	h.st = store.New(h.n)
	h.st.SetProposer(store.NewLoopback(h.st, h.n))
	h.o = orchestrator.New(orchestrator.Deps{Store: h.st, Clock: h.n, Loop: h.n, Rand: h.n.Rand("orchestrator")})
	return h
}

// startAgents runs the fake cluster every tick.
func (h *harness) startAgents() {
	h.agents = true
	var step func()
	step = func() {
		if h.stopTick {
			return
		}
		if h.agents {
			h.clusterStep()
		}
		h.n.AfterFunc(h.tick, step)
	}
	h.n.AfterFunc(h.tick, step)
}

// run advances virtual time by d.
func (h *harness) run(d time.Duration) {
	h.t.Helper()
	h.k.RunUntil(h.k.Now()+d, nil)
}

// settle runs until nothing is left to do (no agents ticking) or 1 minute.
func (h *harness) settle() {
	h.t.Helper()
	end := h.k.Now() + time.Minute
	for h.k.Pending() > 0 && h.k.Now() <= end {
		h.k.Step()
	}
}

// do writes through the store and waits until it applied.
func (h *harness) do(fn func(tx *store.Tx) error) {
	h.t.Helper()
	var done bool
	var err error
	h.st.Update(fn, func(e error) { done, err = true, e })
	for !done && h.k.Step() {
	}
	if !done || err != nil {
		h.t.Fatalf("write: done=%v err=%v", done, err)
	}
}

func (h *harness) now() int64 { return h.n.Now().UnixNano() }

// ------------------------------------------------------------ the world

func (h *harness) addNode(id string, labels map[string]string) {
	h.t.Helper()
	h.do(func(tx *store.Tx) error {
		return tx.Create(&api.Node{
			Id:          id,
			Spec:        &api.NodeSpec{Name: id, Labels: labels},
			Description: &api.NodeDescription{Hostname: id},
			Status:      &api.NodeStatus{State: api.NodeState_NODE_STATE_READY},
		})
	})
}

func (h *harness) editNode(id string, f func(n *api.Node)) {
	h.t.Helper()
	h.do(func(tx *store.Tx) error {
		n := tx.Node(id).ShallowCopy()
		f(n)
		return tx.Update(n)
	})
}

func (h *harness) setNodeState(id string, s api.NodeState) {
	h.editNode(id, func(n *api.Node) { n.Status = &api.NodeStatus{State: s} })
}

func (h *harness) setAvailability(id string, a api.NodeAvailability) {
	h.editNode(id, func(n *api.Node) {
		spec := protoClone(n.Spec)
		spec.Availability = a
		n.Spec = spec
	})
}

func (h *harness) setCluster(limit uint64) {
	h.do(func(tx *store.Tx) error {
		if c := tx.Cluster("cluster"); c != nil {
			n := c.ShallowCopy()
			n.Spec = &api.ClusterSpec{Name: "default", TaskHistoryLimit: limit}
			return tx.Update(n)
		}
		return tx.Create(&api.Cluster{Id: "cluster", Spec: &api.ClusterSpec{Name: "default", TaskHistoryLimit: limit}})
	})
}

// replicated returns a spec for a replicated service.
func replicated(name, image string, replicas uint64) *api.ServiceSpec {
	return &api.ServiceSpec{
		Name: name,
		Task: &api.TaskSpec{Container: &api.ContainerSpec{Image: image}},
		Mode: &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: replicas}},
	}
}

func global(name, image string) *api.ServiceSpec {
	return &api.ServiceSpec{
		Name: name,
		Task: &api.TaskSpec{Container: &api.ContainerSpec{Image: image}},
		Mode: &api.ServiceSpec_Global{Global: &api.GlobalService{}},
	}
}

func (h *harness) createService(spec *api.ServiceSpec) string {
	h.t.Helper()
	id := "svc-" + spec.Name
	h.do(func(tx *store.Tx) error {
		return tx.Create(&api.Service{Id: id, Spec: spec, SpecVersion: 1})
	})
	return id
}

// updateService plays the control API: the new spec, the old one kept as
// previous_spec, spec_version one higher. update_status is left as it is:
// the orchestrator must tell a stale one.
func (h *harness) updateService(id string, f func(spec *api.ServiceSpec)) {
	h.t.Helper()
	h.do(func(tx *store.Tx) error {
		cur := tx.Service(id)
		n := cur.ShallowCopy()
		spec := protoClone(cur.Spec)
		f(spec)
		n.PreviousSpec, n.PreviousSpecVersion = cur.Spec, cur.SpecVersion
		n.Spec, n.SpecVersion = spec, cur.SpecVersion+1
		return tx.Update(n)
	})
}

// rollbackService plays the control API's manual rollback: spec and
// previous_spec swap, update_status ROLLBACK_STARTED.
func (h *harness) rollbackService(id string) {
	h.t.Helper()
	h.do(func(tx *store.Tx) error {
		cur := tx.Service(id)
		n := cur.ShallowCopy()
		n.Spec, n.PreviousSpec = cur.PreviousSpec, cur.Spec
		n.SpecVersion, n.PreviousSpecVersion = cur.SpecVersion+1, cur.SpecVersion
		n.UpdateStatus = &api.UpdateStatus{State: api.UpdateStatus_ROLLBACK_STARTED, Message: "manually requested rollback"}
		return tx.Update(n)
	})
}

func (h *harness) scale(id string, replicas uint64) {
	h.updateService(id, func(s *api.ServiceSpec) {
		s.Mode = &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: replicas}}
	})
}

func (h *harness) deleteService(id string) {
	h.do(func(tx *store.Tx) error { return tx.Delete(store.KindService, id, 0) })
}

// setStatus plays an agent: one task's status moves to s.
func (h *harness) setStatus(taskID string, s api.TaskState, unhealthy bool) {
	h.t.Helper()
	ts := h.now()
	h.do(func(tx *store.Tx) error {
		st := &api.TaskStatus{State: s, Timestamp: ts, Message: strings.ToLower(s.String()), Unhealthy: unhealthy}
		if s == api.TaskState_TASK_STATE_FAILED {
			st.Err, st.ExitCode = "exit 1", 1
		}
		return tx.UpdateTaskStatus(taskID, st)
	})
}

// clusterStep moves every task one step: allocator (NEW to PENDING),
// scheduler (PENDING to ASSIGNED on a ready, active node that fits,
// round-robin), agents (to RUNNING, or FAILED for failing images; to
// SHUTDOWN once asked; COMPLETE for exiting images). Nothing moves on a
// node that is not READY.
func (h *harness) clusterStep() {
	nodes := h.st.Nodes()
	nodeOK := func(id string) bool {
		n := h.st.Node(id)
		return n != nil && !n.Removed && n.GetStatus().GetState() == api.NodeState_NODE_STATE_READY
	}
	ts := h.now()
	var changed bool
	h.st.Update(func(tx *store.Tx) error {
		for t := range h.st.EachTask() {
			st := t.GetStatus().GetState()
			image := t.GetSpec().GetContainer().GetImage()
			set := func(s api.TaskState, unhealthy bool) {
				ns := &api.TaskStatus{State: s, Timestamp: ts, Message: strings.ToLower(s.String()), Unhealthy: unhealthy}
				if s == api.TaskState_TASK_STATE_FAILED {
					ns.Err, ns.ExitCode = "exit 1", 1
				}
				if tx.UpdateTaskStatus(t.Id, ns) == nil {
					changed = true
				}
			}
			switch {
			case st == api.TaskState_TASK_STATE_NEW:
				set(api.TaskState_TASK_STATE_PENDING, false)
			case st == api.TaskState_TASK_STATE_PENDING && t.DesiredState > running:
				// never placed: nothing to stop
			case st == api.TaskState_TASK_STATE_PENDING && t.NodeId != "":
				if nodeOK(t.NodeId) {
					set(api.TaskState_TASK_STATE_ASSIGNED, false)
				}
			case st == api.TaskState_TASK_STATE_PENDING:
				cons, _ := api.ParseConstraints(t.GetSpec().GetPlacement().GetConstraints())
				for i := range nodes {
					n := nodes[(h.rr+i)%len(nodes)]
					if nodeOK(n.Id) && n.GetSpec().GetAvailability() == api.NodeAvailability_NODE_AVAILABILITY_ACTIVE &&
						api.MatchesAll(cons, n) {
						if tx.AssignTask(t.Id, n.Id, t.GetMeta().GetVersion()) == nil {
							changed = true
						}
						h.rr = (h.rr + i + 1) % len(nodes)
						break
					}
				}
			case st >= assigned && st <= running && nodeOK(t.NodeId):
				switch {
				case t.DesiredState > running:
					set(shutdown, false)
				case st < running && t.DesiredState == running && h.fail[image]:
					set(failed, false)
				case st < running && t.DesiredState == running:
					set(running, false)
				case st == running && h.sick[image]:
					set(failed, true)
				case st == running && h.exits[image]:
					set(complete, false)
				}
			}
		}
		return nil
	}, nil)
	_ = changed
}

// -------------------------------------------------------------- queries

func (h *harness) tasks(svc string) []*api.Task { return h.st.TasksByService(svc) }

func (h *harness) count(svc string, pred func(t *api.Task) bool) int {
	n := 0
	for _, t := range h.tasks(svc) {
		if pred(t) {
			n++
		}
	}
	return n
}

func isRunning(t *api.Task) bool {
	return t.DesiredState == running && t.GetStatus().GetState() == running
}

func (h *harness) running(svc string) int { return h.count(svc, isRunning) }

func (h *harness) live(svc string) []*api.Task {
	var out []*api.Task
	for _, t := range h.tasks(svc) {
		if live(t) {
			out = append(out, t)
		}
	}
	return out
}

func (h *harness) runningImage(svc, image string) int {
	return h.count(svc, func(t *api.Task) bool {
		return isRunning(t) && t.GetSpec().GetContainer().GetImage() == image
	})
}

func (h *harness) slots(svc string) []uint64 {
	var out []uint64
	for _, t := range h.live(svc) {
		out = append(out, t.Slot)
	}
	slices.Sort(out)
	return out
}

func (h *harness) updateState(svc string) api.UpdateStatus_State {
	return h.st.Service(svc).GetUpdateStatus().GetState()
}

// waitFor runs until cond holds, failing the test after limit.
func (h *harness) waitFor(limit time.Duration, what string, cond func() bool) {
	h.t.Helper()
	end := h.k.Now() + limit
	for !cond() {
		if h.k.Now() > end || !h.k.Step() {
			h.t.Fatalf("%s: not after %v\n%s", what, limit, h.dump())
		}
	}
}

// dump renders the tasks for a failure message.
func (h *harness) dump() string {
	var b strings.Builder
	for _, svc := range h.st.Services() {
		fmt.Fprintf(&b, "service %s v%d status=%v %q\n", svc.Id, svc.SpecVersion,
			svc.GetUpdateStatus().GetState(), svc.GetUpdateStatus().GetMessage())
	}
	for t := range h.st.EachTask() {
		fmt.Fprintf(&b, "  %s svc=%s slot=%d node=%s desired=%v state=%v image=%s v%d it=%d created=%v\n",
			t.Id[:6], t.ServiceId, t.Slot, t.NodeId, t.DesiredState, t.GetStatus().GetState(),
			t.GetSpec().GetContainer().GetImage(), t.SpecVersion, t.JobIteration,
			time.Duration(t.GetMeta().GetCreatedAt()-sim.Epoch.UnixNano()))
	}
	return b.String()
}

func protoClone[T proto.Message](x T) T { return proto.Clone(x).(T) }
