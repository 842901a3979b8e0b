package dispatcher

import (
	"log/slog"
	"slices"
	"time"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/store"
)

// Config tunes a Dispatcher. Zero fields take the defaults below.
type Config struct {
	// HeartbeatPeriod is how often agents heartbeat (the scenario's
	// dispatcher.heartbeat). Default 5s.
	HeartbeatPeriod time.Duration
	// DownAfter is how many periods a node may stay silent before it is
	// marked DOWN. Default 3.
	DownAfter int
	// BatchWindow is how long status reports and node writes are collected
	// before they are written in one transaction. Default 100ms.
	BatchWindow time.Duration
	// MaxBatch bounds the actions of one transaction; a full batch is
	// written at once. Default 10,000.
	MaxBatch int
	// MaxPendingStatus bounds the status updates waiting to be written;
	// reports beyond it are dropped unacknowledged (the agents resend).
	// Default 10 × MaxBatch.
	MaxPendingStatus int
	// SweepInterval is the granularity of expiry: how often the sweep runs
	// and how late past its grace a node may be marked DOWN. Default
	// HeartbeatPeriod / 5.
	SweepInterval time.Duration
}

// Defaults.
const (
	DefaultHeartbeatPeriod = 5 * time.Second
	DefaultDownAfter       = 3
	DefaultBatchWindow     = 100 * time.Millisecond
	DefaultMaxBatch        = 10000
)

func (c Config) withDefaults() Config {
	if c.HeartbeatPeriod <= 0 {
		c.HeartbeatPeriod = DefaultHeartbeatPeriod
	}
	if c.DownAfter <= 0 {
		c.DownAfter = DefaultDownAfter
	}
	if c.BatchWindow <= 0 {
		c.BatchWindow = DefaultBatchWindow
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.MaxPendingStatus <= 0 {
		c.MaxPendingStatus = 10 * c.MaxBatch
	}
	if c.SweepInterval <= 0 {
		c.SweepInterval = max(c.HeartbeatPeriod/5, time.Millisecond)
	}
	return c
}

// Deps is what a Dispatcher needs from its node.
type Deps struct {
	ID        env.NodeID // this manager
	Loop      env.Loop
	Clock     env.Clock
	Rand      env.Rand // session IDs
	Transport env.Transport
	Store     *store.Store
	Config    Config
	// LeaderID names the current leader, for redirects while this
	// dispatcher is not running. Nil or "": the agent tries another manager.
	LeaderID func() env.NodeID
	// Managers lists the managers' node IDs, handed to agents for their
	// reconnections. Nil: the nodes the store says are managers.
	Managers func() []env.NodeID
	Logger   *slog.Logger // nil: discard
}

// Stats are counters for metrics.
type Stats struct {
	Sessions            int    // open now
	SessionsOpened      uint64 // new sessions
	SessionRepeats      uint64 // duplicate session requests answered again
	Redirects           uint64 // requests answered NOT_LEADER
	Refused             uint64 // session requests of removed nodes
	UnknownSessions     uint64 // requests naming a session that is not current
	HeartbeatsReceived  uint64
	NodesDown           uint64 // sessions that missed their grace
	NodeWrites          uint64 // node objects written (READY or DOWN)
	NodeWriteFailures   uint64 // node transactions that failed and were retried
	AssignmentsFull     uint64
	AssignmentsIncr     uint64
	AssignmentTasks     uint64 // tasks sent, added or changed
	AssignmentRemovals  uint64
	Resyncs             uint64 // full sets sent on request
	StatusReceived      uint64 // status updates received
	StatusDropped       uint64 // dropped unacknowledged: too many pending
	StatusWritten       uint64 // status updates recorded in a transaction
	StatusSkipped       uint64 // not recorded: gone, not the node's, or not forward
	StatusBatches       uint64 // status transactions proposed
	StatusBatchFailures uint64 // status transactions whose proposal failed
	AcksSent            uint64
	SecretsSent         uint64 // secrets sent with assignments
	SecretsWithdrawn    uint64 // secrets a node was told to forget
	ConfigsSent         uint64
	ConfigsWithdrawn    uint64
	RefsMissing         uint64 // referenced secrets or configs the store lacks
}

// Dispatcher is the leader's side of the worker protocol. See the package
// documentation.
type Dispatcher struct {
	loop  env.Loop
	clock env.Clock
	rand  env.Rand
	tr    env.Transport
	st    *store.Store
	cfg   Config
	log   *slog.Logger

	leaderID     func() env.NodeID
	managersFn   func() []env.NodeID
	grace        int64 // ns a session may stay silent
	unknownGrace int64 // ns a node READY at Start has to open a session

	running bool
	// gen changes on every Start and Stop: callbacks of writes proposed
	// under another generation are ignored.
	gen uint64

	sessions map[string]*session // by node ID
	open     int
	wheel    expiryWheel
	sweep    env.Timer

	// dirty lists the sessions with changes to send, flushed once per loop
	// turn.
	dirty       []*session
	flushPosted bool

	cancelWatch func()
	managers    managerSet
	// roles holds each role at its own index, for rolePtr.
	roles [2]api.NodeRole

	// Batched writes.
	nodeWrites   map[string]nodeWrite
	nodeInFlight bool
	// nodeBatch and statusBatch bound the actions of one node or status
	// transaction: MaxBatch, halved whenever the store refuses one as too
	// large for a raft entry (store.ErrProposalTooLarge). Retrying a batch
	// raft cannot take would retry it forever: 100,000 workers
	// registering at once queue more node writes than one entry holds.
	nodeBatch, statusBatch int
	status                 []statusItem
	acks                   []ack
	batchTimer             env.Timer
	batchDeadline          int64

	stats Stats
}

type nodeWrite struct {
	ready   bool
	desc    *api.NodeDescription
	addr    string
	role    api.NodeRole
	message string
}

type statusItem struct {
	node string
	upd  *api.TaskStatusUpdate
}

type ack struct {
	to      env.NodeID
	session string
	seq     uint64
}

// New returns a stopped Dispatcher: it answers every request with a
// redirect until Start.
func New(d Deps) *Dispatcher {
	cfg := d.Config.withDefaults()
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	grace := int64(cfg.HeartbeatPeriod) * int64(cfg.DownAfter)
	return &Dispatcher{
		roles:        [...]api.NodeRole{api.NodeRole_NODE_ROLE_WORKER, api.NodeRole_NODE_ROLE_MANAGER},
		loop:         d.Loop,
		clock:        d.Clock,
		rand:         d.Rand,
		tr:           d.Transport,
		st:           d.Store,
		cfg:          cfg,
		log:          log.With("component", "dispatcher", "node", string(d.ID)),
		leaderID:     d.LeaderID,
		managersFn:   d.Managers,
		grace:        grace,
		unknownGrace: 2 * grace,
		sessions:     make(map[string]*session),
		nodeWrites:   make(map[string]nodeWrite),
	}
}

// Handles reports whether m is a request the dispatcher answers (the node
// routes the replies to its agent).
func Handles(m env.Message) bool {
	switch m.(type) {
	case *api.SessionRequest, *api.Heartbeat, *api.TaskStatusReport:
		return true
	}
	return false
}

// Start makes the dispatcher serve sessions: this manager became leader.
func (d *Dispatcher) Start() {
	if d.running {
		return
	}
	d.running = true
	d.gen++
	d.sessions = make(map[string]*session)
	d.open = 0
	d.dirty = d.dirty[:0]
	d.flushPosted = false // a flush posted before is void (generation)
	clear(d.nodeWrites)
	d.status, d.acks = nil, nil
	now := d.now()
	d.wheel.init(now, int64(d.cfg.SweepInterval), d.unknownGrace)
	d.cancelWatch = d.st.WatchKinds(store.KindSetOf(store.KindTask, store.KindNode), d.onEvents)
	d.managers.rebuild(d.st)
	// Nodes that were READY under the previous leader have no session here
	// yet: give them time to find this leader before calling them DOWN.
	for n := range d.st.EachNode() {
		if n.GetRemoved() || n.GetStatus().GetState() != api.NodeState_NODE_STATE_READY {
			continue
		}
		s := &session{node: n.Id, placeholder: true, lastSeen: now}
		d.sessions[n.Id] = s
		d.wheel.add(s, now+d.unknownGrace)
	}
	d.armSweep()
	d.log.Info("dispatcher started", "ready_nodes", len(d.sessions))
}

// Stop ends every session and cancels timers and the watch: leadership was
// lost or the node shuts down. Writes in flight are forgotten; status
// reports not yet written are not acknowledged, so agents resend them to
// the next leader.
func (d *Dispatcher) Stop() {
	if !d.running {
		return
	}
	d.running = false
	d.gen++
	if d.cancelWatch != nil {
		d.cancelWatch()
		d.cancelWatch = nil
	}
	if d.sweep != nil {
		d.sweep.Stop()
		d.sweep = nil
	}
	if d.batchTimer != nil {
		d.batchTimer.Stop()
		d.batchTimer = nil
	}
	for _, s := range d.sessions {
		s.closed = true
	}
	d.sessions = make(map[string]*session)
	d.open = 0
	d.wheel.reset()
	d.dirty = d.dirty[:0]
	d.flushPosted = false
	clear(d.nodeWrites)
	d.nodeInFlight = false
	d.status, d.acks = nil, nil
	d.log.Info("dispatcher stopped")
}

// Running reports whether the dispatcher serves sessions.
func (d *Dispatcher) Running() bool { return d.running }

// Stats returns the counters.
func (d *Dispatcher) Stats() Stats {
	s := d.stats
	s.Sessions = d.open
	return s
}

// Handle takes one inbound message. Messages of other kinds are ignored.
func (d *Dispatcher) Handle(from env.Peer, m env.Message) {
	switch m := m.(type) {
	case *api.SessionRequest:
		d.handleSession(from, m)
	case *api.Heartbeat:
		d.handleHeartbeat(from, m)
	case *api.TaskStatusReport:
		d.handleStatus(from, m)
	}
}

// now is the monotonic clock, in nanoseconds: every use is a timeout or a
// grace period, which a step of the manager's wall clock must not stretch
// (a clock set back 3 minutes kept dead nodes READY for 3 minutes).
func (d *Dispatcher) now() int64 { return int64(d.clock.Monotonic()) }

func (d *Dispatcher) leader() string {
	if d.leaderID == nil {
		return ""
	}
	return string(d.leaderID())
}

func (d *Dispatcher) handleSession(from env.Peer, m *api.SessionRequest) {
	if !d.running {
		d.stats.Redirects++
		d.tr.Send(from.ID, &api.SessionResponse{
			Incarnation: m.Incarnation, Attempt: m.Attempt,
			Error: api.DispatcherError_DISPATCHER_ERROR_NOT_LEADER, Leader: d.leader(),
		})
		return
	}
	node := string(from.ID)
	if n := d.st.Node(node); n != nil && n.GetRemoved() {
		d.stats.Refused++
		d.tr.Send(from.ID, &api.SessionResponse{
			Incarnation: m.Incarnation, Attempt: m.Attempt, Error: api.DispatcherError_DISPATCHER_ERROR_NODE_REMOVED,
		})
		return
	}
	now := d.now()
	s := d.sessions[node]
	if s != nil && !s.placeholder && s.incarnation == m.Incarnation {
		switch {
		case m.Attempt < s.attempt:
			return // a late copy of an attempt the agent gave up on
		case m.Attempt == s.attempt:
			// A duplicate, or the agent lost our answer: answer again,
			// with the whole set, since it may have missed that too.
			d.stats.SessionRepeats++
			s.lastSeen = now
			d.sendSessionResponse(from.ID, s)
			d.resync(s)
			return
		}
	}
	if s != nil {
		d.closeSession(s)
	}
	s = &session{
		node:        node,
		id:          api.NewID(d.rand),
		incarnation: m.Incarnation,
		attempt:     m.Attempt,
		lastSeen:    now,
		desc:        m.Description,
		addr:        node,
		role:        roleOf(from),
	}
	d.sessions[node] = s
	d.open++
	d.stats.SessionsOpened++
	d.wheel.add(s, now+d.grace)
	d.queueNodeWrite(node, nodeWrite{ready: true, desc: s.desc, addr: s.addr, role: s.role})
	d.sendSessionResponse(from.ID, s)
	s.needFull = true
	d.markDirty(s)
	d.log.Debug("session opened", "node", node, "session", s.id)
}

func roleOf(p env.Peer) api.NodeRole {
	if p.Role == env.RoleManager {
		return api.NodeRole_NODE_ROLE_MANAGER
	}
	return api.NodeRole_NODE_ROLE_WORKER
}

func (d *Dispatcher) sendSessionResponse(to env.NodeID, s *session) {
	d.tr.Send(to, &api.SessionResponse{
		Incarnation:     s.incarnation,
		Attempt:         s.attempt,
		SessionId:       s.id,
		HeartbeatPeriod: int64(d.cfg.HeartbeatPeriod),
		Managers:        d.managerList(),
		DesiredRole:     d.desiredRole(to),
	})
}

// desiredRole is the role the store wants node to have, nil while the
// node is not in the store.
func (d *Dispatcher) desiredRole(node env.NodeID) *api.NodeRole {
	n := d.st.Node(string(node))
	if n == nil {
		return nil
	}
	return d.rolePtr(n.GetSpec().GetDesiredRole())
}

// rolePtr returns r as a pointer that every answer carrying r shares:
// thousands of agents read it on each heartbeat answer, and one value
// per role stays in the cache where one per session missed it each
// time. Receivers never change a message (env.Message).
func (d *Dispatcher) rolePtr(r api.NodeRole) *api.NodeRole {
	if r >= 0 && int(r) < len(d.roles) && d.roles[r] == r {
		return &d.roles[r]
	}
	return &r
}

// sessionDesiredRole is desiredRole of the session's node, read from the
// store once per change of its nodes rather than on every heartbeat.
func (d *Dispatcher) sessionDesiredRole(s *session) *api.NodeRole {
	if w := d.st.NodeWrites(); !s.roleKnown || s.roleWrites != w {
		s.roleKnown, s.roleWrites = true, w
		s.roleFound = false
		if n := d.st.Node(s.node); n != nil {
			s.desiredRole = d.rolePtr(n.GetSpec().GetDesiredRole())
			s.roleFound = true
		}
	}
	if !s.roleFound {
		return nil
	}
	return s.desiredRole
}

// closeSession forgets a session that a newer one replaced or that expired.
// Its expiry bucket entry is skipped when the sweep reaches it.
func (d *Dispatcher) closeSession(s *session) {
	if s.closed {
		return
	}
	s.closed = true
	s.pending = nil
	if d.sessions[s.node] == s {
		delete(d.sessions, s.node)
	}
	if !s.placeholder {
		d.open--
	}
}

// liveSession returns the node's current session if it is named id.
func (d *Dispatcher) liveSession(node env.NodeID, id string) *session {
	s := d.sessions[string(node)]
	if s == nil || s.placeholder || s.id != id {
		return nil
	}
	return s
}

func (d *Dispatcher) handleHeartbeat(from env.Peer, m *api.Heartbeat) {
	if !d.running {
		d.stats.Redirects++
		d.tr.Send(from.ID, &api.HeartbeatResponse{
			SessionId: m.SessionId, Error: api.DispatcherError_DISPATCHER_ERROR_NOT_LEADER, Leader: d.leader(),
		})
		return
	}
	d.stats.HeartbeatsReceived++
	s := d.liveSession(from.ID, m.SessionId)
	if s == nil {
		d.stats.UnknownSessions++
		d.tr.Send(from.ID, &api.HeartbeatResponse{
			SessionId: m.SessionId, Error: api.DispatcherError_DISPATCHER_ERROR_UNKNOWN_SESSION,
		})
		return
	}
	s.lastSeen = d.now()
	if m.Resync {
		d.resync(s)
	}
	d.tr.Send(from.ID, &api.HeartbeatResponse{
		SessionId:       s.id,
		HeartbeatPeriod: int64(d.cfg.HeartbeatPeriod),
		AssignmentsSeq:  s.seq,
		Managers:        d.managerList(),
		DesiredRole:     d.sessionDesiredRole(s),
	})
}

// resync makes the session's next message the whole set.
func (d *Dispatcher) resync(s *session) {
	if !s.needFull {
		d.stats.Resyncs++
	}
	s.needFull = true
	s.pending = nil
	d.markDirty(s)
}

func (d *Dispatcher) armSweep() {
	d.sweep = d.clock.AfterFunc(d.cfg.SweepInterval, d.onSweep)
}

// onSweep expires the sessions whose grace has passed.
func (d *Dispatcher) onSweep() {
	if !d.running {
		return
	}
	now := d.now()
	d.wheel.advance(now, func(s *session) (keep bool, deadline int64) {
		if s.closed {
			return false, 0
		}
		g := d.grace
		if s.placeholder {
			g = d.unknownGrace
		}
		if dl := s.lastSeen + g; dl > now {
			return true, dl
		}
		d.expire(s)
		return false, 0
	})
	d.armSweep()
}

func (d *Dispatcher) expire(s *session) {
	d.closeSession(s)
	d.stats.NodesDown++
	msg := "heartbeat failure"
	if s.placeholder {
		msg = "heartbeat failure: no session with the new leader"
	}
	d.queueNodeWrite(s.node, nodeWrite{message: msg})
	d.log.Info("node missed its heartbeats", "node", s.node, "session", s.id)
}

// managerList is the managers' node IDs as agents get them; the slice is
// shared by every message that carries it and never changed in place.
func (d *Dispatcher) managerList() []string {
	if d.managersFn != nil {
		ids := d.managersFn()
		// The manager answers with the same slice while the membership
		// stays: no need to compare it again on every heartbeat.
		again := len(ids) > 0 && len(ids) == len(d.managers.from) && &ids[0] == &d.managers.from[0]
		if !again && !d.managers.sameAs(ids) {
			d.managers.set(ids)
		}
		d.managers.from = ids
	}
	return d.managers.list
}

// managerSet tracks the managers' node IDs as the store shows them.
type managerSet struct {
	ids  map[string]bool
	list []string
	// from is the managersFn answer list was last checked against.
	from []env.NodeID
}

func (m *managerSet) rebuild(st *store.Store) {
	m.ids = make(map[string]bool)
	for n := range st.EachNode() {
		if isManager(n) {
			m.ids[n.Id] = true
		}
	}
	m.relist()
}

func isManager(n *api.Node) bool {
	return n != nil && !n.GetRemoved() && n.GetRole() == api.NodeRole_NODE_ROLE_MANAGER
}

// update follows one node's change; it rebuilds the list only when the
// node became or stopped being a manager.
func (m *managerSet) update(old, new *api.Node) {
	was, is := isManager(old), isManager(new)
	if was == is {
		return
	}
	id := old.GetId()
	if new != nil {
		id = new.Id
	}
	if m.ids == nil {
		m.ids = make(map[string]bool)
	}
	if is {
		m.ids[id] = true
	} else {
		delete(m.ids, id)
	}
	m.relist()
}

func (m *managerSet) relist() {
	list := make([]string, 0, len(m.ids))
	for id := range m.ids {
		list = append(list, id)
	}
	slices.Sort(list)
	m.list = list
	m.from = nil
}

func (m *managerSet) sameAs(ids []env.NodeID) bool {
	if len(ids) != len(m.list) {
		return false
	}
	for i, id := range ids {
		if string(id) != m.list[i] {
			return false
		}
	}
	return true
}

func (m *managerSet) set(ids []env.NodeID) {
	list := make([]string, len(ids))
	for i, id := range ids {
		list[i] = string(id)
	}
	m.list = list
}
