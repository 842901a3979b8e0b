// Package node composes one swarm node from the engine's parts: every node
// runs an agent (managers run tasks too), and a manager node also runs a
// manager (raft member, store, leader-only subsystems). It routes inbound
// messages to the part they are for.
//
// Like the rest of engine/, it does no I/O and runs on the node's loop.
package node

import (
	"fmt"
	"log/slog"

	"github.com/swarmsim/swarmsim/engine/agent"
	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/ca"
	"github.com/swarmsim/swarmsim/engine/crypt"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/manager"
)

// Config is what a node is started with.
type Config struct {
	// Manager, when set, makes the node a manager.
	Manager *manager.Config
	// Promotion is how a worker runs a manager once it is promoted: its
	// raft and subsystem settings (Bootstrap and Join are ignored; the
	// node joins through the managers its agent knows). Nil: the node
	// cannot be promoted.
	Promotion *manager.Config
	Agent     agent.Config
	Logger    *slog.Logger
	// OnRoleChange, when set, hears the node start or stop its manager.
	OnRoleChange func(manager bool)
	// Crypt tunes the sealing of the node's disk (engine/crypt).
	Crypt crypt.Options
	// CA is how the node gets and renews its certificate.
	CA ca.Config
}

// Node is one running swarm node.
type Node struct {
	// What every inbound message reads comes first, in one cache line:
	// env and cfg before them put them hundreds of bytes in.
	manager *manager.Manager
	agent   *agent.Agent
	ca      *ca.Client
	stopped bool
	// locked: the disk's keys wait for the unlock key and nothing runs
	// (keys.go).
	locked bool

	env env.Env
	cfg Config
	// disk is e.Storage, sealed.
	disk *crypt.SealedStorage
	keys *keyKeeper
}

// New starts a node on e. Its disk is sealed (engine/crypt): a disk whose
// keys the cluster's unlock key wraps leaves the node Locked, running
// nothing, until Unlock.
func New(e env.Env, cfg Config) (*Node, error) {
	disk, err := sealDisk(e, cfg.Crypt)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", e.ID, err)
	}
	e.Storage = disk
	n := &Node{env: e, cfg: cfg, disk: disk, locked: disk.Locked()}
	if n.locked {
		n.log().Warn("locked: the disk's keys are sealed by the cluster's unlock key; waiting for it")
		return n, nil
	}
	if err := n.start(); err != nil {
		return nil, err
	}
	return n, nil
}

// start starts the node's parts: from New, or from Unlock.
func (n *Node) start() error {
	e, cfg := n.env, n.cfg
	// The certificate comes first: every message the node sends carries
	// it, and the agent opens no session before the node has one.
	c, err := ca.NewClient(ca.Deps{Env: e, Config: cfg.CA, Managers: n.managers, Logger: cfg.Logger})
	if err != nil {
		return fmt.Errorf("node %s: %w", e.ID, err)
	}
	n.ca = c
	if cfg.Manager != nil {
		if err := n.startManager(*cfg.Manager); err != nil {
			return err
		}
	}
	n.agent = agent.New(agent.Deps{
		ID:        e.ID,
		Loop:      e.Loop,
		Clock:     e.Clock,
		Rand:      e.Rand,
		Transport: e.Transport,
		Executor:  e.Executor,
		Config:    cfg.Agent,
		Logger:    cfg.Logger,
	})
	n.agent.SetRoleHandler(n.roleWanted)
	n.ca.OnReady(n.agent.Start)
	n.ca.Start()
	return nil
}

// managers are whom the CA client asks: the managers the agent knows.
func (n *Node) managers() []env.NodeID {
	if n.agent == nil {
		return nil
	}
	return n.agent.Managers()
}

func (n *Node) startManager(mc manager.Config) error {
	if mc.Logger == nil {
		mc.Logger = n.cfg.Logger
	}
	mc.CAClient = n.ca
	m, err := manager.New(n.env, mc)
	if err != nil {
		return fmt.Errorf("node %s: %w", n.env.ID, err)
	}
	n.manager = m
	n.startKeys(m)
	m.OnStop(func(err error) {
		// Removed from raft (demoted, or removed by the cluster) or
		// failed: the node goes on as a worker.
		if n.manager == m {
			n.stopKeys()
			n.manager = nil
			if n.cfg.OnRoleChange != nil {
				n.cfg.OnRoleChange(false)
			}
		}
	})
	return nil
}

// roleWanted acts on the role the cluster wants for this node: a promoted
// worker starts a manager that asks the managers to join raft. A demoted
// manager does nothing here: the leader removes it from raft, which stops
// its manager (see startManager).
func (n *Node) roleWanted(r api.NodeRole) {
	// A new role needs a certificate naming it first (raft is for manager
	// certificates only): renew, and act on the role once it arrived.
	if want := envRole(r); !n.stopped && n.ca.Role() != want {
		n.ca.WantRole(want)
		return
	}
	if n.stopped || r != api.NodeRole_NODE_ROLE_MANAGER || n.manager != nil || n.cfg.Promotion == nil {
		return
	}
	mc := *n.cfg.Promotion
	mc.Bootstrap = nil
	mc.Join = n.agent.Managers()
	mc.Raft.RaftID = 0 // from the disk, or drawn and kept there
	if err := n.startManager(mc); err != nil {
		n.log().Warn("cannot start the manager this node was promoted to", "err", err)
		return
	}
	if n.cfg.OnRoleChange != nil {
		n.cfg.OnRoleChange(true)
	}
}

func (n *Node) log() *slog.Logger {
	if n.cfg.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return n.cfg.Logger.With("node", string(n.env.ID))
}

func envRole(r api.NodeRole) env.Role {
	if r == api.NodeRole_NODE_ROLE_MANAGER {
		return env.RoleManager
	}
	return env.RoleWorker
}

// ID is the node's ID.
func (n *Node) ID() env.NodeID { return n.env.ID }

// Manager is the node's manager, nil on a worker.
func (n *Node) Manager() *manager.Manager { return n.manager }

// Agent is the node's agent.
func (n *Node) Agent() *agent.Agent { return n.agent }

// CA is the node's CA client: its credentials, and the certificate check
// of its inbound connections (VerifyPeer).
func (n *Node) CA() *ca.Client { return n.ca }

// Handle routes one inbound message to the part it is for.
func (n *Node) Handle(from env.Peer, msg env.Message) {
	if n.stopped || n.locked {
		return
	}
	var nodes ca.NodeReader
	if n.manager != nil {
		nodes = n.manager.Store()
	}
	if n.ca.Admit(from, msg, nodes) != nil {
		return
	}
	if ca.HandlesAnswer(msg) {
		n.ca.Handle(from, msg)
		return
	}
	if agent.Handles(msg) {
		n.agent.Handle(from, msg)
		return
	}
	if n.manager != nil && manager.Handles(msg) {
		n.manager.Handle(from, msg)
	}
}

// Stop stops every part. Containers keep running (a restarted agent adopts
// them).
func (n *Node) Stop() {
	if n.stopped {
		return
	}
	n.stopped = true
	if n.locked {
		return // nothing started
	}
	n.stopKeys()
	n.ca.Stop()
	n.agent.Stop()
	if n.manager != nil {
		n.manager.Stop()
	}
}
