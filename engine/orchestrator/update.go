package orchestrator

import (
	"fmt"
	"slices"
	"time"

	"github.com/swarmsim/swarmsim/engine/api"
)

// Rolling updates.
//
// A service whose task spec changed has dirty slots: slots whose current
// task runs another spec. An update replaces them in batches of
// update.parallelism, waiting update.delay after each batch has come up.
// Stop-first shuts the old task down and starts the new one (desired READY)
// once the old one stopped; start-first starts the new task at once and
// shuts the old one down once the new one runs (maintain does that part).
// Every task an update creates is watched for update.monitor after it
// starts: if it fails (FAILED or REJECTED, ends while meant to run, or
// turns unhealthy) before it started or within the window, it counts as a
// failure, and once failures/slots-to-update exceeds max_failure_ratio the
// failure action applies. After the last batch the update waits one more
// monitor period, then completes.
//
// The progress lives in memory (one timer per service at most); the
// service's update_status carries the state (with the spec_version it is
// about) so that a new leader resumes it: its first full reconcile finds
// the dirty slots again and continues, with the failure count starting over
// (SwarmKit's behaviour too).

// defaultMonitor is update.monitor when the config leaves it zero.
const defaultMonitor = int64(5 * time.Second)

type updateCfg struct {
	parallelism int
	delay       int64
	monitor     int64
	action      api.UpdateConfig_FailureAction
	ratio       float64
	startFirst  bool
}

// updateConfigOf reads the update (or rollback) policy. Without one:
// parallelism 1, no delay, monitor 5s, pause on failure, stop-first. A
// rollback never rolls back: its ROLLBACK action pauses.
func updateConfigOf(spec *api.ServiceSpec, rollback bool) updateCfg {
	uc := spec.GetUpdate()
	if rollback {
		uc = spec.GetRollback()
	}
	cfg := updateCfg{parallelism: 1, monitor: defaultMonitor, action: api.UpdateConfig_PAUSE}
	if uc != nil {
		cfg.parallelism = int(uc.Parallelism)
		cfg.delay = max(uc.Delay, 0)
		if uc.Monitor > 0 {
			cfg.monitor = uc.Monitor
		}
		cfg.action = uc.FailureAction
		cfg.ratio = uc.MaxFailureRatio
		cfg.startFirst = uc.Order == api.UpdateConfig_START_FIRST
	}
	if rollback && cfg.action == api.UpdateConfig_ROLLBACK {
		cfg.action = api.UpdateConfig_PAUSE
	}
	return cfg
}

type updPhase uint8

const (
	phaseUpdating    updPhase = iota
	phasePaused               // failure action pause: nothing moves until the spec changes
	phaseRollingBack          // failure action rollback: the spec swap is being written
	phaseDone                 // completed: the status is being written
)

// update is one rolling update (or rollback) of one service.
type update struct {
	target   uint64 // the service spec_version the update moves to
	rollback bool
	cfg      updateCfg
	phase    updPhase
	// status is what the service's update_status must say; tag is the
	// counter its write feeds (cleared once the store shows it).
	status *api.UpdateStatus
	tag    statTag
	// rollbackMsg: the message of the automatic rollback being written.
	rollbackMsg string

	queue []slotKey // dirty slots not yet taken, in order
	total int       // slots this update replaces: the failure ratio's denominator
	batch map[slotKey]string
	// check lists batch slots whose task may have come up (a slot event);
	// checkAll: look at the whole batch (after a full reconcile). Checking
	// only these keeps an update with parallelism 0 over 100,000 slots
	// from walking its batch on every event.
	check    []slotKey
	checkAll bool
	// inBatch: a batch was launched and has not come up yet; batchUp: a
	// task of it came up (rather than all being lost with their write).
	inBatch, batchUp bool
	nextAt           int64 // the next batch may start then (update.delay after the last came up)
	doneAt           int64 // end of the final monitor period; 0 until the last batch came up

	watched    map[string]int64 // task created by the update -> when it started running (0: not yet)
	failedSeen map[string]struct{}
	failures   int
	lastFailed string
}

func newUpdate(c *svcCtx, rollback bool, st *api.UpdateStatus) *update {
	return &update{
		target: c.svc.SpecVersion, rollback: rollback,
		cfg:    updateConfigOf(c.svc.GetSpec(), rollback),
		status: st, batch: make(map[slotKey]string),
		watched: make(map[string]int64), failedSeen: make(map[string]struct{}),
	}
}

func inProgress(st *api.UpdateStatus) bool {
	s := st.GetState()
	return s == api.UpdateStatus_UPDATING || s == api.UpdateStatus_ROLLBACK_STARTED
}

// reconcileUpdate follows a full reconcile of a replicated or global
// service: dirty lists the slots running an old spec, in order. It starts,
// resumes or adopts an update as the service's update_status says, or
// completes one that has nothing left to roll.
func (o *Orchestrator) reconcileUpdate(s *svcState, c *svcCtx, dirty []slotKey, p *plan) {
	target := c.svc.SpecVersion
	u := s.upd
	if u != nil && u.target != target {
		u, s.upd = nil, nil // the spec changed again: a new update
	}
	st := c.svc.GetUpdateStatus()
	current := st != nil && st.SpecVersion == target
	if u == nil {
		switch {
		case len(dirty) == 0 && !inProgress(st):
			return
		case len(dirty) == 0 && !current:
			// An update of an earlier spec ran out of slots to roll (the
			// last spec change left the tasks alone): it is complete.
			u = newUpdate(c, st.State == api.UpdateStatus_ROLLBACK_STARTED, st)
			o.completeUpdate(s, c, u, p)
			return
		case len(dirty) == 0:
			// An update of this spec, resumed with nothing left: wait one
			// monitor period (the last batch's may still run), then
			// complete.
			u = newUpdate(c, st.State == api.UpdateStatus_ROLLBACK_STARTED, st)
			u.doneAt = c.now + u.cfg.monitor
		case current && (st.State == api.UpdateStatus_PAUSED || st.State == api.UpdateStatus_ROLLBACK_PAUSED):
			// Paused for this spec: the user resumes by updating again.
			return
		case current && st.State == api.UpdateStatus_UPDATING:
			u = newUpdate(c, false, st) // resumed after a leader change
		case st.GetState() == api.UpdateStatus_ROLLBACK_STARTED:
			u = newUpdate(c, true, st)
			if !current {
				// Asked for by the control API (a manual rollback, spec
				// and previous_spec swapped): adopt it.
				msg := st.Message
				if msg == "" {
					msg = "manually requested rollback"
				}
				u.status = &api.UpdateStatus{State: api.UpdateStatus_ROLLBACK_STARTED, StartedAt: c.now, Message: msg, SpecVersion: target}
				u.tag = tagRollbackStarted
			}
		default:
			u = newUpdate(c, false, nil)
			u.status = &api.UpdateStatus{State: api.UpdateStatus_UPDATING, StartedAt: c.now, Message: "update in progress", SpecVersion: target}
			u.tag = tagUpdateStarted
			o.log.Info("update started", "service", c.id, "slots", len(dirty))
		}
		s.upd = u
	}
	if u.phase == phaseUpdating {
		u.queue = u.queue[:0]
		for _, k := range dirty {
			if _, taken := u.batch[k]; !taken {
				u.queue = append(u.queue, k)
			}
		}
		u.total = max(u.total, len(u.queue)+len(u.batch))
		u.checkAll = true
		if len(u.queue) > 0 {
			u.doneAt = 0
		}
	}
	o.persist(p, s, c, u)
	s.updDirty = true
}

// advanceUpdate moves an update on: applies the failure action, notes
// which tasks of the batch came up, launches the next batch after the
// delay, and completes after the final monitor period.
func (o *Orchestrator) advanceUpdate(s *svcState, c *svcCtx, p *plan) {
	u := s.upd
	if c.svc == nil || c.svc.SpecVersion != u.target {
		return // a full reconcile is marked and rebuilds the update
	}
	switch u.phase {
	case phasePaused, phaseDone:
		o.persist(p, s, c, u)
		return
	case phaseRollingBack:
		o.writeRollback(p, s, c, u)
		return
	}
	now := c.now
	if u.failures > 0 && u.cfg.action != api.UpdateConfig_CONTINUE &&
		float64(u.failures)/float64(max(u.total, 1)) > u.cfg.ratio {
		o.failUpdate(s, c, u, p)
		return
	}
	// Which batch tasks came up (running, or ended: a failure is counted
	// apart). A batch task the store does not hold is gone, or was never
	// created: the service's writes have all been answered when this runs,
	// and the one that created it failed (it lost a race, or leadership
	// moved). Its slot goes back to the front of the queue: the next batch
	// replaces it if it still runs the old spec. Deleting while ranging is
	// order-independent; the requeued slots are sorted.
	var lost []slotKey
	cameUp := func(k slotKey) {
		id, ok := u.batch[k]
		if !ok {
			return
		}
		t := o.st.Task(id)
		if t == nil {
			delete(u.batch, k)
			delete(u.watched, id)
			lost = append(lost, k)
			return
		}
		if t.DesiredState > running || t.GetStatus().GetState() >= running {
			delete(u.batch, k)
			u.batchUp = true
		}
	}
	if u.checkAll {
		for k := range u.batch {
			cameUp(k)
		}
	} else {
		for _, k := range u.check {
			cameUp(k)
		}
	}
	u.check, u.checkAll = u.check[:0], false
	if len(lost) > 0 {
		slices.SortFunc(lost, slotKey.compare)
		u.queue = append(lost, u.queue...)
		u.doneAt = 0
	}
	if len(u.batch) > 0 {
		return
	}
	if u.inBatch {
		// The delay follows a batch that came up; one whose every task
		// was lost is simply started again.
		if u.batchUp {
			u.nextAt = now + u.cfg.delay
		}
		u.inBatch, u.batchUp = false, false
	}
	if len(u.queue) > 0 {
		if now < u.nextAt {
			o.wakeAt(u.nextAt, wakeKey{svc: c.id, upd: true})
			return
		}
		o.startBatch(c, u, p)
		if len(u.batch) > 0 {
			return
		}
	}
	if u.doneAt == 0 {
		u.doneAt = now + u.cfg.monitor
	}
	if now < u.doneAt {
		o.wakeAt(u.doneAt, wakeKey{svc: c.id, upd: true})
		return
	}
	o.completeUpdate(s, c, u, p)
}

// startBatch replaces up to parallelism dirty slots (all of them for
// parallelism 0). Slots that are no longer dirty are skipped without
// counting.
func (o *Orchestrator) startBatch(c *svcCtx, u *update, p *plan) {
	par := u.cfg.parallelism
	if par <= 0 {
		par = len(u.queue)
	}
	o.pruneWatched(c, u)
	taken := 0
	for taken < par && len(u.queue) > 0 {
		k := u.queue[0]
		u.queue = u.queue[1:]
		if id := o.updateSlot(c, u, k, p); id != "" {
			u.batch[k] = id
			u.watched[id] = 0
			taken++
		}
	}
	if taken > 0 {
		u.inBatch = true
	}
}

// updateSlot replaces one slot's task by one of the current spec and
// returns the new task's ID, or "" when the slot needs nothing.
func (o *Orchestrator) updateSlot(c *svcCtx, u *update, k slotKey, p *plan) string {
	if _, ok := p.created[slotRef{c.id, k}]; ok {
		return "" // restarted in this very pass, with the current spec
	}
	tasks := o.slotTasks(c.id, k)
	var liveTasks []*api.Task
	var newest *api.Task
	for _, t := range tasks {
		if newest == nil || newer(t, newest) {
			newest = t
		}
		if live(t) {
			liveTasks = append(liveTasks, t)
		}
	}
	var marker *api.Task
	if len(liveTasks) == 0 {
		if newest == nil || !isMarker(newest) {
			return "" // the slot was scaled away
		}
		marker = newest
	}
	for _, t := range liveTasks {
		if c.isClean(t) {
			return "" // replaced already (a restart, or an earlier batch)
		}
	}
	if marker != nil && c.isClean(marker) {
		return ""
	}
	if c.mode.global() {
		if keep, _ := c.nodeEligible(o.st.Node(k.node)); !keep {
			return ""
		}
	}
	p.begin(c.id, k, false)
	defer p.end()
	desired := running
	if !u.cfg.startFirst {
		for _, t := range liveTasks {
			p.raise(t, shutdown)
			if o.stillRunning(t) {
				desired = ready // starts once the old task stopped
			}
		}
	}
	id := o.create(p, c.svc, k, desired, 0, tagNone)
	if desired == ready {
		o.promoteAt[id] = c.now
		o.wakeAt(c.now+oldTaskTimeout, wakeKey{svc: c.id, key: k})
	}
	return id
}

// pruneWatched forgets tasks whose monitor window is over, or that ended
// or vanished (their failure, if any, is counted already).
func (o *Orchestrator) pruneWatched(c *svcCtx, u *update) {
	for id, since := range u.watched {
		t := o.st.Task(id)
		if t == nil || ended(t) || since != 0 && c.now-since > u.cfg.monitor {
			delete(u.watched, id)
			delete(u.failedSeen, id)
		}
	}
}

// takeUpdateEvents counts, at the pass's time, the starts and failures of
// tasks that updates watch.
func (o *Orchestrator) takeUpdateEvents(now int64) {
	for _, ch := range o.updEvents {
		s := o.svcs[ch.new.ServiceId]
		if s == nil || s.upd == nil || s.upd.phase != phaseUpdating {
			continue
		}
		u := s.upd
		id := ch.new.Id
		since, ok := u.watched[id]
		if !ok {
			continue
		}
		os, ns := ch.old.GetStatus().GetState(), ch.new.GetStatus().GetState()
		if since == 0 && os < running && ns == running {
			since = now
			u.watched[id] = now
		}
		failedNow := os <= running && ns > running && (failedOnItsOwn(ch.new) || ch.new.DesiredState <= running) ||
			ch.new.GetStatus().GetUnhealthy() && !ch.old.GetStatus().GetUnhealthy()
		if !failedNow {
			continue
		}
		if _, seen := u.failedSeen[id]; seen || since != 0 && now-since > u.cfg.monitor {
			continue
		}
		u.failedSeen[id] = struct{}{}
		u.failures++
		u.lastFailed = id
		o.markUpdate(s.id)
		o.log.Info("updated task failed", "service", s.id, "task", id, "failures", u.failures, "of", u.total)
	}
	clear(o.updEvents)
	o.updEvents = o.updEvents[:0]
}

// failUpdate applies the failure action once failures passed the ratio.
func (o *Orchestrator) failUpdate(s *svcState, c *svcCtx, u *update, p *plan) {
	what := "update"
	if u.rollback {
		what = "rollback"
	}
	if u.cfg.action == api.UpdateConfig_ROLLBACK && !u.rollback && c.svc.PreviousSpec != nil {
		u.phase = phaseRollingBack
		u.rollbackMsg = fmt.Sprintf("update rolled back due to failure or early termination of task %s", u.lastFailed)
		u.tag = tagRollbackStarted
		o.dropProgress(u)
		o.log.Info("update rolling back", "service", c.id, "failures", u.failures)
		o.writeRollback(p, s, c, u)
		return
	}
	msg := fmt.Sprintf("%s paused due to failure or early termination of task %s", what, u.lastFailed)
	if u.cfg.action == api.UpdateConfig_ROLLBACK && !u.rollback {
		msg += "; no previous spec to roll back to"
	}
	state := api.UpdateStatus_PAUSED
	if u.rollback {
		state = api.UpdateStatus_ROLLBACK_PAUSED
	}
	u.phase = phasePaused
	u.status = &api.UpdateStatus{State: state, StartedAt: u.status.GetStartedAt(), Message: msg, SpecVersion: u.target}
	u.tag = tagUpdatePaused
	o.dropProgress(u)
	o.log.Info(what+" paused", "service", c.id, "failures", u.failures)
	o.persist(p, s, c, u)
}

func (o *Orchestrator) dropProgress(u *update) {
	u.queue, u.batch, u.watched, u.failedSeen = nil, nil, nil, nil
}

// completeUpdate records the end of an update or rollback.
func (o *Orchestrator) completeUpdate(s *svcState, c *svcCtx, u *update, p *plan) {
	st := &api.UpdateStatus{State: api.UpdateStatus_COMPLETED, StartedAt: u.status.GetStartedAt(),
		CompletedAt: c.now, Message: "update completed", SpecVersion: c.svc.SpecVersion}
	u.tag = tagUpdateCompleted
	if u.rollback {
		st.State, st.Message = api.UpdateStatus_ROLLBACK_COMPLETED, "rollback completed"
		u.tag = tagRollbackCompleted
	}
	u.status, u.phase = st, phaseDone
	o.dropProgress(u)
	o.log.Info("update complete", "service", c.id, "rollback", u.rollback)
	o.persist(p, s, c, u)
	s.upd = nil
}

// persist writes u.status to the service unless it says so already. The
// write applies only while the service is still at the update's spec
// version: a newer spec is a newer update.
func (o *Orchestrator) persist(p *plan, s *svcState, c *svcCtx, u *update) {
	want := u.status
	if want == nil || protoEqual(c.svc.GetUpdateStatus(), want) {
		u.tag = tagNone
		return
	}
	target, tag := u.target, u.tag
	p.begin(c.id, slotKey{}, true)
	p.add(action{op: opService, tag: tag, id: c.id, mutate: func(cur *api.Service) *api.Service {
		if cur.SpecVersion != target || protoEqual(cur.GetUpdateStatus(), want) {
			return nil
		}
		n := cur.ShallowCopy()
		n.UpdateStatus = want
		s.lastStatus = want
		return n
	}})
	p.end()
}

// writeRollback swaps the service back to its previous spec and starts the
// rollback. The restored spec gets a new, higher spec_version: versions
// only grow, so none ever names two specs.
func (o *Orchestrator) writeRollback(p *plan, s *svcState, c *svcCtx, u *update) {
	target, msg, tag, now := u.target, u.rollbackMsg, u.tag, c.now
	p.begin(c.id, slotKey{}, true)
	p.add(action{op: opService, tag: tag, id: c.id, mutate: func(cur *api.Service) *api.Service {
		if cur.SpecVersion != target || cur.PreviousSpec == nil {
			return nil
		}
		n := cur.ShallowCopy()
		n.Spec, n.PreviousSpec = cur.PreviousSpec, cur.Spec
		n.SpecVersion = max(cur.SpecVersion, cur.PreviousSpecVersion) + 1
		n.PreviousSpecVersion = cur.SpecVersion
		n.UpdateStatus = &api.UpdateStatus{State: api.UpdateStatus_ROLLBACK_STARTED, StartedAt: now,
			Message: msg, SpecVersion: n.SpecVersion}
		s.lastStatus = n.UpdateStatus
		return n
	}})
	p.end()
}
