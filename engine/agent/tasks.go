package agent

import (
	"fmt"
	"slices"
	"time"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/env"
)

// phase is where a task's container is, as far as the agent knows.
type phase uint8

const (
	ctrNone      phase = iota // no container (yet, or any more)
	ctrPreparing              // Prepare called
	ctrPrepared
	ctrStarting // Start called
	ctrRunning
	ctrStopping // Stop called
	ctrExited   // exited, failed or stopped; still there
	ctrRemoving // Remove called
)

// task is the agent's record of one task: the newest assignment of it and
// its container. It lives while the task is assigned or its container
// exists.
type task struct {
	id    string
	t     *api.Task // newest assignment; nil for a container nobody assigned
	inSet bool

	ctr       phase
	exitCode  int
	unhealthy bool // the container's last health verdict
	// reported is the furthest state this agent reported.
	reported api.TaskState
}

// state is the task's state as far as the agent knows: the store's (as
// assigned) or what the agent reported since, whichever is further.
func (ts *task) state() api.TaskState {
	return max(ts.t.GetStatus().GetState(), ts.reported)
}

const (
	stateAccepted  = api.TaskState_TASK_STATE_ACCEPTED
	statePreparing = api.TaskState_TASK_STATE_PREPARING
	stateReady     = api.TaskState_TASK_STATE_READY
	stateStarting  = api.TaskState_TASK_STATE_STARTING
	stateRunning   = api.TaskState_TASK_STATE_RUNNING
	stateComplete  = api.TaskState_TASK_STATE_COMPLETE
	stateShutdown  = api.TaskState_TASK_STATE_SHUTDOWN
	stateFailed    = api.TaskState_TASK_STATE_FAILED
	stateRejected  = api.TaskState_TASK_STATE_REJECTED
)

// applyFull makes tasks the whole assignment set.
func (a *Agent) applyFull(tasks []*api.Task) {
	in := make(map[string]bool, len(tasks))
	for _, t := range tasks {
		if t != nil {
			in[t.Id] = true
		}
	}
	for _, id := range a.sortedTaskIDs() {
		if ts := a.tasks[id]; ts.inSet && !in[id] {
			ts.inSet = false
			a.reconcile(ts)
		}
	}
	for _, t := range tasks {
		a.upsert(t)
	}
	if !a.gotFull {
		a.gotFull = true
		a.orphanUnclaimed()
	}
}

// applyChanges applies one incremental message.
func (a *Agent) applyChanges(tasks []*api.Task, removed []string) {
	for _, id := range removed {
		if ts := a.tasks[id]; ts != nil && ts.inSet {
			ts.inSet = false
			a.reconcile(ts)
		}
	}
	for _, t := range tasks {
		a.upsert(t)
	}
}

func (a *Agent) upsert(t *api.Task) {
	if t == nil || t.Id == "" || t.NodeId != string(a.id) {
		return // never run another node's task
	}
	ts := a.tasks[t.Id]
	if ts == nil {
		ts = &task{id: t.Id}
		a.tasks[t.Id] = ts
		if a.claim(ts) {
			a.stats.TasksAdopted++
		}
	}
	ts.t = t
	ts.inSet = true
	a.reconcile(ts)
}

func (a *Agent) sortedTaskIDs() []string {
	ids := make([]string, 0, len(a.tasks))
	for id := range a.tasks {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// onListed takes the executor's list of the node's containers: each is
// adopted by its task if assigned, or stopped and removed once a whole set
// says it is not the node's.
func (a *Agent) onListed(list []env.ContainerStatus) {
	a.listed = true
	a.adopt = make(map[string]env.ContainerStatus, len(list))
	for _, c := range list {
		a.adopt[c.TaskID] = c
	}
	for _, id := range a.sortedTaskIDs() {
		if a.claim(a.tasks[id]) {
			a.stats.TasksAdopted++
		}
	}
	if a.gotFull {
		a.orphanUnclaimed()
	}
	early := a.early
	a.early = nil
	for _, ev := range early {
		a.onContainerEvent(ev)
	}
	for _, id := range a.sortedTaskIDs() {
		if ts := a.tasks[id]; ts != nil {
			a.reconcile(ts)
		}
	}
}

// claim gives a task the listed container of the same ID, if any, and
// reports whether there was one.
func (a *Agent) claim(ts *task) bool {
	c, ok := a.adopt[ts.id]
	if !ok {
		return false
	}
	delete(a.adopt, ts.id)
	switch c.State {
	case env.ContainerUnknown:
		ts.ctr = ctrPreparing // an earlier agent's Prepare: its event comes to us
	case env.ContainerPrepared:
		ts.ctr = ctrPrepared
	case env.ContainerRunning:
		ts.ctr = ctrRunning
		ts.unhealthy = c.Health == env.HealthUnhealthy
	case env.ContainerExited, env.ContainerFailed:
		ts.ctr = ctrExited
		ts.exitCode = c.ExitCode
	case env.ContainerRemoved:
		ts.ctr = ctrNone
	}
	return true
}

// orphanUnclaimed stops and removes the listed containers no assigned task
// claimed.
func (a *Agent) orphanUnclaimed() {
	if !a.listed || len(a.adopt) == 0 {
		return
	}
	ids := make([]string, 0, len(a.adopt))
	for id := range a.adopt {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		ts := &task{id: id}
		a.tasks[id] = ts
		a.claim(ts)
		a.reconcile(ts)
	}
}

// reconcile moves a task one step towards what its assignment wants, given
// where its container is. It is called after every change of either.
func (a *Agent) reconcile(ts *task) {
	if !a.listed || !a.running {
		return // List tells what exists: act only once it answered
	}
	if !ts.inSet || ts.t == nil {
		a.retire(ts)
		return
	}
	cur := ts.state()
	if cur >= stateComplete {
		// Ended. The container stays (exited) until the task leaves the
		// set; one still running is stopped.
		if ts.ctr == ctrRunning || ts.ctr == ctrPrepared {
			a.stop(ts)
		}
		return
	}
	if ts.t.DesiredState > stateRunning {
		a.shutdown(ts)
		return
	}
	switch ts.ctr {
	case ctrNone:
		if cur >= stateStarting {
			// It was started before and its container is gone: the machine
			// lost it.
			a.report(ts, stateFailed, "", "task: container lost", 0, false)
			return
		}
		a.report(ts, stateAccepted, "accepted", "", 0, false)
		spec, err := a.containerSpec(ts.t)
		if err != nil {
			a.report(ts, stateRejected, "", err.Error(), 0, false)
			return
		}
		ts.ctr = ctrPreparing
		a.report(ts, statePreparing, "preparing", "", 0, false)
		a.exec.Prepare(spec)
	case ctrPrepared:
		a.report(ts, stateReady, "prepared", "", 0, false)
		if ts.t.DesiredState >= stateRunning {
			ts.ctr = ctrStarting
			a.report(ts, stateStarting, "starting", "", 0, false)
			a.exec.Start(ts.id)
		}
	case ctrRunning:
		if ts.unhealthy {
			a.report(ts, stateFailed, "", "container unhealthy", 0, true)
			a.stop(ts)
			return
		}
		a.report(ts, stateRunning, "started", "", 0, false)
	case ctrExited:
		a.exited(ts)
	}
}

// retire stops and removes the container of a task that is not assigned
// any more, and forgets the task once nothing is left.
func (a *Agent) retire(ts *task) {
	switch ts.ctr {
	case ctrNone:
		delete(a.tasks, ts.id)
	case ctrPrepared, ctrRunning:
		a.stop(ts)
	case ctrExited:
		a.remove(ts)
	}
}

// shutdown ends a task whose desired state is past RUNNING: stop, report
// SHUTDOWN, remove.
func (a *Agent) shutdown(ts *task) {
	switch ts.ctr {
	case ctrNone:
		a.report(ts, stateShutdown, "shutdown", "", 0, false)
	case ctrPrepared, ctrRunning:
		a.stop(ts)
	case ctrExited:
		a.report(ts, stateShutdown, "shutdown", "", 0, false)
		a.remove(ts)
	}
}

// exited reports a container that ended on its own while it was meant to
// run.
func (a *Agent) exited(ts *task) {
	if ts.exitCode == 0 {
		a.report(ts, stateComplete, "finished", "", 0, false)
		return
	}
	a.report(ts, stateFailed, "", fmt.Sprintf("task: non-zero exit (%d)", ts.exitCode), int32(ts.exitCode), false)
}

func (a *Agent) stop(ts *task) {
	ts.ctr = ctrStopping
	a.exec.Stop(ts.id, a.stopGrace(ts.t))
}

func (a *Agent) remove(ts *task) {
	ts.ctr = ctrRemoving
	a.exec.Remove(ts.id)
}

func (a *Agent) stopGrace(t *api.Task) time.Duration {
	if g := t.GetSpec().GetContainer().GetStopGracePeriod(); g > 0 {
		return time.Duration(g)
	}
	return a.cfg.StopGrace
}

// onContainerEvent moves a task's container phase on, then reconciles.
func (a *Agent) onContainerEvent(ev env.ContainerEvent) {
	if !a.listed {
		a.early = append(a.early, ev)
		return
	}
	ts := a.tasks[ev.TaskID]
	if ts == nil {
		_, listed := a.adopt[ev.TaskID]
		switch {
		case ev.State == env.ContainerRemoved:
			delete(a.adopt, ev.TaskID)
			return
		case listed || !a.gotFull:
			// Not claimed yet: keep its news for the first whole set to
			// decide on, unless the list already told of a later state
			// (events that came before List answered are replayed).
			if c, ok := a.adopt[ev.TaskID]; !ok || lifeOrder(ev.State) >= lifeOrder(c.State) {
				a.adopt[ev.TaskID] = env.ContainerStatus{TaskID: ev.TaskID, State: ev.State, ExitCode: ev.ExitCode, Health: ev.Health}
			}
			return
		case ev.State == env.ContainerFailed:
			return
		}
		// A container nobody assigned (a late event of one we forgot):
		// take it, so that it is stopped and removed.
		ts = &task{id: ev.TaskID}
		a.tasks[ev.TaskID] = ts
	}
	switch ev.State {
	case env.ContainerPrepared:
		if ts.ctr == ctrPreparing || ts.ctr == ctrNone {
			ts.ctr = ctrPrepared
		}
	case env.ContainerRunning:
		switch ts.ctr {
		case ctrNone, ctrPreparing, ctrPrepared, ctrStarting:
			ts.ctr = ctrRunning
			a.stats.TasksStarted++
		case ctrRunning:
		default:
			return // a late event: we stopped or removed it since
		}
		ts.unhealthy = ev.Health == env.HealthUnhealthy
	case env.ContainerExited:
		switch ts.ctr {
		case ctrRemoving, ctrExited:
			return
		}
		ts.ctr = ctrExited
		ts.exitCode = ev.ExitCode
	case env.ContainerFailed:
		if ts.ctr == ctrRemoving {
			return
		}
		wasPreparing := ts.ctr == ctrPreparing
		ts.ctr = ctrExited
		if ts.t != nil && ts.inSet && ts.t.DesiredState <= stateRunning && ts.state() < stateComplete {
			if wasPreparing {
				a.report(ts, stateRejected, "", ev.Err, 0, false)
			} else {
				a.report(ts, stateFailed, "", ev.Err, 0, false)
			}
		}
	case env.ContainerRemoved:
		if ts.ctr == ctrRemoving {
			a.stats.ContainersRemoved++
		}
		ts.ctr = ctrNone
		if !ts.inSet {
			delete(a.tasks, ts.id)
			return
		}
		if ts.t != nil && ts.t.DesiredState <= stateRunning && ts.state() < stateComplete && ts.state() >= stateStarting {
			// Removed under us while it was meant to run.
			a.report(ts, stateFailed, "", "task: container removed", 0, false)
			return
		}
	}
	a.reconcile(ts)
}

// lifeOrder ranks container states in the order a container goes through
// them.
func lifeOrder(s env.ContainerState) int {
	switch s {
	case env.ContainerPrepared:
		return 1
	case env.ContainerRunning:
		return 2
	case env.ContainerExited, env.ContainerFailed:
		return 3
	case env.ContainerRemoved:
		return 4
	}
	return 0
}

// containerSpec is what the executor needs to run t. It fails when a
// secret or config t references is not held (see taskFiles).
func (a *Agent) containerSpec(t *api.Task) (env.ContainerSpec, error) {
	c := t.GetSpec().GetContainer()
	lim := t.GetSpec().GetLimits()
	spec := env.ContainerSpec{
		TaskID:      t.Id,
		ServiceID:   t.ServiceId,
		Image:       c.GetImage(),
		Command:     c.GetCommand(),
		Env:         c.GetEnv(),
		Labels:      c.GetLabels(),
		NanoCPUs:    lim.GetNanoCpus(),
		MemoryBytes: lim.GetMemoryBytes(),
	}
	if h := c.GetHealth(); h != nil {
		spec.Health = &env.HealthCheck{
			Interval:    time.Duration(h.Interval),
			Timeout:     time.Duration(h.Timeout),
			StartPeriod: time.Duration(h.StartPeriod),
			Retries:     int(h.Retries),
		}
	}
	files, err := a.taskFiles(t)
	if err != nil {
		return env.ContainerSpec{}, err
	}
	spec.Files = files
	return spec, nil
}
