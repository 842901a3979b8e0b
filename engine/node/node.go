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
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/manager"
)

// Config is what a node is started with.
type Config struct {
	// Manager, when set, makes the node a manager.
	Manager *manager.Config
	Agent   agent.Config
	Logger  *slog.Logger
}

// Node is one running swarm node.
type Node struct {
	env     env.Env
	cfg     Config
	manager *manager.Manager
	agent   *agent.Agent
	stopped bool
}

// New starts a node on e.
func New(e env.Env, cfg Config) (*Node, error) {
	n := &Node{env: e, cfg: cfg}
	if cfg.Manager != nil {
		mc := *cfg.Manager
		if mc.Logger == nil {
			mc.Logger = cfg.Logger
		}
		m, err := manager.New(e, mc)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", e.ID, err)
		}
		n.manager = m
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
	n.agent.Start()
	return n, nil
}

// ID is the node's ID.
func (n *Node) ID() env.NodeID { return n.env.ID }

// Manager is the node's manager, nil on a worker.
func (n *Node) Manager() *manager.Manager { return n.manager }

// Agent is the node's agent.
func (n *Node) Agent() *agent.Agent { return n.agent }

// Handle routes one inbound message to the part it is for.
func (n *Node) Handle(from env.Peer, msg env.Message) {
	if n.stopped {
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
	n.agent.Stop()
	if n.manager != nil {
		n.manager.Stop()
	}
}
