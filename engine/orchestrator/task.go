package orchestrator

import (
	"cmp"
	"slices"

	"github.com/swarmsim/swarmsim/engine/api"
)

// Task states the orchestrator reasons with.
const (
	assigned = api.TaskState_TASK_STATE_ASSIGNED
	ready    = api.TaskState_TASK_STATE_READY
	running  = api.TaskState_TASK_STATE_RUNNING
	complete = api.TaskState_TASK_STATE_COMPLETE
	shutdown = api.TaskState_TASK_STATE_SHUTDOWN
	failed   = api.TaskState_TASK_STATE_FAILED
	rejected = api.TaskState_TASK_STATE_REJECTED
	remove   = api.TaskState_TASK_STATE_REMOVE
)

// live: the task is meant to run (desired READY or RUNNING).
func live(t *api.Task) bool { return t.DesiredState <= running }

// ended: the task stopped, for whatever reason.
func ended(t *api.Task) bool { return t.GetStatus().GetState() > running }

// placed: the task is on a node and has not stopped there.
func placed(t *api.Task) bool {
	s := t.GetStatus().GetState()
	return t.NodeId != "" && s >= assigned && s <= running
}

// notRunning: no container of the task runs, or ever will (it ended, or it
// never reached a node).
func notRunning(t *api.Task) bool {
	s := t.GetStatus().GetState()
	return s > running || s < assigned
}

// finished: the task is meant to stop and does not run: the reaper's
// candidates.
func finished(t *api.Task) bool { return t.DesiredState > running && notRunning(t) }

// failedOnItsOwn: the task ended with an error rather than by being
// stopped: what a restart attempt and a rolling update's failure count.
func failedOnItsOwn(t *api.Task) bool {
	s := t.GetStatus().GetState()
	return s == failed || s == rejected
}

// newer orders tasks by creation time, then ID: the slot's history order.
func newer(a, b *api.Task) bool {
	ca, cb := a.GetMeta().GetCreatedAt(), b.GetMeta().GetCreatedAt()
	if ca != cb {
		return ca > cb
	}
	return a.Id > b.Id
}

// sortNewestFirst sorts a slot's tasks, newest first.
func sortNewestFirst(ts []*api.Task) {
	slices.SortFunc(ts, func(a, b *api.Task) int {
		if c := cmp.Compare(b.GetMeta().GetCreatedAt(), a.GetMeta().GetCreatedAt()); c != 0 {
			return c
		}
		return cmp.Compare(b.Id, a.Id)
	})
}

// nodeLost: the node is down, removed or gone: its tasks will not report.
func nodeLost(n *api.Node) bool {
	return n == nil || n.Removed || n.GetStatus().GetState() == api.NodeState_NODE_STATE_DOWN
}

func nodeGone(n *api.Node) bool { return n == nil || n.Removed }

func drained(n *api.Node) bool {
	return n.GetSpec().GetAvailability() == api.NodeAvailability_NODE_AVAILABILITY_DRAIN
}

// mode is a service's kind of orchestration.
type mode uint8

const (
	modeNone mode = iota // no mode set: nothing to run
	modeReplicated
	modeGlobal
	modeReplicatedJob
	modeGlobalJob
)

func modeOf(svc *api.Service) mode {
	switch svc.GetSpec().GetMode().(type) {
	case *api.ServiceSpec_Replicated:
		return modeReplicated
	case *api.ServiceSpec_Global:
		return modeGlobal
	case *api.ServiceSpec_ReplicatedJob:
		return modeReplicatedJob
	case *api.ServiceSpec_GlobalJob:
		return modeGlobalJob
	}
	return modeNone
}

func (m mode) job() bool    { return m == modeReplicatedJob || m == modeGlobalJob }
func (m mode) global() bool { return m == modeGlobal || m == modeGlobalJob }

// svcCtx is what one service's reconcile works with.
type svcCtx struct {
	id   string
	svc  *api.Service // nil: deleted
	mode mode
	now  int64
	iter uint64 // jobs: the current iteration
	// svcCons are the service's placement constraints (global services
	// choose their nodes with them); consBad: they do not parse, so no
	// node is eligible.
	svcCons []api.Constraint
	consBad bool
	// clean memoizes spec comparisons by pointer: the store interns task
	// specs, so a service's tasks share a handful of spec objects.
	clean map[*api.TaskSpec]bool
}

func (o *Orchestrator) newCtx(id string, now int64) *svcCtx {
	svc := o.st.Service(id)
	c := &svcCtx{id: id, svc: svc, mode: modeOf(svc), now: now}
	if svc == nil || svc.PendingDelete {
		c.svc = nil
		c.mode = modeNone
		return c
	}
	if c.mode.global() {
		cs, err := api.ParseConstraints(svc.GetSpec().GetTask().GetPlacement().GetConstraints())
		c.svcCons, c.consBad = cs, err != nil
	}
	if c.mode.job() {
		c.iter = svc.GetJobStatus().GetJobIteration()
	}
	return c
}

// isClean reports whether t runs the service's current task spec. The
// specs are compared, not their versions: a change of replicas or of the
// update policy bumps spec_version without touching the task spec and must
// not roll any task, and a version number must not be trusted to name one
// spec forever (a rollback brings an old spec back).
func (c *svcCtx) isClean(t *api.Task) bool {
	want := c.svc.GetSpec().GetTask()
	if t.Spec == want {
		return true
	}
	if v, ok := c.clean[t.Spec]; ok {
		return v
	}
	if c.clean == nil {
		c.clean = make(map[*api.TaskSpec]bool)
	}
	v := protoEqual(t.Spec, want)
	c.clean[t.Spec] = v
	return v
}

// nodeEligible says whether a global service keeps a task on node n
// (keep) and may start one there (start). Down, removed and drained nodes
// and nodes off the service's constraints get none; a paused node, or one
// not yet READY, keeps what it runs but gets nothing new.
func (c *svcCtx) nodeEligible(n *api.Node) (keep, start bool) {
	if nodeLost(n) || drained(n) || c.consBad || !api.MatchesAll(c.svcCons, n) {
		return false, false
	}
	start = n.GetStatus().GetState() == api.NodeState_NODE_STATE_READY &&
		n.GetSpec().GetAvailability() == api.NodeAvailability_NODE_AVAILABILITY_ACTIVE
	return true, start
}

// taskFits says whether a placed replicated task may stay on node n: the
// node is not drained and still matches the task's own constraints. A
// task whose constraints do not parse is left where the scheduler put it.
func (o *Orchestrator) taskFits(t *api.Task, n *api.Node) bool {
	if drained(n) {
		return false
	}
	pl := t.GetSpec().GetPlacement()
	if len(pl.GetConstraints()) == 0 {
		return true
	}
	cs, ok := o.conCache[pl]
	if !ok {
		var err error
		if cs, err = api.ParseConstraints(pl.GetConstraints()); err != nil {
			cs = nil
		}
		if len(o.conCache) > 4096 {
			clear(o.conCache) // specs come and go; keep the cache small
		}
		o.conCache[pl] = cs
	}
	return api.MatchesAll(cs, n)
}
