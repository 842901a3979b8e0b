package dispatcher_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/swarmsim/swarmsim/engine/agent"
	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/dispatcher"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/store"
	"github.com/swarmsim/swarmsim/sim"
)

// cluster is a simulated leader (m1, with a store on a Loopback proposer
// and a dispatcher), optional followers, and workers each running an agent
// over the fake executor. The tests play the scheduler and the orchestrator
// by writing tasks into the store.
type cluster struct {
	t    testing.TB
	k    *sim.Kernel
	net  *sim.Network
	m    *sim.Node
	st   *store.Store
	disp map[env.NodeID]*dispatcher.Dispatcher
	// leader is who LeaderID names.
	leader env.NodeID

	workers []*worker
	byID    map[env.NodeID]*worker

	// record keeps the Assignments every worker received, when set.
	record   bool
	received map[env.NodeID][]*api.Assignments

	taskSeq int
}

type worker struct {
	id    env.NodeID
	node  *sim.Node
	ep    *sim.Endpoint
	exec  *sim.Executor
	agent *agent.Agent
	cfg   agent.Config
}

type clusterOpts struct {
	seed      uint64
	workers   int
	link      sim.LinkModel
	exec      sim.ExecutorConfig
	disp      dispatcher.Config
	followers int  // extra managers m2.., whose dispatchers stay stopped
	managers  bool // workers know every manager, not just m1
	record    bool
}

func newCluster(t testing.TB, o clusterOpts) *cluster {
	t.Helper()
	if o.link.Latency == (sim.Range{}) {
		o.link.Latency = sim.Fixed(time.Millisecond)
	}
	if o.exec.Start == (sim.Range{}) {
		o.exec.Start = sim.Fixed(time.Second)
	}
	k := sim.NewKernel(o.seed)
	c := &cluster{
		t: t, k: k, net: sim.NewNetwork(k, o.link),
		disp: make(map[env.NodeID]*dispatcher.Dispatcher), leader: "m1",
		byID: make(map[env.NodeID]*worker), record: o.record,
		received: make(map[env.NodeID][]*api.Assignments),
	}
	c.m = k.AddNode("m1")
	c.st = store.New(c.m)
	c.st.SetProposer(store.NewLoopback(c.st, c.m))
	managers := []env.NodeID{"m1"}
	for i := range o.followers {
		managers = append(managers, env.NodeID(fmt.Sprint("m", i+2)))
	}
	for i, id := range managers {
		n := c.m
		if i > 0 {
			n = k.AddNode(string(id))
		}
		var d *dispatcher.Dispatcher
		ep := c.net.Attach(n, id, func(from env.Peer, m env.Message) { d.Handle(from, m) })
		ep.SetIdentity(env.Peer{ID: id, Role: env.RoleManager})
		// Followers share the leader's store: it stands for their replica,
		// which a failover test needs to be current.
		d = dispatcher.New(dispatcher.Deps{
			ID: id, Loop: n, Clock: n, Rand: n.Rand("dispatcher"), Transport: ep, Store: c.st,
			Config: o.disp, LeaderID: func() env.NodeID { return c.leader },
		})
		c.disp[id] = d
	}
	c.m.Post(c.disp["m1"].Start)
	known := managers[:1]
	if o.managers {
		known = managers
	}
	for i := range o.workers {
		c.addWorker(fmt.Sprint("w", i+1), o.exec, known)
	}
	return c
}

func (c *cluster) addWorker(name string, ex sim.ExecutorConfig, managers []env.NodeID) *worker {
	id := env.NodeID(name)
	w := &worker{id: id, node: c.k.AddNode(name)}
	w.ep = c.net.Attach(w.node, id, func(from env.Peer, m env.Message) { c.deliver(w, from, m) })
	w.ep.SetIdentity(env.Peer{ID: id, Role: env.RoleWorker})
	w.exec = sim.NewExecutor(w.node, id, ex)
	w.cfg = agent.Config{
		Managers: managers,
		Description: &api.NodeDescription{
			Hostname:  name,
			Resources: &api.Resources{NanoCpus: 4e9, MemoryBytes: 8 << 30},
		},
	}
	c.workers = append(c.workers, w)
	c.byID[id] = w
	c.startAgent(w)
	return w
}

func (c *cluster) deliver(w *worker, from env.Peer, m env.Message) {
	if a, ok := m.(*api.Assignments); ok && c.record {
		c.received[w.id] = append(c.received[w.id], a)
	}
	w.agent.Handle(from, m)
}

// startAgent makes a new agent for w (a first start or a restart) over
// w's executor.
func (c *cluster) startAgent(w *worker) {
	w.agent = agent.New(agent.Deps{
		ID: w.id, Loop: w.node, Clock: w.node, Rand: w.node.Rand("agent"),
		Transport: w.ep, Executor: w.exec, Config: w.cfg,
	})
	w.node.Post(w.agent.Start)
}

// crash kills w's machine: its agent, its pending events, its containers.
func (c *cluster) crash(w *worker) {
	w.agent.Stop()
	w.node.Crash()
	w.exec.Crash()
}

// restart brings a crashed worker back with a new agent.
func (c *cluster) restart(w *worker) {
	w.node.Start()
	c.startAgent(w)
}

// run advances virtual time by d.
func (c *cluster) run(d time.Duration) { c.k.RunUntil(c.k.Now()+d, nil) }

// runUntil advances until cond holds, at most d; it reports whether cond
// held.
func (c *cluster) runUntil(d time.Duration, cond func() bool) bool {
	end := c.k.Now() + d
	for c.k.Now() < end {
		c.k.RunUntil(min(c.k.Now()+100*time.Millisecond, end), nil)
		if cond() {
			return true
		}
	}
	return cond()
}

// update runs a store transaction on the leader's loop and fails the test
// if it fails.
func (c *cluster) update(fn func(tx *store.Tx) error) {
	c.m.Post(func() {
		c.st.Update(fn, func(err error) {
			if err != nil {
				c.t.Errorf("store update: %v", err)
			}
		})
	})
	c.run(0)
}

// assign creates n tasks of image on node, assigned and desired RUNNING,
// as the scheduler would leave them; it returns their IDs.
func (c *cluster) assign(node env.NodeID, image string, n int, mod ...func(*api.Task)) []string {
	var ids []string
	c.update(func(tx *store.Tx) error {
		for range n {
			c.taskSeq++
			t := &api.Task{
				Id:           fmt.Sprintf("t%06d", c.taskSeq),
				ServiceId:    "svc",
				NodeId:       string(node),
				DesiredState: api.TaskState_TASK_STATE_RUNNING,
				Spec: &api.TaskSpec{
					Container: &api.ContainerSpec{Image: image},
					Limits:    &api.Resources{NanoCpus: 1e8, MemoryBytes: 1 << 20},
				},
				Status: &api.TaskStatus{State: api.TaskState_TASK_STATE_ASSIGNED, Timestamp: tx.Timestamp()},
			}
			for _, f := range mod {
				f(t)
			}
			if err := tx.Create(t); err != nil {
				return err
			}
			ids = append(ids, t.Id)
		}
		return nil
	})
	return ids
}

// setDesired sets tasks' desired state, as the orchestrator does.
func (c *cluster) setDesired(state api.TaskState, ids ...string) {
	c.update(func(tx *store.Tx) error {
		for _, id := range ids {
			t := tx.Task(id).ShallowCopy()
			t.DesiredState = state
			if err := tx.Update(t); err != nil {
				return err
			}
		}
		return nil
	})
}

func (c *cluster) taskState(id string) api.TaskState {
	return c.st.Task(id).GetStatus().GetState()
}

func (c *cluster) nodeState(id env.NodeID) api.NodeState {
	return c.st.Node(string(id)).GetStatus().GetState()
}

func (c *cluster) allInState(state api.TaskState, ids []string) bool {
	for _, id := range ids {
		if c.taskState(id) != state {
			return false
		}
	}
	return true
}

func (c *cluster) readyNodes() int {
	n := 0
	for node := range c.st.EachNode() {
		if node.GetStatus().GetState() == api.NodeState_NODE_STATE_READY {
			n++
		}
	}
	return n
}

const (
	ready = api.NodeState_NODE_STATE_READY
	down  = api.NodeState_NODE_STATE_DOWN
)
