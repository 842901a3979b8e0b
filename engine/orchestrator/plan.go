package orchestrator

import (
	"time"

	"errors"

	"google.golang.org/protobuf/proto"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/store"
)

// A plan is what one pass decided: actions grouped by the slot (or
// service) they came from. A pass computes it from the store and the time;
// flush turns it into transactions. Keeping the decisions apart from the
// writes is what lets tests and benchmarks look at them.
type plan struct {
	acts   []action
	groups []group
	open   int            // index of the open group, or -1
	tasks  map[string]int // task ID -> index in acts of its raise or delete
	// created: slots given a new task by this plan. The store does not
	// show it yet, so a later decision of the same pass about the slot
	// (a rolling update's) must leave it alone.
	created map[slotRef]struct{}
}

type slotRef struct {
	svc string
	key slotKey
}

type opKind uint8

const (
	opCreate        opKind = iota + 1 // a new task
	opRaise                           // raise a task's desired state
	opOrphan                          // status ORPHANED
	opDelete                          // delete a task
	opService                         // rewrite the service (update or job status, rollback)
	opDeleteService                   // delete a pending_delete service without tasks
)

// statTag says which decision counter an action feeds once it commits.
type statTag uint8

const (
	tagNone statTag = iota
	tagRestart
	tagReschedule
	tagUpdateStarted
	tagUpdateCompleted
	tagUpdatePaused
	tagRollbackStarted
	tagRollbackCompleted
	tagJobIteration
	numTags
)

type action struct {
	op      opKind
	tag     statTag
	id      string        // the task's or service's ID (a new task's, drawn at plan time)
	desired api.TaskState // opCreate, opRaise
	// opCreate
	svc  *api.Service
	slot uint64
	node string
	iter uint64
	// opService: the new service given the stored one, or nil for no write
	mutate func(cur *api.Service) *api.Service
}

// group is a run of actions from one slot or one service decision; a
// group is never split between transactions, and if its transaction fails
// its origin is reconciled again.
type group struct {
	svc      string
	key      slotKey
	full     bool // failure re-reconciles the whole service
	from, to int
}

func newPlan() *plan {
	return &plan{open: -1, tasks: make(map[string]int), created: make(map[slotRef]struct{})}
}

// begin opens a group; actions go to it until end.
func (p *plan) begin(svc string, k slotKey, full bool) {
	p.end()
	p.groups = append(p.groups, group{svc: svc, key: k, full: full, from: len(p.acts), to: len(p.acts)})
	p.open = len(p.groups) - 1
}

// end closes the open group, dropping it if empty.
func (p *plan) end() {
	if p.open < 0 {
		return
	}
	g := &p.groups[p.open]
	g.to = len(p.acts)
	if g.to == g.from {
		p.groups = p.groups[:p.open]
	}
	p.open = -1
}

func (p *plan) add(a action) {
	if p.open < 0 {
		panic("orchestrator: action outside a group")
	}
	p.acts = append(p.acts, a)
}

// raise plans raising t's desired state to d. A task gets one raise per
// plan (the highest), and none once it is to be deleted.
func (p *plan) raise(t *api.Task, d api.TaskState) {
	if t.DesiredState >= d {
		return
	}
	if i, ok := p.tasks[t.Id]; ok {
		if a := &p.acts[i]; a.op == opRaise && a.desired < d {
			a.desired = d
		}
		return
	}
	p.tasks[t.Id] = len(p.acts)
	p.add(action{op: opRaise, id: t.Id, desired: d})
}

// del plans deleting t; a raise planned for it is dropped.
func (p *plan) del(t *api.Task) {
	if i, ok := p.tasks[t.Id]; ok {
		if a := &p.acts[i]; a.op == opRaise {
			a.op = opDelete
		}
		return
	}
	p.tasks[t.Id] = len(p.acts)
	p.add(action{op: opDelete, id: t.Id})
}

func (p *plan) orphan(t *api.Task) {
	if t.GetStatus().GetState() > running {
		return
	}
	p.add(action{op: opOrphan, id: t.Id})
}

// create plans a new task of svc and returns its ID.
func (o *Orchestrator) create(p *plan, svc *api.Service, k slotKey, desired api.TaskState, iter uint64, tag statTag) string {
	id := api.NewID(o.rand)
	p.add(action{op: opCreate, tag: tag, id: id, desired: desired, svc: svc, slot: k.slot, node: k.node, iter: iter})
	p.created[slotRef{svc.Id, k}] = struct{}{}
	return id
}

// ----------------------------------------------------------------- writes

// txCounts are what one transaction recorded, added to Stats once it
// applies.
type txCounts struct {
	created, shutdown, removed, promoted, orphaned, deleted, svcDeleted uint64
	tags                                                                [numTags]uint64
}

// flush proposes the plan in transactions of at most o.maxActions actions
// (whole groups), in plan order.
func (o *Orchestrator) flush(p *plan) {
	p.end()
	for start := 0; start < len(p.groups); {
		end, n := start, 0
		for end < len(p.groups) && (n == 0 || n+p.groups[end].to-p.groups[end].from <= o.maxActions) {
			n += p.groups[end].to - p.groups[end].from
			end++
		}
		o.propose(p, p.groups[start:end])
		start = end
	}
}

func (o *Orchestrator) propose(p *plan, gs []group) {
	epoch := o.epoch
	var svcs []string
	seen := make(map[string]struct{}, 4)
	for _, g := range gs {
		if _, ok := seen[g.svc]; !ok {
			seen[g.svc] = struct{}{}
			svcs = append(svcs, g.svc)
			o.state(g.svc).busy++
		}
	}
	var counts txCounts
	o.st.Update(func(tx *store.Tx) error {
		counts = o.apply(tx, p, gs)
		return nil
	}, func(err error) {
		if o.epoch != epoch {
			return // stopped, or restarted since: the answer is stale
		}
		for _, id := range svcs {
			if s := o.svcs[id]; s != nil && s.busy > 0 {
				s.busy--
				if s.busy == 0 && (s.full || len(s.slots) > 0 || s.updDirty) {
					o.pending[id] = struct{}{}
				}
			}
		}
		retryNow := true
		if err != nil {
			retryNow = o.writeFailed(p, gs, err)
		} else {
			o.committed(&counts)
		}
		if len(o.pending) > 0 {
			if retryNow {
				o.kick()
			} else {
				o.kickLater()
			}
		}
	})
}

// retryDelay is how long the orchestrator waits before writing again
// after a write failed for a reason other than a concurrent change (no
// leader, overloaded, dropped): retrying at once would spin the loop at
// one instant while the cause persists.
const retryDelay = 200 * time.Millisecond

// kickLater runs a pass after retryDelay, once however many ask.
func (o *Orchestrator) kickLater() {
	if o.retryTimer != nil || !o.running {
		return
	}
	epoch := o.epoch
	o.retryTimer = o.clock.AfterFunc(retryDelay, func() {
		o.retryTimer = nil
		if o.epoch == epoch {
			o.kick()
		}
	})
}

func (o *Orchestrator) committed(c *txCounts) {
	o.stats.Transactions++
	o.stats.TasksCreated += c.created
	o.stats.TasksShutDown += c.shutdown
	o.stats.TasksRemoved += c.removed
	o.stats.TasksPromoted += c.promoted
	o.stats.TasksOrphaned += c.orphaned
	o.stats.TasksDeleted += c.deleted
	o.stats.ServicesDeleted += c.svcDeleted
	o.stats.Restarts += c.tags[tagRestart]
	o.stats.Reschedules += c.tags[tagReschedule]
	o.stats.UpdatesStarted += c.tags[tagUpdateStarted]
	o.stats.UpdatesCompleted += c.tags[tagUpdateCompleted]
	o.stats.UpdatesPaused += c.tags[tagUpdatePaused]
	o.stats.RollbacksStarted += c.tags[tagRollbackStarted]
	o.stats.RollbacksCompleted += c.tags[tagRollbackCompleted]
	o.stats.JobIterations += c.tags[tagJobIteration]
	if o.maxActions < maxTxActions {
		o.maxActions = min(o.maxActions*2, maxTxActions)
	}
}

// writeFailed marks what a failed write was about for another reconcile
// against the store as it is now, and forgets the start times of the
// tasks it would have created. It reports whether to retry at once: after
// a conflict (someone changed what the plan read) or a write too large
// (now split finer), yes; after anything else, only after a delay.
func (o *Orchestrator) writeFailed(p *plan, gs []group, err error) bool {
	o.stats.FailedWrites++
	conflict := errors.Is(err, store.ErrSequenceConflict) || errors.Is(err, store.ErrNotExist) ||
		errors.Is(err, store.ErrExist) || errors.Is(err, store.ErrStatusRegression)
	if conflict {
		o.stats.Conflicts++
	}
	tooLarge := errors.Is(err, store.ErrProposalTooLarge)
	if conflict || tooLarge {
		o.maxActions = max(o.maxActions/2, minTxActions)
	}
	o.log.Debug("write failed; reconciling again", "groups", len(gs), "err", err)
	for _, g := range gs {
		for i := g.from; i < g.to; i++ {
			if a := &p.acts[i]; a.op == opCreate {
				delete(o.promoteAt, a.id)
			}
		}
		// Marked without a pass: the caller runs one at once or after
		// retryDelay. One at once after a write raft dropped (during a
		// leadership transfer) would propose again at the same instant,
		// forever, and the transfer would never get the time to finish.
		if g.full {
			o.noteFull(g.svc)
		} else {
			o.noteSlot(g.svc, g.key)
		}
	}
	return conflict || tooLarge
}

// apply records the actions of gs in tx. Each action re-reads its target
// through tx and is skipped when it no longer applies, so a plan is safe to
// run against a store that moved since it was made (by an earlier
// transaction of the same flush, applied synchronously).
func (o *Orchestrator) apply(tx *store.Tx, p *plan, gs []group) txCounts {
	var c txCounts
	ts := tx.Timestamp()
	var created *api.TaskStatus // shared by the tasks this transaction creates
	for _, g := range gs {
		for i := g.from; i < g.to; i++ {
			a := &p.acts[i]
			var err error
			switch a.op {
			case opCreate:
				if created == nil {
					created = &api.TaskStatus{State: api.TaskState_TASK_STATE_NEW, Timestamp: ts, Message: "created"}
				}
				svc := a.svc
				err = tx.Create(&api.Task{
					Id: a.id, ServiceId: svc.Id, ServiceName: svc.GetSpec().GetName(),
					Slot: a.slot, NodeId: a.node,
					Spec: svc.GetSpec().GetTask(), SpecVersion: svc.SpecVersion,
					DesiredState: a.desired, Status: created, JobIteration: a.iter,
				})
				if err == nil {
					c.created++
				}
			case opRaise:
				cur := tx.Task(a.id)
				if cur == nil || cur.DesiredState >= a.desired {
					continue
				}
				n := cur.ShallowCopy()
				n.DesiredState = a.desired
				if err = tx.Update(n); err == nil {
					switch a.desired {
					case running:
						c.promoted++
					case shutdown:
						c.shutdown++
					case remove:
						c.removed++
					}
				}
			case opOrphan:
				cur := tx.Task(a.id)
				if cur == nil || cur.GetStatus().GetState() > running {
					continue
				}
				err = tx.UpdateTaskStatus(a.id, &api.TaskStatus{
					State: api.TaskState_TASK_STATE_ORPHANED, Timestamp: ts,
					Message: "node removed", Err: "the task's node left the cluster",
				})
				if err == nil {
					c.orphaned++
				}
			case opDelete:
				if tx.Task(a.id) == nil {
					continue
				}
				if err = tx.Delete(store.KindTask, a.id, 0); err == nil {
					c.deleted++
				}
			case opService:
				cur := tx.Service(a.id)
				if cur == nil {
					continue
				}
				n := a.mutate(cur)
				if n == nil {
					continue
				}
				err = tx.Update(n)
			case opDeleteService:
				cur := tx.Service(a.id)
				if cur == nil || !cur.PendingDelete || o.st.CountTasksByService(a.id) > 0 {
					continue
				}
				if err = tx.Delete(store.KindService, a.id, cur.GetMeta().GetVersion()); err == nil {
					c.svcDeleted++
				}
			}
			if err != nil {
				// The store refused one action at once (it would fail the
				// proposal); leave it out and look at its slot again.
				o.log.Debug("action skipped", "op", a.op, "id", a.id, "err", err)
				if g.full {
					o.markFull(g.svc)
				} else {
					o.markSlot(g.svc, g.key)
				}
				continue
			}
			c.tags[a.tag]++
		}
	}
	return c
}

func protoEqual(a, b proto.Message) bool { return proto.Equal(a, b) }
