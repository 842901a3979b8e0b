package agent

import (
	"log/slog"
	"slices"
	"time"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/env"
)

// Config tunes an Agent. Zero fields take the defaults below.
type Config struct {
	// Managers are the managers to ask for a session at first; the
	// dispatcher's answers refresh the list.
	Managers []env.NodeID
	// Description is what the node tells the dispatcher about itself
	// (hostname, resources, engine labels).
	Description *api.NodeDescription
	// SessionTimeout is how long to wait for an answer to a session
	// request before trying another manager. Default 5s.
	SessionTimeout time.Duration
	// DownAfter is how many heartbeat periods without an answer make the
	// session dead. Default 3, the dispatcher's grace.
	DownAfter int
	// BackoffBase and BackoffMax bound the wait between failed session
	// attempts; it doubles per failure and is jittered. Defaults 100ms, 10s.
	BackoffBase, BackoffMax time.Duration
	// ReportWindow is how long status changes are collected before they are
	// sent. Default 50ms.
	ReportWindow time.Duration
	// ReportRetry is how long a sent status may go unacknowledged before it
	// is sent again. Default 2s.
	ReportRetry time.Duration
	// MaxReportBatch bounds the updates in one report. Default 1000.
	MaxReportBatch int
	// StopGrace is a container's stop grace when its spec sets none.
	// Default 10s.
	StopGrace time.Duration
}

// Defaults.
const (
	DefaultSessionTimeout = 5 * time.Second
	DefaultDownAfter      = 3
	DefaultBackoffBase    = 100 * time.Millisecond
	DefaultBackoffMax     = 10 * time.Second
	DefaultReportWindow   = 50 * time.Millisecond
	DefaultReportRetry    = 2 * time.Second
	DefaultMaxReportBatch = 1000
	DefaultStopGrace      = 10 * time.Second
	// defaultPeriod is the heartbeat period until a dispatcher gives one.
	defaultPeriod = 5 * time.Second
	// maxRedirects bounds redirects followed in a row before backing off,
	// so two managers that name each other do not ping-pong for ever.
	maxRedirects = 3
	// maxInflightReports bounds the reports remembered for their acks.
	maxInflightReports = 64
)

func (c Config) withDefaults() Config {
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = DefaultSessionTimeout
	}
	if c.DownAfter <= 0 {
		c.DownAfter = DefaultDownAfter
	}
	if c.BackoffBase <= 0 {
		c.BackoffBase = DefaultBackoffBase
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = DefaultBackoffMax
	}
	if c.ReportWindow <= 0 {
		c.ReportWindow = DefaultReportWindow
	}
	if c.ReportRetry <= 0 {
		c.ReportRetry = DefaultReportRetry
	}
	if c.MaxReportBatch <= 0 {
		c.MaxReportBatch = DefaultMaxReportBatch
	}
	if c.StopGrace <= 0 {
		c.StopGrace = DefaultStopGrace
	}
	return c
}

// Deps is what an Agent needs from its node.
type Deps struct {
	ID        env.NodeID // this node
	Loop      env.Loop
	Clock     env.Clock
	Rand      env.Rand // jitter, incarnation
	Transport env.Transport
	Executor  env.Executor
	Config    Config
	Logger    *slog.Logger // nil: discard
}

// Stats are counters for metrics.
type Stats struct {
	SessionsOpened    uint64
	SessionAttempts   uint64
	Reconnects        uint64 // sessions lost (silence or refusal)
	Redirects         uint64
	HeartbeatsSent    uint64
	AssignmentsFull   uint64
	AssignmentsIncr   uint64
	AssignmentGaps    uint64 // sequence gaps seen
	ResyncRequests    uint64
	TasksStarted      uint64 // containers that reached running
	TasksAdopted      uint64 // containers found at start and kept
	TasksCompleted    uint64
	TasksFailed       uint64
	TasksRejected     uint64
	TasksShutdown     uint64
	ReportsSent       uint64 // report messages
	ReportsRetried    uint64 // report messages that resent a status
	StatusesSent      uint64
	StatusesAcked     uint64
	ContainersRemoved uint64
}

type connState uint8

const (
	disconnected connState = iota // waiting to try again
	connecting                    // a session request is out
	connected
)

// Agent is one node's worker. See the package documentation.
type Agent struct {
	// The heartbeat's fields come first, together. A worker heartbeats every
	// few seconds, and at 10,000 simulated workers its agent has left the
	// cache by then: spread over the struct, these fields cost about twelve
	// cache misses per heartbeat and answer (cachegrind); packed, about
	// three.
	tr    env.Transport
	clock env.Clock
	rand  env.Rand
	// hbFire runs the heartbeat armed under generation hbGen; made once,
	// so arming the heartbeat, the agent's most frequent timer, allocates
	// no closure.
	hbFire  func()
	hbTimer env.Timer
	// gen changes on Stop, so that timers and callbacks of a stopped agent
	// do nothing.
	gen     uint64
	hbGen   uint64
	running bool
	state   connState
	period  time.Duration
	// lastAnswer is the clock ns of the last heartbeat answer; the session
	// is lost after downAfter periods without one (Config.DownAfter).
	lastAnswer int64
	downAfter  int64
	target     env.NodeID
	sessionID  string
	// heartbeatsSent is Stats.HeartbeatsSent, kept here with the rest of
	// the heartbeat.
	heartbeatsSent uint64
	appliedSeq     uint64
	// roleHandler hears the role the cluster wants this node to have,
	// each time the dispatcher says it (promote/demote act on it).
	roleHandler func(api.NodeRole)
	managers    []env.NodeID
	// managersFrom is the list of managers a.managers was last checked
	// against (updateManagers).
	managersFrom []string

	id   env.NodeID
	loop env.Loop
	exec env.Executor
	cfg  Config
	log  *slog.Logger

	// Session.
	nextManager int
	leaderHint  env.NodeID
	incarnation uint64
	attempt     uint64
	redirects   int
	failures    int
	connTimer   env.Timer
	lastResync  int64

	// Tasks.
	tasks    map[string]*task
	listed   bool                           // the executor's List answered
	adopt    map[string]env.ContainerStatus // listed containers not claimed yet
	gotFull  bool                           // a whole set arrived since Start
	early    []env.ContainerEvent           // events before List answered
	taskRand env.Rand
	// secrets and configs the dispatcher sent for the tasks in the set, by
	// ID (see secrets.go).
	secrets map[string]*api.Secret
	configs map[string]*api.Config

	// Reports.
	reports     map[string]*pendingReport
	reportSeq   uint64
	inflight    map[uint64][]sentStatus
	inflightLog []uint64 // report seqs in flight, oldest first
	windowTimer env.Timer
	retryTimer  env.Timer

	stats Stats
}

// New returns a stopped Agent.
func New(d Deps) *Agent {
	cfg := d.Config.withDefaults()
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Agent{
		id:        d.ID,
		loop:      d.Loop,
		clock:     d.Clock,
		rand:      d.Rand,
		tr:        d.Transport,
		exec:      d.Executor,
		cfg:       cfg,
		log:       log.With("component", "agent", "node", string(d.ID)),
		managers:  slices.Clone(cfg.Managers),
		period:    defaultPeriod,
		downAfter: int64(cfg.DownAfter),
		tasks:     make(map[string]*task),
		reports:   make(map[string]*pendingReport),
		inflight:  make(map[uint64][]sentStatus),
	}
	a.hbFire = func() {
		if a.hbGen == a.gen && a.running {
			a.heartbeat()
		}
	}
	return a
}

// Handles reports whether m is a dispatcher's answer that an agent takes.
func Handles(m env.Message) bool {
	switch m.(type) {
	case *api.SessionResponse, *api.HeartbeatResponse, *api.Assignments, *api.TaskStatusAck:
		return true
	}
	return false
}

// Start lists the node's containers and asks for a session.
func (a *Agent) Start() {
	if a.running {
		return
	}
	a.running = true
	a.gen++
	// Started again after a Stop: what the executor has is learnt afresh,
	// as by a new agent; unacknowledged statuses are kept and resent.
	a.tasks = make(map[string]*task)
	a.secrets, a.configs = nil, nil
	a.listed, a.gotFull, a.adopt, a.early = false, false, nil, nil
	a.inflight, a.inflightLog = make(map[uint64][]sentStatus), nil
	a.appliedSeq, a.failures, a.redirects = 0, 0, 0
	// The incarnation tells this agent's session attempts from those of
	// the agent that ran here before a restart; report numbers start at a
	// random point for the same reason (a late ack of the old agent's
	// report must not match one of ours).
	a.incarnation = uint64(a.rand.Int63n(1<<62)) + 1
	a.reportSeq = uint64(a.rand.Int63n(1 << 40))
	if n := len(a.managers); n > 0 {
		a.nextManager = int(a.rand.Int63n(int64(n)))
	}
	gen := a.gen
	a.exec.SetEventHandler(func(ev env.ContainerEvent) {
		if gen == a.gen && a.running {
			a.onContainerEvent(ev)
		}
	})
	a.exec.List(func(list []env.ContainerStatus) {
		if gen == a.gen && a.running {
			a.onListed(list)
		}
	})
	a.connect(a.pickManager())
}

// Stop silences the agent: no message, report or executor call follows.
// Containers keep running, for the next agent to adopt.
func (a *Agent) Stop() {
	if !a.running {
		return
	}
	a.running = false
	a.gen++
	for _, t := range []env.Timer{a.connTimer, a.hbTimer, a.windowTimer, a.retryTimer} {
		if t != nil {
			t.Stop()
		}
	}
	a.connTimer, a.hbTimer, a.windowTimer, a.retryTimer = nil, nil, nil, nil
	a.state = disconnected
}

// Stats returns the counters.
func (a *Agent) Stats() Stats {
	s := a.stats
	s.HeartbeatsSent = a.heartbeatsSent
	return s
}

// SessionID is the current session's ID, "" when there is none.
func (a *Agent) SessionID() string {
	if a.state != connected {
		return ""
	}
	return a.sessionID
}

// Manager is the manager the agent has (or is asking for) a session with.
func (a *Agent) Manager() env.NodeID { return a.target }

// Managers is the agent's current list of managers.
func (a *Agent) Managers() []env.NodeID { return slices.Clone(a.managers) }

// Handle takes one inbound message. Messages of other kinds are ignored.
func (a *Agent) Handle(from env.Peer, m env.Message) {
	if !a.running {
		return
	}
	switch m := m.(type) {
	case *api.SessionResponse:
		a.onSessionResponse(from, m)
	case *api.HeartbeatResponse:
		a.onHeartbeatResponse(from, m)
	case *api.Assignments:
		a.onAssignments(m)
	case *api.TaskStatusAck:
		a.onAck(m)
	}
}

func (a *Agent) now() int64 { return a.clock.Now().UnixNano() }

// mono is the monotonic clock in nanoseconds, for timeouts: a step of the
// wall clock must not make a live session look dead, or a dead one live.
func (a *Agent) mono() int64 { return int64(a.clock.Monotonic()) }

// SetRoleHandler sets who hears the role the cluster wants this node to
// have. It is told on every session and heartbeat answer that carries one,
// so that a node that missed a change (or restarted) catches up.
func (a *Agent) SetRoleHandler(h func(api.NodeRole)) { a.roleHandler = h }

func (a *Agent) noteRole(r *api.NodeRole) {
	if r != nil && a.roleHandler != nil {
		a.roleHandler(*r)
	}
}

// after arms a timer that does nothing once the agent stopped.
func (a *Agent) after(d time.Duration, f func()) env.Timer {
	gen := a.gen
	return a.clock.AfterFunc(d, func() {
		if gen == a.gen && a.running {
			f()
		}
	})
}

// jitter returns d scaled by a uniform factor in [lo, hi).
func (a *Agent) jitter(d time.Duration, lo, hi float64) time.Duration {
	return time.Duration(float64(d) * (lo + (hi-lo)*a.rand.Float64()))
}

// pickManager chooses whom to ask next: the leader we were told about,
// else the managers in turn, passing over the one asked last (whose
// session died or who did not answer: likely down or cut off) while
// another is known.
func (a *Agent) pickManager() env.NodeID {
	if h := a.leaderHint; h != "" {
		a.leaderHint = ""
		return h
	}
	n := len(a.managers)
	if n == 0 {
		return ""
	}
	m := a.managers[a.nextManager%n]
	a.nextManager = (a.nextManager + 1) % n
	if m == a.target && n > 1 {
		m = a.managers[a.nextManager]
		a.nextManager = (a.nextManager + 1) % n
	}
	return m
}

func (a *Agent) stopTimer(t *env.Timer) {
	if *t != nil {
		(*t).Stop()
		*t = nil
	}
}

// connect asks to for a session.
func (a *Agent) connect(to env.NodeID) {
	a.stopTimer(&a.connTimer)
	a.stopTimer(&a.hbTimer)
	a.sessionID = ""
	if to == "" {
		a.failures++
		a.retryLater()
		return
	}
	a.state = connecting
	a.target = to
	a.attempt++
	a.stats.SessionAttempts++
	a.tr.Send(to, &api.SessionRequest{Incarnation: a.incarnation, Attempt: a.attempt, Description: a.cfg.Description})
	a.connTimer = a.after(a.cfg.SessionTimeout, func() {
		a.connTimer = nil
		a.log.Debug("no session answer", "manager", string(a.target))
		a.failures++
		a.retryLater()
	})
}

// retryLater waits a jittered, growing backoff, then asks the next manager.
func (a *Agent) retryLater() {
	a.state = disconnected
	a.sessionID = ""
	a.stopTimer(&a.connTimer)
	a.stopTimer(&a.hbTimer)
	d := a.cfg.BackoffBase
	for i := 1; i < a.failures && d < a.cfg.BackoffMax; i++ {
		d *= 2
	}
	d = a.jitter(min(d, a.cfg.BackoffMax), 0.5, 1.5)
	a.connTimer = a.after(d, func() {
		a.connTimer = nil
		a.connect(a.pickManager())
	})
}

// nextHint is whom to ask after a refusal: the leader it names, or, when
// only the session was unknown (it expired), the same manager again.
func (a *Agent) nextHint(e api.DispatcherError, leader string) string {
	if leader == "" && e == api.DispatcherError_DISPATCHER_ERROR_UNKNOWN_SESSION {
		return string(a.target)
	}
	return leader
}

// sessionLost drops the session and looks for another.
func (a *Agent) sessionLost(why string, leader string) {
	a.stats.Reconnects++
	a.log.Debug("session lost", "why", why, "manager", string(a.target))
	a.leaderHint = env.NodeID(leader)
	a.failures++
	a.retryLater()
}

func (a *Agent) onSessionResponse(from env.Peer, m *api.SessionResponse) {
	if a.state != connecting || m.Incarnation != a.incarnation || m.Attempt != a.attempt {
		return
	}
	a.stopTimer(&a.connTimer)
	if m.Error == api.DispatcherError_DISPATCHER_ERROR_NODE_REMOVED {
		// This node is not in the cluster any more: keep asking, slowly,
		// in case it is added back; its tasks keep running meanwhile.
		a.log.Warn("node removed from the cluster", "manager", string(from.ID))
		a.redirects = 0
		a.failures = 64
		a.retryLater()
		return
	}
	if m.Error != api.DispatcherError_DISPATCHER_ERROR_NONE {
		a.stats.Redirects++
		if l := env.NodeID(m.Leader); l != "" && l != from.ID && a.redirects < maxRedirects {
			a.redirects++
			a.connect(l)
			return
		}
		a.redirects = 0
		a.failures++
		a.retryLater()
		return
	}
	a.redirects, a.failures = 0, 0
	a.state = connected
	a.sessionID = m.SessionId
	a.appliedSeq = 0
	a.lastResync = 0
	if m.HeartbeatPeriod > 0 {
		a.period = time.Duration(m.HeartbeatPeriod)
	}
	a.updateManagers(m.Managers)
	a.noteRole(m.DesiredRole)
	a.lastAnswer = a.mono()
	a.stats.SessionsOpened++
	a.log.Debug("session opened", "manager", string(a.target), "session", a.sessionID)
	a.scheduleHeartbeat()
	a.sendReports(true)
}

func (a *Agent) updateManagers(ids []string) {
	if len(ids) == 0 {
		return
	}
	// A dispatcher in the same process (the simulator) answers with one
	// slice while the managers stay the same, and a message is never
	// changed once sent: that slice again needs no comparison, nor a read
	// of a.managers, one more cache miss per heartbeat.
	if len(ids) == len(a.managersFrom) && &ids[0] == &a.managersFrom[0] {
		return
	}
	a.managersFrom = ids
	same := len(ids) == len(a.managers)
	for i := 0; same && i < len(ids); i++ {
		same = ids[i] == string(a.managers[i])
	}
	if same {
		return
	}
	a.managers = make([]env.NodeID, len(ids))
	for i, id := range ids {
		a.managers[i] = env.NodeID(id)
	}
	a.nextManager %= len(a.managers)
}

// scheduleHeartbeat arms the next heartbeat, jittered so that thousands of
// agents started together do not beat in step. The jitter only shortens
// the period: three beats must fit in the dispatcher's grace of three
// periods, or one lost beat too many marks a live node DOWN.
func (a *Agent) scheduleHeartbeat() {
	a.stopTimer(&a.hbTimer)
	a.hbGen = a.gen
	a.hbTimer = a.clock.AfterFunc(a.jitter(a.period, 0.75, 1), a.hbFire)
}

func (a *Agent) heartbeat() {
	a.hbTimer = nil
	if a.state != connected {
		return
	}
	if a.mono()-a.lastAnswer > int64(a.period)*a.downAfter {
		a.sessionLost("no heartbeat answer", "")
		return
	}
	a.heartbeatsSent++
	a.tr.Send(a.target, &api.Heartbeat{SessionId: a.sessionID})
	a.scheduleHeartbeat()
}

func (a *Agent) onHeartbeatResponse(from env.Peer, m *api.HeartbeatResponse) {
	if a.state != connected || m.SessionId != a.sessionID || from.ID != a.target {
		return
	}
	if m.Error != api.DispatcherError_DISPATCHER_ERROR_NONE {
		a.sessionLost("heartbeat refused: "+m.Error.String(), a.nextHint(m.Error, m.Leader))
		return
	}
	a.lastAnswer = a.mono()
	if p := time.Duration(m.HeartbeatPeriod); p > 0 {
		a.period = p
	}
	a.updateManagers(m.Managers)
	a.noteRole(m.DesiredRole)
	if m.AssignmentsSeq > a.appliedSeq {
		// The dispatcher sent a message we never applied: it was lost (or
		// is late, and the whole set makes it harmless).
		a.requestResync()
	}
}

// requestResync asks for the whole set, at most once per round trip's
// worth of time (a tenth of the period).
func (a *Agent) requestResync() {
	now := a.mono()
	if a.lastResync != 0 && now-a.lastResync < int64(a.period)/10 {
		return
	}
	a.lastResync = now
	a.stats.ResyncRequests++
	a.tr.Send(a.target, &api.Heartbeat{SessionId: a.sessionID, Resync: true})
}

func (a *Agent) onAssignments(m *api.Assignments) {
	if a.state != connected || m.SessionId != a.sessionID || m.Seq <= a.appliedSeq {
		return // another session's, or a duplicate or a late one
	}
	if m.Full {
		a.stats.AssignmentsFull++
		a.appliedSeq = m.Seq
		a.applyRefs(m)
		a.applyFull(m.Tasks)
		return
	}
	if m.Seq != a.appliedSeq+1 {
		a.stats.AssignmentGaps++
		a.requestResync()
		return
	}
	a.stats.AssignmentsIncr++
	a.appliedSeq = m.Seq
	a.applyRefs(m)
	a.applyChanges(m.Tasks, m.Removed)
}
