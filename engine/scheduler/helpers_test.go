package scheduler_test

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/scheduler"
	"github.com/swarmsim/swarmsim/engine/store"
	"github.com/swarmsim/swarmsim/sim"
)

// harness is a scheduler over a store on one simulated node. Proposals
// apply through a Loopback posted to the node's loop, as after a raft
// commit; hold makes them wait until release, to test batches in flight.
// Callers defer h.k.Activate()().
type harness struct {
	t     *testing.T
	k     *sim.Kernel
	n     *sim.Node
	st    *store.Store
	s     *scheduler.Scheduler
	lb    *store.Loopback
	held  []heldProposal
	hold  bool
	fail  error // when set, proposals fail with it instead of applying
	nextT int
}

type heldProposal struct {
	data []byte
	done store.Proposal
}

// Propose implements store.Proposer: straight to the loopback, or held.
func (h *harness) Propose(data []byte, done store.Proposal) {
	if h.fail != nil {
		err := h.fail
		h.n.Post(func() { done.Done(nil, err) })
		return
	}
	if h.hold {
		h.held = append(h.held, heldProposal{data, done})
		return
	}
	h.lb.Propose(data, done)
}

// release lets the held proposals apply, in order, and settles.
func (h *harness) release() {
	h.t.Helper()
	held := h.held
	h.held = nil
	for _, p := range held {
		h.lb.Propose(p.data, p.done)
	}
	h.settle()
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	k := sim.NewKernel(7)
	n := k.AddNode("m1")
	st := store.New(n)
	h := &harness{t: t, k: k, n: n, st: st, lb: store.NewLoopback(st, n)}
	st.SetProposer(h)
	h.s = scheduler.New(st, n, n, nil)
	return h
}

// settle runs everything due now: applies, watch callbacks, turns.
func (h *harness) settle() { h.k.RunUntil(h.k.Now(), nil) }

// advance moves virtual time on, running what falls due.
func (h *harness) advance(d time.Duration) { h.k.RunUntil(h.k.Now()+d, nil) }

// update runs one transaction and waits until it applied.
func (h *harness) update(fn func(tx *store.Tx) error) {
	h.t.Helper()
	var done bool
	var err error
	h.st.Update(fn, func(e error) { done, err = true, e })
	h.settle()
	if !done || err != nil {
		h.t.Fatalf("update: done=%v err=%v", done, err)
	}
}

func (h *harness) now() int64 { return h.n.Now().UnixNano() }

// ------------------------------------------------------------- builders

type nodeOpt func(*api.Node)

func mkNode(id string, opts ...nodeOpt) *api.Node {
	n := &api.Node{
		Id:   id,
		Spec: &api.NodeSpec{Name: id},
		Description: &api.NodeDescription{
			Hostname:  "host-" + id,
			Resources: &api.Resources{NanoCpus: 4e9, MemoryBytes: 8 << 30},
		},
		Status: &api.NodeStatus{State: api.NodeState_NODE_STATE_READY},
	}
	for _, o := range opts {
		o(n)
	}
	return n
}

func labels(kv ...string) nodeOpt {
	return func(n *api.Node) {
		n.Spec.Labels = map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			n.Spec.Labels[kv[i]] = kv[i+1]
		}
	}
}

func engineLabels(kv ...string) nodeOpt {
	return func(n *api.Node) {
		n.Description.EngineLabels = map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			n.Description.EngineLabels[kv[i]] = kv[i+1]
		}
	}
}

func resources(cpu, mem int64) nodeOpt {
	return func(n *api.Node) { n.Description.Resources = &api.Resources{NanoCpus: cpu, MemoryBytes: mem} }
}

func state(s api.NodeState) nodeOpt {
	return func(n *api.Node) { n.Status.State = s }
}

func availability(a api.NodeAvailability) nodeOpt {
	return func(n *api.Node) { n.Spec.Availability = a }
}

func manager(n *api.Node) { n.Role = api.NodeRole_NODE_ROLE_MANAGER }

// spec returns a task spec reserving cpu nano-CPUs and mem bytes.
func spec(cpu, mem int64, constraints ...string) *api.TaskSpec {
	return &api.TaskSpec{
		Container:    &api.ContainerSpec{Image: "img"},
		Reservations: &api.Resources{NanoCpus: cpu, MemoryBytes: mem},
		Placement:    &api.Placement{Constraints: constraints},
	}
}

func (h *harness) addNodes(nodes ...*api.Node) {
	h.t.Helper()
	h.update(func(tx *store.Tx) error {
		for _, n := range nodes {
			if err := tx.Create(n); err != nil {
				return err
			}
		}
		return nil
	})
}

// setNode replaces a stored node by fn's change of a copy.
func (h *harness) setNode(id string, fn func(n *api.Node)) {
	h.t.Helper()
	h.update(func(tx *store.Tx) error {
		n := cloneNode(tx.Node(id))
		fn(n)
		return tx.Update(n)
	})
}

func cloneNode(n *api.Node) *api.Node {
	c := n.ShallowCopy()
	c.Spec = &api.NodeSpec{Name: n.Spec.GetName(), Labels: maps.Clone(n.Spec.GetLabels()),
		DesiredRole: n.Spec.GetDesiredRole(), Availability: n.Spec.GetAvailability()}
	d := n.GetDescription()
	c.Description = &api.NodeDescription{Hostname: d.GetHostname(), Resources: d.GetResources(),
		EngineLabels: maps.Clone(d.GetEngineLabels())}
	c.Status = n.Status.ShallowCopy()
	return c
}

func (h *harness) addService(id string, ts *api.TaskSpec) {
	h.t.Helper()
	h.update(func(tx *store.Tx) error {
		return tx.Create(&api.Service{Id: id, Spec: &api.ServiceSpec{Name: id, Task: ts,
			Mode: &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{}}}})
	})
}

// pendingTask returns a new PENDING task of svc with spec ts, on node (""
// for none), with an ID that sorts by creation order.
func (h *harness) pendingTask(svc string, ts *api.TaskSpec, node string) *api.Task {
	h.nextT++
	return &api.Task{
		Id: fmt.Sprintf("t%05d", h.nextT), ServiceId: svc, Spec: ts, SpecVersion: 1,
		Slot: uint64(h.nextT), NodeId: node, DesiredState: api.TaskState_TASK_STATE_RUNNING,
		Status: &api.TaskStatus{State: api.TaskState_TASK_STATE_PENDING, Timestamp: h.now()},
	}
}

// addTasks creates k pending tasks of svc and returns their IDs.
func (h *harness) addTasks(svc string, ts *api.TaskSpec, k int) []string {
	h.t.Helper()
	var ids []string
	h.update(func(tx *store.Tx) error {
		for range k {
			t := h.pendingTask(svc, ts, "")
			ids = append(ids, t.Id)
			if err := tx.Create(t); err != nil {
				return err
			}
		}
		return nil
	})
	return ids
}

// addRunning creates a task of svc already running on node.
func (h *harness) addRunning(svc string, ts *api.TaskSpec, node string, ports ...*api.PortConfig) string {
	h.t.Helper()
	t := h.pendingTask(svc, ts, node)
	t.Status = &api.TaskStatus{State: api.TaskState_TASK_STATE_RUNNING, Timestamp: h.now()}
	if len(ports) > 0 {
		t.Endpoint = &api.Endpoint{Ports: ports}
	}
	h.update(func(tx *store.Tx) error { return tx.Create(t) })
	return t.Id
}

// setStatus moves a task's status forward.
func (h *harness) setStatus(id string, st api.TaskState) {
	h.t.Helper()
	h.update(func(tx *store.Tx) error {
		return tx.UpdateTaskStatus(id, &api.TaskStatus{State: st, Timestamp: h.now()})
	})
}

func hostPortCfg(port uint32, proto api.PortConfig_Protocol) *api.PortConfig {
	return &api.PortConfig{Protocol: proto, TargetPort: 80, PublishedPort: port, PublishMode: api.PortConfig_HOST}
}

// ------------------------------------------------------------- queries

// nodeOf returns the node a task is on, "" if none.
func (h *harness) nodeOf(id string) string {
	t := h.st.Task(id)
	if t == nil {
		h.t.Fatalf("task %s does not exist", id)
	}
	return t.NodeId
}

// placement returns the node of each of ids ("" if pending).
func (h *harness) placement(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = h.nodeOf(id)
	}
	return out
}

// perNode counts the tasks of ids on each node; pending ones under "".
func (h *harness) perNode(ids []string) map[string]int {
	out := map[string]int{}
	for _, id := range ids {
		out[h.nodeOf(id)]++
	}
	return out
}

func (h *harness) reason(id string) string { return h.st.Task(id).GetPendingReason() }

// assertAssigned fails unless every task of ids is ASSIGNED on a node.
func (h *harness) assertAssigned(ids ...string) {
	h.t.Helper()
	for _, id := range ids {
		t := h.st.Task(id)
		if t.NodeId == "" || t.Status.State != api.TaskState_TASK_STATE_ASSIGNED || t.PendingReason != "" {
			h.t.Fatalf("task %s: node %q state %s reason %q, want assigned", id, t.NodeId, t.Status.State, t.PendingReason)
		}
	}
}

// assertPending fails unless every task of ids is PENDING on no node with
// the given reason.
func (h *harness) assertPending(reason string, ids ...string) {
	h.t.Helper()
	for _, id := range ids {
		t := h.st.Task(id)
		if t.Status.State != api.TaskState_TASK_STATE_PENDING || t.PendingReason != reason {
			h.t.Fatalf("task %s: node %q state %s reason %q, want pending with %q", id, t.NodeId, t.Status.State, t.PendingReason, reason)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
