package scenarios

import (
	"fmt"
	"hash/maphash"
	"time"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/raft"
	"github.com/swarmsim/swarmsim/engine/store"
)

// checker stands outside the code under test and sees every event a
// checker needs: each manager's applied raft entries and state changes,
// and every container that starts or stops on any machine. From the
// committed entries it rebuilds its own copy of the store (the "shadow"),
// so expectations and invariants read the committed state whoever leads,
// and even while nobody does.
type checker struct {
	now     func() time.Duration
	enabled map[Invariant]bool
	broken  *Violation

	// one-leader-per-term
	leaders map[uint64]env.NodeID
	// committed-stays-committed: what index i held when first applied,
	// its data hashed with seed (only ever compared, never shown, so a
	// seed of its own per run changes no output).
	entries []entryDigest
	seed    maphash.Seed

	shadow *store.Store
	// services' running tasks, counted incrementally from the shadow's
	// watch: tasks the cluster reports RUNNING and still wants running.
	services map[string]*serviceCount

	// task-on-one-node
	runningOn map[string]env.NodeID
}

type entryDigest struct {
	term uint64
	hash uint64
	typ  env.EntryType
	node env.NodeID // who applied it first, for messages
}

type serviceCount struct {
	running int
	// bound is the most running tasks allowed: replicas plus update
	// parallelism, held at its old value after a scale-down until the
	// excess tasks have stopped.
	bound      int
	replicated bool
}

func newChecker(now func() time.Duration, checks []Invariant, clock env.Clock) *checker {
	c := &checker{
		seed:      maphash.MakeSeed(),
		now:       now,
		enabled:   map[Invariant]bool{},
		leaders:   map[uint64]env.NodeID{},
		shadow:    store.New(clock),
		services:  map[string]*serviceCount{},
		runningOn: map[string]env.NodeID{},
	}
	for _, inv := range checks {
		c.enabled[inv] = true
	}
	c.shadow.Watch(c.storeChanged)
	return c
}

func (c *checker) violate(inv Invariant, format string, args ...any) {
	if c.broken == nil && c.enabled[inv] {
		c.broken = &Violation{Invariant: inv, At: c.now(), Detail: fmt.Sprintf(format, args...)}
	}
}

// ---- raft.Observer

func (c *checker) EntryApplied(e raft.AppliedEntry) {
	d := entryDigest{term: e.Term, hash: maphash.Bytes(c.seed, e.Data), typ: e.Type, node: e.Node}
	switch {
	case e.Index == 0:
		return
	case e.Index <= uint64(len(c.entries)):
		have := c.entries[e.Index-1]
		if have.term != d.term || have.hash != d.hash || have.typ != d.typ {
			c.violate(CommittedStaysCommitted,
				"%s applied a different entry at index %d (term %d) than %s did (term %d)",
				e.Node, e.Index, e.Term, have.node, have.term)
		}
		return
	case e.Index > uint64(len(c.entries))+1:
		c.violate(CommittedStaysCommitted,
			"%s applied index %d before any manager applied index %d", e.Node, e.Index, len(c.entries)+1)
		return
	}
	c.entries = append(c.entries, d)
	if e.Type != env.EntryNormal {
		return
	}
	props, err := raft.EntryProposals(e.Data)
	if err != nil {
		c.violate(CommittedStaysCommitted, "entry %d does not decode: %v", e.Index, err)
		return
	}
	for _, p := range props {
		if _, err := c.shadow.Apply(e.Index, p, nil); err != nil {
			c.violate(CommittedStaysCommitted, "entry %d holds a proposal the store cannot decode: %v", e.Index, err)
		}
	}
}

func (c *checker) StateChanged(s raft.StateChange) {
	if s.Role != raft.RoleLeader {
		return
	}
	if prev, ok := c.leaders[s.Term]; ok && prev != s.Node {
		c.violate(OneLeaderPerTerm, "%s and %s were both leader in term %d", prev, s.Node, s.Term)
		return
	}
	c.leaders[s.Term] = s.Node
}

func (c *checker) SnapshotRestored(env.NodeID, uint64, uint64) {}

// ---- containers

// containerChanged hears every container that starts or stops running on
// any machine.
func (c *checker) containerChanged(node env.NodeID, taskID string, running bool) {
	if !running {
		if c.runningOn[taskID] == node {
			delete(c.runningOn, taskID)
		}
		return
	}
	if other, ok := c.runningOn[taskID]; ok && other != node {
		c.violate(TaskOnOneNode, "task %s runs on %s and %s at once", taskID, other, node)
	}
	c.runningOn[taskID] = node
}

// ---- the shadow store

// countsAsRunning is a task the cluster reports running and still wants
// running.
func countsAsRunning(t *api.Task) bool {
	return t != nil && t.GetStatus().GetState() == api.TaskState_TASK_STATE_RUNNING &&
		t.GetDesiredState() <= api.TaskState_TASK_STATE_RUNNING
}

func (c *checker) storeChanged(events []store.Event) {
	for _, ev := range events {
		switch ev.Kind {
		case store.KindNone: // the shadow is never restored; nothing to do
		case store.KindService:
			c.serviceChanged(ev)
		case store.KindTask:
			c.taskChanged(ev)
		}
	}
	if c.broken != nil || !c.enabled[ReplicasBounded] {
		return
	}
	worst := ""
	for id, sc := range c.services {
		if sc.replicated && sc.running > sc.bound && (worst == "" || id < worst) {
			worst = id // the smallest ID, so the message does not depend on map order
		}
	}
	if worst != "" {
		sc, svc := c.services[worst], c.shadow.Service(worst)
		c.violate(ReplicasBounded, "service %s has %d tasks running; replicas %d + update parallelism allow %d",
			svc.GetSpec().GetName(), sc.running, svc.GetSpec().GetReplicated().GetReplicas(), sc.bound)
	}
}

func (c *checker) serviceChanged(ev store.Event) {
	if ev.Action == store.ActionDelete {
		delete(c.services, ev.ID)
		return
	}
	svc := ev.New.(*api.Service)
	sc := c.services[ev.ID]
	if sc == nil {
		sc = &serviceCount{}
		c.services[ev.ID] = sc
	}
	spec := svc.GetSpec()
	sc.replicated = spec.GetReplicated() != nil
	bound := replicaBound(spec)
	if bound < sc.bound && sc.running > bound {
		// A scale-down: the excess tasks stop one by one; the old bound
		// holds until they have.
		return
	}
	sc.bound = bound
}

// replicaBound is how many of a replicated service's tasks may count as
// running at once: its replicas, plus what one step of an update may start
// before it stops the tasks it replaces.
func replicaBound(spec *api.ServiceSpec) int {
	replicas := int(spec.GetReplicated().GetReplicas())
	if p := spec.GetUpdate().GetParallelism(); p > 0 {
		return replicas + int(p)
	}
	// Parallelism 0 updates every task at once: start-first may double
	// the service.
	return 2 * replicas
}

func (c *checker) taskChanged(ev store.Event) {
	var old, cur *api.Task
	if ev.Old != nil {
		old = ev.Old.(*api.Task)
	}
	if ev.New != nil {
		cur = ev.New.(*api.Task)
	}
	was, is := countsAsRunning(old), countsAsRunning(cur)
	if was == is {
		return
	}
	id := old.GetServiceId()
	if cur != nil {
		id = cur.GetServiceId()
	}
	sc := c.services[id]
	if sc == nil {
		sc = &serviceCount{bound: 1 << 30}
		c.services[id] = sc
	}
	if is {
		sc.running++
	} else {
		sc.running--
	}
	if svc := c.shadow.Service(id); svc != nil && sc.running <= sc.bound {
		// Refresh a bound held by a scale-down.
		c.serviceChanged(store.Event{Action: store.ActionUpdate, Kind: store.KindService, ID: id, New: svc})
	}
}

// running is the number of the service's tasks that count as running.
func (c *checker) running(serviceID string) int {
	if sc := c.services[serviceID]; sc != nil {
		return sc.running
	}
	return 0
}
