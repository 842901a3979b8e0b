package manager

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/swarmsim/swarmsim/engine/allocator"
	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/ca"
	"github.com/swarmsim/swarmsim/engine/controlapi"
	"github.com/swarmsim/swarmsim/engine/dispatcher"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/orchestrator"
	"github.com/swarmsim/swarmsim/engine/raft"
	"github.com/swarmsim/swarmsim/engine/scheduler"
	"github.com/swarmsim/swarmsim/engine/store"
)

// ClusterID is the ID of the one Cluster object a swarm's store holds.
const ClusterID = "cluster"

// Config is what a manager is started with.
type Config struct {
	Raft raft.Config
	// Bootstrap lists the initial members of a fixed cluster, for the first
	// start of one of them; a restart may pass it again (it is ignored once
	// the node has raft state). Nil: the node restarts from its disk, or
	// joins through Join.
	Bootstrap []raft.Member
	// Join lists managers to ask for membership when the node has no raft
	// state and no Bootstrap: a manager added to a running cluster.
	Join []env.NodeID
	// Addr is the address real mode's peers dial; empty in the simulator.
	Addr string

	Dispatcher dispatcher.Config
	Allocator  allocator.Config
	// Cluster is the cluster spec the first leader writes when the store
	// holds none.
	Cluster *api.ClusterSpec
	// JoinTokens are written into that first cluster object: real mode's
	// `swarmd init` draws them (and prints them) before there is a store.
	JoinTokens *api.JoinTokens
	// RootCA is written into that first cluster object too: the root
	// `swarmd init` created (ca.Bootstrap). CAClient is this node's CA
	// client, whose trust follows the roots in the store.
	RootCA   *api.RootCA
	CAClient *ca.Client

	Logger *slog.Logger
}

// Manager is one manager node's control plane: its raft member, its copy
// of the store, and the leader-only subsystems (allocator, scheduler,
// orchestrator, dispatcher), started when this manager becomes leader and
// stopped when it stops being leader. See the package documentation.
type Manager struct {
	// memberIDs is managerIDs' last answer, made from membersSeen.
	memberIDs   []env.NodeID
	membersSeen []raft.Member

	env   env.Env
	cfg   Config
	log   *slog.Logger
	raft  *raft.Node
	store *store.Store

	control      *controlapi.Server
	dispatcher   *dispatcher.Dispatcher
	scheduler    *scheduler.Scheduler
	allocator    *allocator.Allocator
	orchestrator *orchestrator.Orchestrator
	ca           *ca.Server
	leaderOnly   []subsystem

	leader  bool
	stopped bool
	onStop  []func(error)

	joining *joiner
}

// proposalHeadroom leaves room in a raft proposal for the driver's own
// header around the store's encoded transaction.
const proposalHeadroom = 64

// subsystem is a leader-only component.
type subsystem interface {
	Start()
	Stop()
}

// New starts a manager on e: it loads the disk, and bootstraps, restarts
// or asks to join as cfg says.
func New(e env.Env, cfg Config) (*Manager, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{env: e, cfg: cfg, log: log.With("node", string(e.ID))}
	if cfg.Raft.RaftID == 0 {
		id, err := raftIDFromDisk(e)
		if err != nil {
			return nil, fmt.Errorf("manager %s: %w", e.ID, err)
		}
		cfg.Raft.RaftID = id
		m.cfg = cfg
	}
	m.store = store.New(e.Clock)
	rn, err := raft.New(e, cfg.Raft, m.store)
	if err != nil {
		return nil, fmt.Errorf("manager %s: %w", e.ID, err)
	}
	m.raft = rn
	m.store.SetProposer(rn)
	// The store refuses a transaction raft would refuse, before proposing
	// it, so writers learn to split it (store.ErrProposalTooLarge).
	m.store.SetMaxProposalBytes(rn.MaxProposalBytes() - proposalHeadroom)
	rn.OnLeadershipChange(m.leadershipChanged)
	rn.OnStop(m.raftStopped)

	m.dispatcher = dispatcher.New(dispatcher.Deps{
		ID:        e.ID,
		Loop:      e.Loop,
		Clock:     e.Clock,
		Rand:      e.Rand,
		Transport: e.Transport,
		Store:     m.store,
		Config:    cfg.Dispatcher,
		LeaderID:  m.LeaderID,
		Managers:  m.managerIDs,
		Logger:    m.log,
	})
	m.allocator = allocator.New(allocator.Deps{
		Store:  m.store,
		Loop:   e.Loop,
		Rand:   e.Rand,
		Log:    m.log,
		Config: cfg.Allocator,
	})
	m.scheduler = scheduler.New(m.store, e.Loop, e.Clock, m.log)
	m.orchestrator = orchestrator.New(orchestrator.Deps{
		Store:  m.store,
		Clock:  e.Clock,
		Loop:   e.Loop,
		Rand:   e.Rand,
		Logger: m.log,
	})
	m.control = controlapi.New(m.store, e.Rand)
	m.control.SetReachability(func(id string) (bool, bool) { return m.raft.Reachable(env.NodeID(id)) })
	// Start order: the allocator and scheduler watch before the
	// orchestrator writes, and the dispatcher serves last, once tasks can
	// move. Stop runs in reverse.
	m.ca = ca.NewServer(ca.ServerDeps{Env: e, Store: m.store, ClusterID: ClusterID, Client: cfg.CAClient, Logger: m.log})
	m.leaderOnly = []subsystem{m.allocator, m.scheduler, m.orchestrator, m.dispatcher, newRoles(m), m.ca}

	switch {
	case cfg.Bootstrap != nil:
		if err := rn.Bootstrap(cfg.Bootstrap); err != nil && !errors.Is(err, raft.ErrInitialized) {
			rn.Stop()
			return nil, fmt.Errorf("manager %s: bootstrap: %w", e.ID, err)
		}
	case len(cfg.Join) > 0 && !m.hasState():
		m.joining = newJoiner(m, cfg.Join)
		m.joining.start()
	}
	return m, nil
}

// raftIDKey is where a manager keeps its raft ID on its disk, so that a
// manager whose ID was drawn (a promoted worker, a joiner) restarts as the
// same member.
const raftIDKey = "raft/id"

// raftIDFromDisk returns the raft ID this node's disk remembers, or draws
// a new one and stages it (it becomes durable with raft's first sync).
func raftIDFromDisk(e env.Env) (uint64, error) {
	st, err := e.Storage.Load()
	if err != nil {
		return 0, err
	}
	if b := st.Meta[raftIDKey]; len(b) == 8 {
		return binary.BigEndian.Uint64(b), nil
	}
	id := raft.NewRaftID(e.Rand)
	if err := e.Storage.SetMeta(raftIDKey, binary.BigEndian.AppendUint64(nil, id)); err != nil {
		return 0, err
	}
	return id, nil
}

// hasState reports whether raft found state on the disk (or was reached
// by a leader already).
func (m *Manager) hasState() bool {
	st := m.raft.Status()
	return st.Term > 0 || len(m.raft.Members()) > 0
}

// Store is this manager's copy of the store. Reads may lag the leader's.
func (m *Manager) Store() *store.Store { return m.store }

// Raft is this manager's raft member.
func (m *Manager) Raft() *raft.Node { return m.raft }

// IsLeader reports whether this manager leads and runs the leader-only
// subsystems.
func (m *Manager) IsLeader() bool { return m.leader }

// LeaderID names the current leader as this manager knows it.
func (m *Manager) LeaderID() env.NodeID { return m.raft.Status().Leader }

// Control is this manager's control API. Reads come from this manager's
// store; writes go through raft (a follower's are forwarded to the leader).
func (m *Manager) Control() *controlapi.Server { return m.control }

// Orchestrator is this manager's orchestrator (running only while leader).
func (m *Manager) Orchestrator() *orchestrator.Orchestrator { return m.orchestrator }

// Dispatcher is this manager's dispatcher (serving only while leader).
func (m *Manager) Dispatcher() *dispatcher.Dispatcher { return m.dispatcher }

// Scheduler is this manager's scheduler (running only while leader).
func (m *Manager) Scheduler() *scheduler.Scheduler { return m.scheduler }

// CA is this manager's certificate authority server.
func (m *Manager) CA() *ca.Server { return m.ca }

// Allocator is this manager's allocator (running only while leader).
func (m *Manager) Allocator() *allocator.Allocator { return m.allocator }

// OnStop registers f to hear that the manager stopped on its own: removed
// from the raft group, or a fatal error.
func (m *Manager) OnStop(f func(error)) { m.onStop = append(m.onStop, f) }

// Handles reports whether msg is for a manager.
func Handles(msg env.Message) bool {
	switch msg.(type) {
	case *raft.Message, *api.RaftJoinRequest, *api.RaftJoinResponse:
		return true
	}
	return dispatcher.Handles(msg) || ca.Handles(msg)
}

// Handle takes one inbound message.
func (m *Manager) Handle(from env.Peer, msg env.Message) {
	if m.stopped {
		return
	}
	switch msg := msg.(type) {
	case *raft.Message:
		_ = m.raft.Step(from.ID, msg)
	case *api.RaftJoinRequest:
		m.handleJoin(from, msg)
	case *api.RaftJoinResponse:
		if m.joining != nil {
			m.joining.handle(from, msg)
		}
	case *api.IssueNodeCertificate, *api.GetRootCA:
		m.ca.Handle(from, msg)
	default:
		m.dispatcher.Handle(from, msg)
	}
}

// Stop stops the manager: its subsystems, then its raft member.
func (m *Manager) Stop() {
	if m.stopped {
		return
	}
	m.stopLeaderOnly()
	m.ca.Close()
	if m.joining != nil {
		m.joining.stop()
	}
	m.stopped = true
	m.raft.Stop()
}

func (m *Manager) raftStopped(err error) {
	if m.stopped {
		return
	}
	m.log.Info("raft stopped", "err", err)
	m.stopLeaderOnly()
	m.ca.Close()
	m.stopped = true
	for _, f := range m.onStop {
		f(err)
	}
}

func (m *Manager) leadershipChanged(isLeader bool, term uint64) {
	if m.stopped || isLeader == m.leader {
		return
	}
	if !isLeader {
		m.log.Info("lost leadership", "term", term)
		m.stopLeaderOnly()
		return
	}
	m.log.Info("became leader", "term", term)
	m.leader = true
	m.ensureCluster()
	for _, s := range m.leaderOnly {
		s.Start()
	}
}

func (m *Manager) stopLeaderOnly() {
	if !m.leader {
		return
	}
	m.leader = false
	for i := len(m.leaderOnly) - 1; i >= 0; i-- {
		m.leaderOnly[i].Stop()
	}
}

// ensureCluster writes the cluster object on a fresh cluster's first
// leader. A conflict means another leader wrote it first: fine.
func (m *Manager) ensureCluster() {
	if m.store.Cluster(ClusterID) != nil || m.cfg.Cluster == nil {
		return
	}
	spec := m.cfg.Cluster
	m.store.Update(func(tx *store.Tx) error {
		if tx.Cluster(ClusterID) != nil {
			return nil
		}
		return tx.Create(&api.Cluster{Id: ClusterID, Spec: spec, JoinTokens: m.cfg.JoinTokens, RootCa: m.cfg.RootCA})
	}, func(err error) {
		if err != nil && !errors.Is(err, store.ErrExist) {
			m.log.Warn("cannot write the cluster object", "err", err)
		}
	})
}

// managerIDs lists the raft members' node IDs, for agents' reconnections.
// The dispatcher asks on every heartbeat: the list is kept while the
// members' IDs stay the same. Callers must not modify it.
func (m *Manager) managerIDs() []env.NodeID {
	members := m.raft.Members()
	// Members returns the same slice until the membership changes (a
	// change makes a new one), and every heartbeat answer asks.
	if len(members) > 0 && len(members) == len(m.membersSeen) && &members[0] == &m.membersSeen[0] {
		return m.memberIDs
	}
	m.membersSeen = members
	if len(members) == len(m.memberIDs) {
		same := true
		for i, mb := range members {
			if mb.NodeID != m.memberIDs[i] {
				same = false
				break
			}
		}
		if same {
			return m.memberIDs
		}
	}
	out := make([]env.NodeID, 0, len(members))
	for _, mb := range members {
		out = append(out, mb.NodeID)
	}
	m.memberIDs = out
	return out
}

// RemoveManager takes the manager on node id out of the raft group. It
// must run on the leader; a removal that would leave fewer reachable
// voters than a quorum is refused.
func (m *Manager) RemoveManager(id env.NodeID, done func(error)) {
	mb, ok := m.raft.MemberByNode(id)
	if !ok {
		done(fmt.Errorf("remove manager %s: %w", id, raft.ErrUnknownMember))
		return
	}
	m.raft.RemoveMember(mb.RaftID, done)
}

// ---- joining a running cluster

// joinRetry is how long a joiner waits for an answer before asking again
// (the next manager on its list).
const joinRetry = time.Second

// joiner asks the cluster to add this manager until it is a member.
type joiner struct {
	m       *Manager
	targets []env.NodeID
	next    int
	reqID   uint64
	timer   env.Timer
	done    bool
}

func newJoiner(m *Manager, targets []env.NodeID) *joiner {
	return &joiner{m: m, targets: targets, reqID: uint64(m.env.Rand.Int63n(1 << 62))}
}

func (j *joiner) start() { j.ask("") }

func (j *joiner) stop() {
	j.done = true
	if j.timer != nil {
		j.timer.Stop()
	}
}

// ask sends the join request to to, or to the next manager on the list.
func (j *joiner) ask(to env.NodeID) {
	if j.done {
		return
	}
	if j.m.hasState() {
		// A leader reached us: we are a member.
		j.stop()
		return
	}
	if to == "" {
		to = j.targets[j.next%len(j.targets)]
		j.next++
	}
	j.m.env.Transport.Send(to, &api.RaftJoinRequest{
		RequestId: j.reqID,
		Member: &api.RaftMember{
			RaftId: j.m.raft.ID(),
			NodeId: string(j.m.env.ID),
			Addr:   j.m.cfg.Addr,
		},
	})
	if j.timer != nil {
		j.timer.Stop()
	}
	j.timer = j.m.env.Clock.AfterFunc(joinRetry, func() { j.ask("") })
}

func (j *joiner) handle(from env.Peer, resp *api.RaftJoinResponse) {
	if j.done || resp.GetRequestId() != j.reqID {
		return
	}
	switch {
	case resp.GetError() == "":
		j.m.log.Info("joined the raft group", "via", from.ID)
		j.stop()
	case resp.GetLeader() != "":
		j.ask(env.NodeID(resp.GetLeader()))
	default:
		j.m.log.Info("join refused; asking again", "by", from.ID, "err", resp.GetError())
	}
}

// handleJoin answers a manager asking to join: the leader adds it, a
// follower names the leader. A repeated request for a member already
// added is answered as a success.
func (m *Manager) handleJoin(from env.Peer, req *api.RaftJoinRequest) {
	reply := func(errText string) {
		resp := &api.RaftJoinResponse{RequestId: req.GetRequestId(), Error: errText}
		if !m.leader {
			resp.Leader = string(m.LeaderID())
		}
		for _, mb := range m.raft.Members() {
			resp.Members = append(resp.Members, &api.RaftMember{RaftId: mb.RaftID, NodeId: string(mb.NodeID), Addr: mb.Addr})
		}
		m.env.Transport.Send(from.ID, resp)
	}
	want := req.GetMember()
	if want == nil || want.GetNodeId() != string(from.ID) {
		reply("join request names another node than its sender")
		return
	}
	if !m.leader {
		reply("not the leader")
		return
	}
	if n := m.store.Node(string(from.ID)); n != nil && n.GetSpec().GetDesiredRole() != api.NodeRole_NODE_ROLE_MANAGER {
		// A node the cluster knows as a worker joins raft only once it was
		// promoted; a new manager (not in the store yet) joins with the
		// manager token (checked by the transport's join hook).
		reply(fmt.Sprintf("node %s is a worker; promote it first", from.ID))
		return
	}
	if mb, ok := m.raft.MemberByNode(from.ID); ok {
		if mb.RaftID == want.GetRaftId() {
			reply("")
			return
		}
		reply(fmt.Sprintf("node %s is already a member with raft ID %x", from.ID, mb.RaftID))
		return
	}
	member := raft.Member{RaftID: want.GetRaftId(), NodeID: from.ID, Addr: want.GetAddr()}
	m.raft.AddMember(member, func(err error) {
		if err != nil && !errors.Is(err, raft.ErrMemberExists) {
			m.log.Info("adding manager failed", "node", from.ID, "err", err)
			return
		}
		reply("")
	})
}
