package orchestrator

import (
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/store"
)

// Deps is what the orchestrator needs from its manager.
type Deps struct {
	Store *store.Store
	Clock env.Clock
	Loop  env.Loop
	// Rand draws the IDs of new tasks.
	Rand env.Rand
	// Logger may be nil: nothing is logged.
	Logger *slog.Logger
}

// Orchestrator reconciles services into tasks while its manager leads.
// All its methods and callbacks run on the manager's loop.
type Orchestrator struct {
	st    *store.Store
	clock env.Clock
	loop  env.Loop
	rand  env.Rand
	log   *slog.Logger

	running     bool
	epoch       uint64 // changes on Start and Stop; stale callbacks compare it
	cancelWatch func()
	posted      bool      // a pass is queued on the loop
	retryTimer  env.Timer // a delayed pass after a failed write, while armed

	svcs       map[string]*svcState
	pending    map[string]struct{} // services with something marked
	dirtyNodes map[string]struct{}
	globals    map[string]struct{} // global services and global jobs
	updEvents  []taskChange        // status changes of tasks a rolling update watches

	historyLimit uint64
	// promoteAt: when a READY task this instance created may start, in Unix
	// nanoseconds. A task missing here (made by an earlier leader) waits
	// its restart delay from its creation.
	promoteAt map[string]int64

	wakes      wakeQueue
	wakeIndex  map[wakeKey]int64
	timer      env.Timer
	timerAt    int64
	timerGen   uint64 // which AfterFunc is the current timer
	maxActions int
	conCache   map[*api.Placement][]api.Constraint

	stats Stats
}

// Stats are plain counters for metrics. They accumulate over the
// orchestrator's life, across Start and Stop.
type Stats struct {
	Passes             uint64 // reconcile passes run
	ServicesReconciled uint64 // whole-service reconciles
	SlotsReconciled    uint64 // one-slot reconciles (a task or node event)
	Transactions       uint64 // proposals that applied
	FailedWrites       uint64 // proposals rejected or dropped; their services are reconciled again
	Conflicts          uint64 // of FailedWrites, those rejected for a concurrent change

	TasksCreated    uint64
	TasksShutDown   uint64 // desired state raised to SHUTDOWN
	TasksRemoved    uint64 // desired state raised to REMOVE
	TasksPromoted   uint64 // READY to RUNNING once a restart delay or an old task's stop passed
	TasksOrphaned   uint64 // status ORPHANED: their node was removed
	TasksDeleted    uint64 // by the reaper
	ServicesDeleted uint64 // services marked pending_delete deleted once their tasks were gone

	Restarts    uint64 // replacements under a restart policy (task ended, or its node went down)
	Reschedules uint64 // replacements of tasks on drained or no longer matching nodes

	UpdatesStarted     uint64
	UpdatesCompleted   uint64
	UpdatesPaused      uint64 // PAUSED and ROLLBACK_PAUSED
	RollbacksStarted   uint64 // automatic and manual
	RollbacksCompleted uint64
	JobIterations      uint64

	// TaskStates counts the task state transitions seen in the store, by
	// the state entered; a created task counts as entering its first state.
	TaskStates map[api.TaskState]uint64
}

// maxTxActions bounds one transaction; after a failed write the bound
// shrinks (down to minTxActions) so that one conflicting task does not keep
// voiding thousands of good actions, and grows back after successes.
const (
	maxTxActions = 10000
	minTxActions = 64
)

// New returns a stopped orchestrator.
func New(d Deps) *Orchestrator {
	lg := d.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	o := &Orchestrator{
		st: d.Store, clock: d.Clock, loop: d.Loop, rand: d.Rand,
		log:        lg.With("component", "orchestrator"),
		maxActions: maxTxActions,
	}
	o.stats.TaskStates = make(map[api.TaskState]uint64)
	o.reset()
	return o
}

func (o *Orchestrator) reset() {
	o.svcs = make(map[string]*svcState)
	o.pending = make(map[string]struct{})
	o.dirtyNodes = make(map[string]struct{})
	o.globals = make(map[string]struct{})
	o.updEvents = nil
	o.promoteAt = make(map[string]int64)
	o.wakes = wakeQueue{}
	o.wakeIndex = make(map[wakeKey]int64)
	o.conCache = make(map[*api.Placement][]api.Constraint)
	if o.timer != nil {
		o.timer.Stop()
		o.timer = nil
	}
	o.timerAt = 0
	o.timerGen++
	if o.retryTimer != nil {
		o.retryTimer.Stop()
		o.retryTimer = nil
	}
}

// Stats returns a copy of the counters.
func (o *Orchestrator) Stats() Stats {
	s := o.stats
	s.TaskStates = maps.Clone(o.stats.TaskStates)
	return s
}

// Running reports whether the orchestrator is started.
func (o *Orchestrator) Running() bool { return o.running }

// Start begins orchestrating: the manager became leader. It reads the whole
// store once (every service is reconciled in the first pass), then follows
// the store's changes. Starting a started orchestrator does nothing.
func (o *Orchestrator) Start() {
	if o.running {
		return
	}
	o.running = true
	o.epoch++
	o.reset()
	o.cancelWatch = o.st.WatchKinds(store.KindSetOf(store.KindTask, store.KindService, store.KindNode, store.KindCluster), o.onEvents)
	o.resync()
	o.log.Info("orchestrator started", "services", len(o.pending))
}

// Stop ends orchestrating: leadership was lost or the manager shuts down.
// The watch and timers are cancelled, no write starts after it, and the
// callbacks of writes in flight are ignored. What was kept in memory is
// dropped; a later Start rebuilds it from the store.
func (o *Orchestrator) Stop() {
	if !o.running {
		return
	}
	o.running = false
	o.epoch++
	if o.cancelWatch != nil {
		o.cancelWatch()
		o.cancelWatch = nil
	}
	o.reset()
	o.log.Info("orchestrator stopped")
}

// resync marks everything in the store: at Start, and after the store was
// replaced by a snapshot.
func (o *Orchestrator) resync() {
	o.historyLimit = o.readHistoryLimit()
	for svc := range o.st.EachService() {
		o.noteMode(svc)
		o.markFull(svc.Id)
	}
	// Tasks whose service is gone: found once, by the only full scan.
	last := ""
	for t := range o.st.EachTask() {
		if t.ServiceId == last {
			continue
		}
		if o.st.Service(t.ServiceId) == nil {
			o.markFull(t.ServiceId)
			last = t.ServiceId
		}
	}
}

// defaultTaskHistory is the history kept per slot when the store holds no
// cluster object (SwarmKit's default).
const defaultTaskHistory = 5

// readHistoryLimit reads task_history_limit from the cluster object. A
// cluster that says 0 keeps no history; only a store without a cluster
// object gets the default.
func (o *Orchestrator) readHistoryLimit() uint64 {
	if cs := o.st.Clusters(); len(cs) > 0 {
		return cs[0].GetSpec().GetTaskHistoryLimit()
	}
	return defaultTaskHistory
}

// svcState is what the orchestrator tracks of one service between passes.
type svcState struct {
	id       string
	busy     int  // transactions in flight that write for this service
	full     bool // reconcile the whole service
	slots    map[slotKey]struct{}
	updDirty bool // the rolling update has something to look at
	upd      *update
	job      *jobState
	// lastStatus is the update_status this orchestrator last proposed, so
	// that the watch can tell its own writes from a user's rollback.
	lastStatus *api.UpdateStatus
}

func (o *Orchestrator) state(id string) *svcState {
	s := o.svcs[id]
	if s == nil {
		s = &svcState{id: id}
		o.svcs[id] = s
	}
	return s
}

func (o *Orchestrator) markFull(id string) {
	o.noteFull(id)
	o.kick()
}

func (o *Orchestrator) markSlot(id string, k slotKey) {
	o.noteSlot(id, k)
	o.kick()
}

// noteFull and noteSlot mark without asking for a pass: the caller
// decides when the next one runs.
func (o *Orchestrator) noteFull(id string) {
	o.state(id).full = true
	o.pending[id] = struct{}{}
}

func (o *Orchestrator) noteSlot(id string, k slotKey) {
	s := o.state(id)
	if !s.full {
		if s.slots == nil {
			s.slots = make(map[slotKey]struct{})
		}
		s.slots[k] = struct{}{}
	}
	o.pending[id] = struct{}{}
}

func (o *Orchestrator) markUpdate(id string) {
	s := o.state(id)
	s.updDirty = true
	o.pending[id] = struct{}{}
	o.kick()
}

// kick queues one pass on the loop, however many changes come before it
// runs: the debounce.
func (o *Orchestrator) kick() {
	if o.posted || !o.running {
		return
	}
	o.posted = true
	epoch := o.epoch
	o.loop.Post(func() {
		if o.epoch != epoch {
			return
		}
		o.pass()
	})
}

func (o *Orchestrator) now() int64 { return o.clock.Now().UnixNano() }

// pass reconciles everything marked since the last one and proposes the
// decisions.
func (o *Orchestrator) pass() {
	o.posted = false
	if !o.running {
		return
	}
	o.stats.Passes++
	now := o.now()
	o.fireWakes(now)
	o.takeUpdateEvents(now)
	o.takeNodes()

	p := newPlan()
	ids := slices.Sorted(maps.Keys(o.pending))
	for _, id := range ids {
		s := o.svcs[id]
		if s == nil {
			delete(o.pending, id)
			continue
		}
		if s.busy > 0 {
			// Its writes are in flight: reconciling against a store that
			// does not show them yet would decide the same things twice.
			// The marks wait for the writes' answers.
			continue
		}
		delete(o.pending, id)
		o.reconcile(s, now, p)
		o.forgetIfIdle(s)
	}
	o.flush(p)
	o.armTimer(now)
}

// reconcile does what is marked for one service.
func (o *Orchestrator) reconcile(s *svcState, now int64, p *plan) {
	c := o.newCtx(s.id, now)
	switch {
	case s.full:
		s.full = false
		s.slots = nil
		o.stats.ServicesReconciled++
		o.reconcileService(s, c, p)
	case len(s.slots) > 0:
		keys := sortedKeys(s.slots)
		s.slots = nil
		o.reconcileSlots(s, c, keys, p)
	}
	if s.upd != nil && s.updDirty {
		s.updDirty = false
		o.advanceUpdate(s, c, p)
	}
	s.updDirty = false
}

// forgetIfIdle drops the state of a service that has nothing in flight,
// nothing marked and nothing to remember.
func (o *Orchestrator) forgetIfIdle(s *svcState) {
	if s.busy > 0 || s.full || len(s.slots) > 0 || s.upd != nil || s.job != nil {
		return
	}
	if _, marked := o.pending[s.id]; marked {
		return
	}
	if s.lastStatus != nil && o.st.Service(s.id) != nil {
		return
	}
	delete(o.svcs, s.id)
}

// takeNodes turns changed nodes into marked slots: every unfinished task on
// the node, and the node's slot of every global service.
func (o *Orchestrator) takeNodes() {
	if len(o.dirtyNodes) == 0 {
		return
	}
	nodes := slices.Sorted(maps.Keys(o.dirtyNodes))
	clear(o.dirtyNodes)
	globals := slices.Sorted(maps.Keys(o.globals))
	for _, id := range nodes {
		for t := range o.st.EachTaskByNode(id) {
			if !finished(t) {
				o.markSlot(t.ServiceId, keyOf(t))
			}
		}
		for _, g := range globals {
			o.markSlot(g, slotKey{node: id})
		}
	}
}

// noteMode keeps the set of global services, which every node event
// concerns.
func (o *Orchestrator) noteMode(svc *api.Service) {
	switch modeOf(svc) {
	case modeGlobal, modeGlobalJob:
		o.globals[svc.Id] = struct{}{}
	default:
		delete(o.globals, svc.Id)
	}
}

// ------------------------------------------------------------- the watch

// taskChange is a task status change a rolling update looks at.
type taskChange struct{ old, new *api.Task }

func (o *Orchestrator) onEvents(evs []store.Event) {
	if !o.running {
		return
	}
	for i := range evs {
		o.intake(&evs[i])
	}
}

func (o *Orchestrator) intake(e *store.Event) {
	switch e.Kind {
	case store.KindTask:
		o.intakeTask(e)
	case store.KindService:
		o.intakeService(e)
	case store.KindNode:
		if nodeChanged(e) {
			o.dirtyNodes[e.ID] = struct{}{}
			o.kick()
		}
	case store.KindCluster:
		if c, ok := e.New.(*api.Cluster); ok {
			if l := c.GetSpec().GetTaskHistoryLimit(); l != o.historyLimit {
				o.historyLimit = l
				// A smaller limit concerns every slot: sweep once.
				for svc := range o.st.EachService() {
					o.markFull(svc.Id)
				}
			}
		}
	case store.KindNone:
		if e.Action == store.ActionRestore {
			// The store was replaced wholesale: forget and re-read it.
			epoch := o.epoch
			o.reset()
			o.epoch = epoch
			o.resync()
		}
	}
}

func (o *Orchestrator) intakeTask(e *store.Event) {
	switch e.Action {
	case store.ActionCreate:
		t := e.New.(*api.Task)
		o.stats.TaskStates[t.GetStatus().GetState()]++
	case store.ActionUpdate:
		old, t := e.Old.(*api.Task), e.New.(*api.Task)
		os, ns := old.GetStatus().GetState(), t.GetStatus().GetState()
		if os != ns {
			o.stats.TaskStates[ns]++
		}
		mark := os <= running && ns > running || // it ended: restart, promote, reap
			finished(old) != finished(t) // it can be reaped now
		if old.NodeId == "" && t.NodeId != "" && ns <= running {
			// Placed on a node that is already drained or down: the
			// node's own event came before the placement.
			n := o.st.Node(t.NodeId)
			mark = mark || nodeLost(n) || n.GetSpec().GetAvailability() == api.NodeAvailability_NODE_AVAILABILITY_DRAIN
		}
		if s := o.svcs[t.ServiceId]; s != nil && s.upd != nil {
			if os != ns || old.GetStatus().GetUnhealthy() != t.GetStatus().GetUnhealthy() {
				if _, watched := s.upd.watched[t.Id]; watched {
					o.updEvents = append(o.updEvents, taskChange{old, t})
					mark = true
				}
			}
			if os < running && ns >= running {
				mark = true // start-first: the old task may stop now
			}
		}
		if mark {
			o.markSlot(t.ServiceId, keyOf(t))
		}
	case store.ActionDelete:
		t := e.Old.(*api.Task)
		svc := o.st.Service(t.ServiceId)
		if t.DesiredState <= running || svc == nil || svc.PendingDelete {
			// A live task vanished (its slot may need a new one), or the
			// last tasks of a removed service are going.
			o.markFull(t.ServiceId)
		}
	}
}

func (o *Orchestrator) intakeService(e *store.Event) {
	switch e.Action {
	case store.ActionCreate:
		svc := e.New.(*api.Service)
		o.noteMode(svc)
		o.markFull(svc.Id)
	case store.ActionDelete:
		delete(o.globals, e.ID)
		o.markFull(e.ID)
	case store.ActionUpdate:
		old, svc := e.Old.(*api.Service), e.New.(*api.Service)
		o.noteMode(svc)
		if serviceChanged(old, svc, o.svcs[svc.Id]) {
			o.markFull(svc.Id)
		}
	}
}

// serviceChanged reports a change the orchestrator must act on: the spec,
// its version, a deletion mark, or an update_status that someone else
// wrote (a manual rollback). Its own status writes and other subsystems'
// fields (the endpoint) do not count.
func serviceChanged(old, svc *api.Service, s *svcState) bool {
	if old.SpecVersion != svc.SpecVersion || old.PendingDelete != svc.PendingDelete {
		return true
	}
	if !protoEqual(old.Spec, svc.Spec) {
		return true
	}
	if !protoEqual(old.UpdateStatus, svc.UpdateStatus) {
		return s == nil || !protoEqual(s.lastStatus, svc.UpdateStatus)
	}
	return false
}

// nodeChanged reports a node change that concerns tasks: its state,
// availability, role, labels, description, or removal. Heartbeat-only
// changes (status timestamp, message) do not.
func nodeChanged(e *store.Event) bool {
	if e.Action != store.ActionUpdate {
		return true
	}
	old, n := e.Old.(*api.Node), e.New.(*api.Node)
	return old.GetStatus().GetState() != n.GetStatus().GetState() ||
		old.Removed != n.Removed || old.Role != n.Role ||
		!protoEqual(old.Spec, n.Spec) || !protoEqual(old.Description, n.Description)
}

// ------------------------------------------------------------------ time

// oldTaskTimeout bounds how long a replacement waits for the task it
// replaces to stop (an agent that never answers): SwarmKit's minute.
const oldTaskTimeout = int64(time.Minute)

type wakeKey struct {
	svc string
	key slotKey
	upd bool // the service's rolling update, not a slot
}

type wake struct {
	at  int64
	seq uint64
	wakeKey
}

// wakeAt asks for a pass at time at that reconciles the slot (or advances
// the update). One env timer serves all wakes: the earliest.
func (o *Orchestrator) wakeAt(at int64, k wakeKey) {
	if prev, ok := o.wakeIndex[k]; ok && prev <= at {
		return
	}
	o.wakeIndex[k] = at
	o.wakes.push(wake{at: at, wakeKey: k})
}

// fireWakes marks what is due.
func (o *Orchestrator) fireWakes(now int64) {
	for len(o.wakes.h) > 0 && o.wakes.h[0].at <= now {
		w := o.wakes.pop()
		if at, ok := o.wakeIndex[w.wakeKey]; !ok || at != w.at {
			continue // superseded by an earlier wake of the same key
		}
		delete(o.wakeIndex, w.wakeKey)
		if w.upd {
			o.markUpdate(w.svc)
		} else {
			o.markSlot(w.svc, w.key)
		}
	}
}

// armTimer sets the env timer for the earliest wake.
func (o *Orchestrator) armTimer(now int64) {
	if !o.running || len(o.wakes.h) == 0 {
		return
	}
	at := o.wakes.h[0].at
	if o.timer != nil && o.timerAt <= at {
		return // the armed timer fires first; its pass re-arms
	}
	if o.timer != nil {
		o.timer.Stop()
	}
	o.timerAt = at
	o.timerGen++
	gen := o.timerGen
	o.timer = o.clock.AfterFunc(time.Duration(max(at-now, 0)), func() {
		// A timer replaced by an earlier one may still fire (its Stop lost
		// a race in real mode): only the current one counts.
		if o.timerGen != gen || !o.running {
			return
		}
		o.timer = nil
		o.timerAt = 0
		o.kick()
	})
}

// sortedKeys returns a slot set in order.
func sortedKeys(m map[slotKey]struct{}) []slotKey {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, slotKey.compare)
	return keys
}

// slotKey names a slot: a replicated service's (or replicated job's) slot
// number, or for a global service the node its task is pinned to.
type slotKey struct {
	slot uint64
	node string
}

func keyOf(t *api.Task) slotKey {
	if t.Slot != 0 {
		return slotKey{slot: t.Slot}
	}
	return slotKey{node: t.NodeId}
}

func (k slotKey) compare(b slotKey) int {
	switch {
	case k.slot < b.slot:
		return -1
	case k.slot > b.slot:
		return 1
	}
	return strings.Compare(k.node, b.node)
}
