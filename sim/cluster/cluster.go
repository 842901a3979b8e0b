// Package cluster builds a simulated swarm: machines (kernel node, disk,
// network endpoint, fake container runtime) running engine nodes, and the
// faults a scenario applies to them. It is the one place where the
// simulator meets the engine's composition, so the kernel, disk and network
// stay leaf packages that the engine's own tests can use.
package cluster

import (
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/swarmsim/swarmsim/engine/agent"
	"github.com/swarmsim/swarmsim/engine/allocator"
	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/ca"
	"github.com/swarmsim/swarmsim/engine/dispatcher"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/manager"
	"github.com/swarmsim/swarmsim/engine/node"
	"github.com/swarmsim/swarmsim/engine/raft"
	"github.com/swarmsim/swarmsim/sim"
)

// ClusterConfig is how every node of a simulated cluster behaves.
type ClusterConfig struct {
	Network  sim.LinkModel
	DiskSync sim.Range
	Executor sim.ExecutorConfig
	// Raft holds the timing every manager uses; RaftID, Observer and Logf
	// are set per node.
	Raft       raft.Config
	Dispatcher dispatcher.Config
	Allocator  allocator.Config
	Agent      agent.Config
	// Cluster is the spec the first leader writes.
	Cluster *api.ClusterSpec
	// RaftObserver sees every manager's applied entries and state changes
	// (the invariant checkers).
	RaftObserver raft.Observer
	Logger       *slog.Logger
	// OnDecision hears every node's admission decision on every inbound
	// message (the security scenarios count an attacker's successes).
	OnDecision func(ca.Decision)
}

// NodeShape is one machine's size and labels.
type NodeShape struct {
	NanoCPUs, MemoryBytes int64
	Labels                map[string]string
}

// NodeStatus is a simulated machine's power state.
type NodeStatus uint8

const (
	NodeUp      NodeStatus = iota
	NodeCrashed            // died; `restart` brings it back from its disk
	NodeStopped            // shut down cleanly; `start` brings it back
	NodeRemoved            // left the cluster for good
)

func (s NodeStatus) String() string {
	return [...]string{"up", "crashed", "stopped", "removed"}[s]
}

// Machine is one simulated node: its kernel node, disk, network endpoint,
// container runtime and, while it is up, the engine node running on them.
type Machine struct {
	// Name, Engine and cert come first, in one cache line: the simulated
	// TLS handshake reads them on every message (deliverTo).
	Name   string
	Engine *node.Node // nil while down
	// cert is what the machine presents now: its last certificate (one
	// that crashed keeps presenting it, as a thief of its disk would),
	// nil until its node says which one its disk holds.
	cert *ca.Certificate

	Manager bool // runs a manager (raft member)
	Shape   NodeShape
	Status  NodeStatus

	Kernel   *sim.Node
	Disk     *sim.Disk
	Endpoint *sim.Endpoint
	Executor *sim.Executor

	raftID      uint64
	bootstrap   bool   // one of the initial managers
	joinToken   string // the token it joins with, when not the current one
	incarnation int
	err         error // why the engine stopped on its own
}

// Err is why the machine's engine could not start or stopped on its own.
func (m *Machine) Err() error { return m.err }

// RaftID is the machine's raft ID (managers).
func (m *Machine) RaftID() uint64 { return m.raftID }

// Cluster is a simulated swarm: machines on one kernel and one network.
type Cluster struct {
	K        *sim.Kernel
	Net      *sim.Network
	cfg      ClusterConfig
	machines []*Machine
	byName   map[string]*Machine
	byNode   []*Machine // by sim node index (Node.Index)
	// managers caches the machines that run a manager and are not removed,
	// in the order added (nil: to rebuild): every boot and every Leader
	// call wants them, and walking every machine for them made building a
	// cluster quadratic. Whatever changes Machine.Manager or Status to or
	// from NodeRemoved resets it.
	managers []*Machine
	initial  []raft.Member
	rand     *sim.Rand
	sec      security
}

// NewCluster returns a cluster on k with no machines yet.
func NewCluster(k *sim.Kernel, cfg ClusterConfig) *Cluster {
	return &Cluster{
		K:      k,
		Net:    sim.NewNetwork(k, cfg.Network),
		cfg:    cfg,
		byName: make(map[string]*Machine),
		rand:   k.NewRand("cluster"),
		sec:    security{shared: ca.NewShared()},
	}
}

// Machines lists every machine in the order they were added.
func (c *Cluster) Machines() []*Machine { return c.machines }

// Machine returns the machine called name, or nil.
func (c *Cluster) Machine(name string) *Machine { return c.byName[name] }

// Bootstrap adds the initial managers and workers and starts them: the
// managers form a fixed raft group among themselves.
func (c *Cluster) Bootstrap(managers []string, workers []string, shapes map[string]NodeShape) error {
	for _, name := range managers {
		m := c.add(name, true, shapes[name])
		m.raftID = raft.RaftIDFor(env.NodeID(name))
		m.bootstrap = true
		c.initial = append(c.initial, raft.Member{RaftID: m.raftID, NodeID: env.NodeID(name)})
	}
	for _, name := range workers {
		c.add(name, false, shapes[name])
	}
	if err := c.initCA(); err != nil {
		return err
	}
	for _, m := range c.machines {
		if err := c.boot(m); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) add(name string, manager bool, shape NodeShape) *Machine {
	kn := c.K.AddNode(name)
	m := &Machine{
		Name:    name,
		Manager: manager,
		Shape:   shape,
		Kernel:  kn,
		Disk:    sim.NewDisk(kn, c.cfg.DiskSync),
	}
	xc := c.cfg.Executor
	m.Executor = sim.NewExecutor(kn, env.NodeID(name), xc)
	m.Endpoint = c.Net.Attach(kn, env.NodeID(name), nil)
	m.Endpoint.SetIdentity(env.Peer{ID: env.NodeID(name), Role: roleOf(manager)})
	c.machines = append(c.machines, m)
	c.managers = nil
	c.byName[name] = m
	for kn.Index() >= len(c.byNode) {
		c.byNode = append(c.byNode, nil)
	}
	c.byNode[kn.Index()] = m
	return m
}

func roleOf(manager bool) env.Role {
	if manager {
		return env.RoleManager
	}
	return env.RoleWorker
}

// managerNames lists the machines that run managers and have not left,
// in order.
func (c *Cluster) managerNames() []env.NodeID {
	var out []env.NodeID
	for _, m := range c.managerMachines() {
		out = append(out, env.NodeID(m.Name))
	}
	return out
}

// managerMachines are the machines that run a manager and are not
// removed, in the order added. The slice is shared: do not modify it.
func (c *Cluster) managerMachines() []*Machine {
	if c.managers == nil {
		c.managers = []*Machine{}
		for _, m := range c.machines {
			if m.Manager && m.Status != NodeRemoved {
				c.managers = append(c.managers, m)
			}
		}
	}
	return c.managers
}

// boot starts the engine on a machine that is up.
func (c *Cluster) boot(m *Machine) error {
	m.incarnation++
	m.err = nil
	e := env.Env{
		ID:        env.NodeID(m.Name),
		Loop:      m.Kernel,
		Clock:     m.Kernel,
		Rand:      m.Kernel.Rand("engine/" + strconv.Itoa(m.incarnation)),
		Transport: m.Endpoint,
		Storage:   m.Disk,
		Executor:  m.Executor,
	}
	cfg := node.Config{Agent: c.cfg.Agent, Logger: c.cfg.Logger}
	cfg.Crypt.Rand = m.Kernel.Rand("crypt/" + strconv.Itoa(m.incarnation))
	cfg.Agent.Managers = c.managerNames()
	cfg.Agent.Description = &api.NodeDescription{
		Hostname:     m.Name,
		Resources:    &api.Resources{NanoCpus: m.Shape.NanoCPUs, MemoryBytes: m.Shape.MemoryBytes},
		EngineLabels: m.Shape.Labels,
	}
	rc := c.cfg.Raft
	rc.Observer = c.cfg.RaftObserver
	template := manager.Config{
		Raft:       rc,
		Dispatcher: c.cfg.Dispatcher,
		Allocator:  c.cfg.Allocator,
		Cluster:    c.cfg.Cluster,
	}
	if c.sec.boot != nil {
		template.RootCA, template.JoinTokens = c.sec.boot.RootCA(), c.sec.boot.Tokens
	}
	cfg.CA = c.caConfig(m)
	cfg.Promotion = &template
	cfg.OnRoleChange = func(isManager bool) { c.setManager(m, isManager) }
	if m.Manager {
		mc := template
		mc.Raft.RaftID = m.raftID // 0 for a promoted worker: its disk keeps it
		if m.bootstrap {
			mc.Bootstrap = c.initial
		} else {
			mc.Join = slices.DeleteFunc(c.managerNames(), func(id env.NodeID) bool { return id == env.NodeID(m.Name) })
		}
		cfg.Manager = &mc
	}
	var eng *node.Node
	var err error
	// The engine starts as an event on its own loop, as a real process
	// starts on its own goroutine.
	eng, err = node.New(e, cfg)
	if err != nil {
		m.err = err
		return fmt.Errorf("start %s: %w", m.Name, err)
	}
	m.Engine = eng
	m.Endpoint.SetHandlerFrom(c.deliverTo(m, eng))
	return nil
}

// setManager records that a machine's node started or stopped its manager
// (promoted and joined, or removed from raft).
func (c *Cluster) setManager(m *Machine, isManager bool) {
	m.Manager = isManager
	c.managers = nil
	id := m.Endpoint.Identity()
	id.Role = roleOf(isManager)
	m.Endpoint.SetIdentity(id)
}

// Crash kills a machine at once: its pending events, unsynced writes and
// containers are lost.
func (c *Cluster) Crash(name string) error {
	m, err := c.machine(name, NodeUp)
	if err != nil {
		return err
	}
	c.down(m)
	m.Disk.Crash()
	m.Status = NodeCrashed
	c.managers = nil
	return nil
}

// Stop shuts a machine down cleanly: the engine stops, the disk is
// flushed, then the machine powers off.
func (c *Cluster) Stop(name string) error {
	m, err := c.machine(name, NodeUp)
	if err != nil {
		return err
	}
	if m.Engine != nil {
		m.Engine.Stop()
	}
	m.Disk.Flush()
	c.down(m)
	m.Status = NodeStopped
	c.managers = nil
	return nil
}

func (c *Cluster) down(m *Machine) {
	m.Kernel.Crash()
	m.Executor.Crash()
	m.Endpoint.SetHandler(nil)
	m.Engine = nil
}

// Restart starts a crashed machine again from its disk.
func (c *Cluster) Restart(name string) error {
	m, err := c.machine(name, NodeCrashed)
	if err != nil {
		return err
	}
	return c.up(m)
}

// Start starts a cleanly stopped machine again.
func (c *Cluster) Start(name string) error {
	m, err := c.machine(name, NodeStopped)
	if err != nil {
		return err
	}
	return c.up(m)
}

func (c *Cluster) up(m *Machine) error {
	m.Kernel.Start()
	m.Status = NodeUp
	c.managers = nil
	return c.boot(m)
}

// AddManager adds a new machine running a manager that joins the raft
// group through the running managers (learner first, then voter).
func (c *Cluster) AddManager(name string, shape NodeShape) (*Machine, error) {
	if c.byName[name] != nil {
		return nil, fmt.Errorf("a node called %s exists", name)
	}
	m := c.add(name, true, shape)
	m.raftID = raft.NewRaftID(c.rand)
	return m, c.boot(m)
}

// AddWorker adds a new worker machine, which joins with the current
// worker token.
func (c *Cluster) AddWorker(name string, shape NodeShape) (*Machine, error) {
	return c.AddWorkerWithToken(name, shape, "")
}

// AddWorkerWithToken adds a new worker machine that joins with token (""
// means the current worker token).
func (c *Cluster) AddWorkerWithToken(name string, shape NodeShape, token string) (*Machine, error) {
	if c.byName[name] != nil {
		return nil, fmt.Errorf("a node called %s exists", name)
	}
	m := c.add(name, false, shape)
	m.joinToken = token
	return m, c.boot(m)
}

// Remove takes a machine out for good: it powers off and never returns.
func (c *Cluster) Remove(name string) error {
	m := c.byName[name]
	if m == nil {
		return fmt.Errorf("no node called %s", name)
	}
	if m.Status == NodeUp {
		if m.Engine != nil {
			m.Engine.Stop()
		}
		c.down(m)
	}
	m.Status = NodeRemoved
	c.managers = nil
	return nil
}

func (c *Cluster) machine(name string, want NodeStatus) (*Machine, error) {
	m := c.byName[name]
	if m == nil {
		return nil, fmt.Errorf("no node called %s", name)
	}
	if m.Status != want {
		return nil, fmt.Errorf("node %s is %s, not %s", name, m.Status, want)
	}
	return m, nil
}

// Leader returns the manager a quorum of running managers follows as
// leader, and whether there is one. A leader only some minority believes in
// (a deposed leader still partitioned away) does not count.
func (c *Cluster) Leader() (*Machine, bool) {
	votes := map[env.NodeID]int{}
	voters := 0
	for _, m := range c.managerMachines() {
		voters++
		if m.Engine == nil || m.Engine.Manager() == nil {
			continue
		}
		if l := m.Engine.Manager().LeaderID(); l != "" {
			votes[l]++
		}
	}
	var best env.NodeID
	for id, n := range votes {
		if n > voters/2 {
			best = id
		}
	}
	if best == "" {
		return nil, false
	}
	lm := c.byName[string(best)]
	if lm == nil || lm.Engine == nil || lm.Engine.Manager() == nil || !lm.Engine.Manager().IsLeader() {
		return nil, false
	}
	return lm, true
}

// Skew sets how far a machine's clock runs ahead of virtual time.
func (c *Cluster) Skew(name string, by time.Duration) error {
	m := c.byName[name]
	if m == nil {
		return fmt.Errorf("no node called %s", name)
	}
	m.Kernel.SetSkew(by)
	return nil
}
