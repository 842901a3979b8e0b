package orchestrator

import (
	"github.com/swarmsim/swarmsim/engine/api"
)

// slotInfo is one slot as a reconcile sees it (every task of the slot,
// history included) and what maintain concluded about it.
type slotInfo struct {
	key   slotKey
	tasks []*api.Task

	// occupied: the slot counts toward the service's replicas. It holds a
	// live task (or gets a replacement), a completion of the current job
	// iteration, or a finished marker.
	occupied bool
	// complete: a job slot holds a completed task of the current iteration.
	complete bool
	// marker: the slot's last task ended and its restart policy said no.
	// The slot stays taken (no new task replaces it) until a scale down
	// or an update.
	marker *api.Task
	// current: the live tasks the slot keeps (a scale down stops these).
	current  []*api.Task
	running  bool   // a current task runs
	node     string // the node of a current task
	replaced bool   // maintain planned a new task for the slot
	// needsUpdate: the slot's current task(s) run an old spec.
	needsUpdate bool
	newest      *api.Task // newest task of the current generation
}

// isMarker: t ended on its own and was then shut down by the orchestrator
// without a replacement (see slotInfo.marker).
func isMarker(t *api.Task) bool {
	if t.DesiredState != shutdown {
		return false
	}
	return failedOnItsOwn(t) || t.GetStatus().GetState() == complete
}

// slotTasks reads one slot: by (service, slot) for replicated services and
// jobs, from the node's tasks for global ones. Both cost the slot's size
// (the node's for global), never the service's.
func (o *Orchestrator) slotTasks(id string, k slotKey) []*api.Task {
	if k.slot != 0 {
		return o.st.TasksBySlot(id, k.slot)
	}
	var out []*api.Task
	for t := range o.st.EachTaskByNode(k.node) {
		if t.ServiceId == id && t.Slot == 0 {
			out = append(out, t)
		}
	}
	return out
}

// maintain looks after one slot of a live service: restarts what ended
// under the restart policy, replaces tasks lost with their node or evicted
// from a drained node, promotes READY tasks whose delay passed, finishes a
// start-first replacement, gives an eligible node of a global service its
// task, and reaps the slot's history. It fills si's conclusions.
func (o *Orchestrator) maintain(c *svcCtx, si *slotInfo, p *plan) {
	p.begin(c.id, si.key, false)
	defer p.end()
	now := c.now
	keep, start := true, true
	if c.mode.global() {
		keep, start = c.nodeEligible(o.st.Node(si.key.node))
	}

	var liveTasks []*api.Task
	stopping := false // a task of the slot is still stopping on a reachable node
	for _, t := range si.tasks {
		if c.mode.job() && t.JobIteration != c.iter {
			// A task of an earlier run of the job: it goes.
			o.removeTask(t, p)
			stopping = stopping || o.stillRunning(t)
			continue
		}
		if si.newest == nil || newer(t, si.newest) {
			si.newest = t
		}
		if c.mode.job() && t.GetStatus().GetState() == complete {
			// A completion of this run: final, never restarted or moved.
			si.complete = true
			continue
		}
		if live(t) {
			liveTasks = append(liveTasks, t)
			if t.DesiredState != ready && len(o.promoteAt) > 0 {
				delete(o.promoteAt, t.Id)
			}
			continue
		}
		if placed(t) && t.DesiredState == shutdown && nodeGone(o.st.Node(t.NodeId)) {
			// Shut down on a node that left: no agent will say it stopped.
			p.orphan(t)
		}
		stopping = stopping || o.stillRunning(t)
	}

	var healthy, kept []*api.Task
	type need struct {
		t   *api.Task
		why reason
	}
	var needs []need
	for _, t := range liveTasks {
		if !keep {
			// A global service's node that may no longer hold its task.
			p.raise(t, shutdown)
			if placed(t) && nodeGone(o.st.Node(t.NodeId)) {
				p.orphan(t)
			}
			continue
		}
		switch {
		case ended(t):
			needs = append(needs, need{t, reasonEnded})
		case placed(t):
			n := o.st.Node(t.NodeId)
			switch {
			case nodeLost(n):
				needs = append(needs, need{t, reasonLost})
			case !c.mode.global() && !o.taskFits(t, n):
				needs = append(needs, need{t, reasonEvicted})
			default:
				healthy = append(healthy, t)
			}
		default:
			healthy = append(healthy, t)
		}
	}

	replace, waitStop := false, stopping
	var delay int64
	tag := tagNone
	var declined *api.Task
	for _, nd := range needs {
		t := nd.t
		switch nd.why {
		case reasonEnded:
			p.raise(t, shutdown)
			if shouldRestart(t, reasonEnded, si.tasks, now, c.mode.job()) {
				replace, tag = true, tagRestart
				delay = max(delay, policyOf(t).delay)
			} else if declined == nil || newer(t, declined) {
				declined = t
			}
		case reasonLost:
			if !shouldRestart(t, reasonLost, si.tasks, now, c.mode.job()) {
				// Condition none: the task stays where it is; its node may
				// come back.
				kept = append(kept, t)
				continue
			}
			p.raise(t, shutdown)
			if nodeGone(o.st.Node(t.NodeId)) {
				p.orphan(t)
			}
			replace, tag = true, tagRestart
			delay = max(delay, policyOf(t).delay)
		case reasonEvicted:
			// Drain or a constraint the node no longer meets: not the
			// task's failure, so no policy, no delay; but the new task
			// waits for the old one to stop.
			p.raise(t, shutdown)
			replace, waitStop = true, true
			if tag == tagNone {
				tag = tagReschedule
			}
		}
	}
	if len(healthy) > 0 || len(kept) > 0 {
		replace = false // another task holds the slot already
	}
	if replace {
		desired := running
		if delay > 0 || waitStop {
			desired = ready
		}
		id := o.create(p, c.svc, si.key, desired, c.iter, tag)
		if desired == ready {
			at := now + delay
			o.promoteAt[id] = at
			o.wakeAt(at, wakeKey{svc: c.id, key: si.key})
		}
		si.replaced = true
	}

	// READY tasks start once their delay passed and the task they replace
	// stopped (or could not be waited for any longer).
	for _, t := range healthy {
		if t.DesiredState != ready {
			continue
		}
		at := o.promoteTime(t)
		switch {
		case now < at:
			o.wakeAt(at, wakeKey{svc: c.id, key: si.key})
		case stopping && now < at+oldTaskTimeout:
			o.wakeAt(at+oldTaskTimeout, wakeKey{svc: c.id, key: si.key})
		default:
			p.raise(t, running)
			delete(o.promoteAt, t.Id)
		}
	}

	// Start-first: once a task of the current spec runs, the others of the
	// slot stop.
	if len(healthy) > 1 {
		var winner *api.Task
		for _, t := range healthy {
			if t.DesiredState == running && t.GetStatus().GetState() == running && c.isClean(t) &&
				(winner == nil || newer(t, winner)) {
				winner = t
			}
		}
		if winner != nil {
			for _, t := range healthy {
				if t != winner {
					p.raise(t, shutdown)
				}
			}
			healthy = []*api.Task{winner}
		}
	}

	si.current = append(healthy, kept...)
	switch {
	case si.complete, len(si.current) > 0, replace:
		si.occupied = true
	case declined != nil:
		si.occupied, si.marker = true, declined
	// A global task is shut down when its node stops being eligible
	// (down, drained, constraints), whatever its state, and its failure
	// may be reported only after that: such a task is no marker when its
	// policy, asked as of its end, would have restarted it. The node,
	// eligible again, gets a task.
	case len(liveTasks) == 0 && si.newest != nil && isMarker(si.newest) &&
		!(c.mode.global() && shouldRestart(si.newest, reasonEnded, si.tasks, endedAt(si.newest), c.mode.job())):
		si.occupied, si.marker = true, si.newest
	}
	if c.mode.global() && keep && start && !si.occupied {
		// A node that came back may still be stopping the service's old
		// task there: the new one waits for it, as a replacement does.
		desired := running
		if stopping {
			desired = ready
		}
		id := o.create(p, c.svc, si.key, desired, c.iter, tagNone)
		if desired == ready {
			o.promoteAt[id] = now
		}
		si.occupied, si.replaced = true, true
	}
	for _, t := range si.current {
		if t.GetStatus().GetState() == running {
			si.running = true
		}
		if si.node == "" {
			si.node = t.NodeId
		}
	}
	if !c.mode.job() && !si.replaced {
		switch {
		case len(si.current) > 0:
			si.needsUpdate = true
			for _, t := range si.current {
				if c.isClean(t) {
					si.needsUpdate = false
					break
				}
			}
		case si.marker != nil:
			si.needsUpdate = !c.isClean(si.marker)
		}
	}
	o.reap(c, si, p)
}

// stillRunning: t may still run a container on a node that answers.
func (o *Orchestrator) stillRunning(t *api.Task) bool {
	return placed(t) && !nodeLost(o.st.Node(t.NodeId))
}

// reap deletes what the slot need not keep: tasks meant to be removed
// once they no longer run (their node lost counts: no agent will report),
// and finished tasks beyond the cluster's history limit, oldest first. The
// slot's marker and, under a max_attempts policy, the failures that count
// as attempts within the window are kept whatever the limit, since the
// restart decisions read them.
func (o *Orchestrator) reap(c *svcCtx, si *slotInfo, p *plan) {
	var hist []*api.Task
	for _, t := range si.tasks {
		switch {
		case t.DesiredState == remove:
			if notRunning(t) || t.NodeId != "" && nodeLost(o.st.Node(t.NodeId)) {
				p.del(t)
			}
		case finished(t):
			hist = append(hist, t)
		}
	}
	limit := o.historyLimit
	if uint64(len(hist)) <= limit {
		return
	}
	sortNewestFirst(hist)
	var pol policy
	var ver uint64
	if si.newest != nil {
		pol, ver = policyOf(si.newest), si.newest.SpecVersion
	}
	kept := uint64(0)
	for _, t := range hist {
		protected := t == si.marker ||
			pol.maxAttempts > 0 && t.SpecVersion == ver && isAttempt(t, pol, c.mode.job()) && inWindow(t, pol, c.now)
		if protected || kept < limit {
			kept++
			continue
		}
		p.del(t)
	}
}

// removeTask plans the end of a task whose service or slot is gone:
// deleted at once if it does not run (or its node is lost), otherwise
// desired REMOVE so that its agent stops it first.
func (o *Orchestrator) removeTask(t *api.Task, p *plan) {
	if notRunning(t) || t.NodeId != "" && nodeLost(o.st.Node(t.NodeId)) {
		p.del(t)
		return
	}
	p.raise(t, remove)
}
