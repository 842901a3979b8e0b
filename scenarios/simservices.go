package scenarios

import (
	"errors"
	"fmt"
	"slices"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/controlapi"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/manager"
	"github.com/swarmsim/swarmsim/engine/raft"
	"github.com/swarmsim/swarmsim/engine/store"
	"github.com/swarmsim/swarmsim/sim"
	"github.com/swarmsim/swarmsim/sim/cluster"
	"google.golang.org/protobuf/proto"
)

// Service, secret, config and node steps go through the control API of
// the leader, as `docker service ...` goes through a manager. A call made
// while no leader is known waits for one; a call the leader could not
// finish because it lost leadership is retried on the next leader.

// leaderCall runs call on the leader's loop once there is a leader, and
// again on the next leader while it fails only because leadership moved
// before anything applied. A failure that leaves in doubt whether the call
// applied (the proposal may still commit) ends it: leaderRetry is for the
// calls that can tell.
func (w *SimWorld) leaderCall(call func(mgr *manager.Manager, done func(error)), done func(error)) {
	w.callLeader(false, func(mgr *manager.Manager, _ bool, d func(error)) { call(mgr, d) }, done)
}

// leaderRetry is leaderCall for the steps a careful client asks again
// after an ambiguous failure too, as the real world does: retried tells
// call that an earlier attempt may have applied, so that it looks before
// acting again (a create that finds its name taken, a remove that finds
// nothing, an update that finds its spec in place is done).
func (w *SimWorld) leaderRetry(call func(mgr *manager.Manager, retried bool, done func(error)), done func(error)) {
	w.callLeader(true, call, done)
}

func (w *SimWorld) callLeader(resolve bool, call func(mgr *manager.Manager, retried bool, done func(error)), done func(error)) {
	retried := false
	var try func()
	try = func() {
		lm, ok := w.c.Leader()
		if !ok || lm.Engine == nil || lm.Engine.Manager() == nil {
			w.k.Schedule(pollEvery, sim.KindStep, try)
			return
		}
		mgr := lm.Engine.Manager()
		lm.Kernel.Post(func() {
			call(mgr, retried, func(err error) {
				switch {
				case err == nil:
					done(nil)
				case retriable(err):
					w.k.Schedule(pollEvery, sim.KindStep, try)
				case resolve && ambiguous(err):
					retried = true
					w.k.Schedule(pollEvery, sim.KindStep, try)
				default:
					done(err)
				}
			})
		})
	}
	try()
}

// retriable reports whether a control API call failed only because
// leadership moved, so that nothing applied and asking the next leader is
// safe.
func retriable(err error) bool {
	return errors.Is(err, raft.ErrNoLeader) || errors.Is(err, raft.ErrProposalDropped) || errors.Is(err, raft.ErrNotLeader)
}

// ambiguous reports whether a call failed without saying whether its
// write applied: leadership was lost or the manager stopped while the
// proposal was in flight, or it timed out.
func ambiguous(err error) bool {
	return errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrTimeout) || errors.Is(err, raft.ErrStopped)
}

// doneIf is err, or nil when an earlier attempt may have applied
// (retried) and err is what that attempt having applied looks like.
func doneIf(err error, retried bool, applied error) error {
	if retried && errors.Is(err, applied) {
		return nil
	}
	return err
}

func (w *SimWorld) secretCall(s Secret) func(func(error)) {
	return func(done func(error)) {
		w.leaderRetry(func(mgr *manager.Manager, retried bool, done func(error)) {
			mgr.Control().CreateSecret(&api.SecretSpec{Name: s.Name, Data: []byte(s.Data)}, func(_ *api.Secret, err error) {
				done(doneIf(err, retried, store.ErrNameConflict))
			})
		}, done)
	}
}

func (w *SimWorld) configCall(c Config) func(func(error)) {
	return func(done func(error)) {
		w.leaderRetry(func(mgr *manager.Manager, retried bool, done func(error)) {
			mgr.Control().CreateConfig(&api.ConfigSpec{Name: c.Name, Data: []byte(c.Data)}, func(_ *api.Config, err error) {
				done(doneIf(err, retried, store.ErrNameConflict))
			})
		}, done)
	}
}

func (w *SimWorld) createCall(svc Service) func(func(error)) {
	return func(done func(error)) {
		w.leaderRetry(func(mgr *manager.Manager, retried bool, done func(error)) {
			mgr.Control().CreateService(ServiceSpec(svc), func(_ *api.Service, err error) {
				err = doneIf(err, retried, store.ErrNameConflict)
				if err == nil {
					w.specs[svc.Name] = svc
				}
				done(err)
			})
		}, done)
	}
}

// applyService performs the service, secret, config and node-availability
// steps. It reports false for actions it does not handle.
func (w *SimWorld) applyService(a Action, targets []string, done func(error)) bool {
	// Every call here is safe to ask again once it looked at what an
	// ambiguous earlier attempt left (retried).
	ctl := func(call func(c *controlapi.Server, retried bool, done func(error))) {
		w.leaderRetry(func(mgr *manager.Manager, retried bool, done func(error)) { call(mgr.Control(), retried, done) }, done)
	}
	// Node edits set a state: asking again is the same edit.
	nodes := func(call func(c *controlapi.Server, name string, done func(error))) {
		var next func(i int)
		next = func(i int) {
			if i == len(targets) {
				done(nil)
				return
			}
			w.leaderRetry(func(mgr *manager.Manager, _ bool, d func(error)) { call(mgr.Control(), targets[i], d) }, func(err error) {
				if err != nil {
					done(fmt.Errorf("%s: %w", targets[i], err))
					return
				}
				next(i + 1)
			})
		}
		next(0)
	}
	switch a := a.(type) {
	case Create:
		w.createCall(a.Service)(done)
	case Remove:
		ctl(func(c *controlapi.Server, retried bool, done func(error)) {
			c.RemoveService(a.Service, func(err error) { done(doneIf(err, retried, controlapi.ErrNotFound)) })
		})
	case Scale:
		// Scaling sets the replica count: asking again is the same write.
		ctl(func(c *controlapi.Server, _ bool, done func(error)) {
			c.ScaleService(a.Service, uint64(a.Replicas), func(_ *api.Service, err error) {
				if err == nil {
					svc := w.specs[a.Service]
					svc.Replicas = a.Replicas
					w.specs[a.Service] = svc
				}
				done(err)
			})
		})
	case Update:
		ctl(func(c *controlapi.Server, retried bool, done func(error)) {
			cur, err := c.GetService(a.Service)
			if err != nil {
				done(err)
				return
			}
			svc := w.specs[a.Service]
			a.Apply(&svc)
			spec := ServiceSpec(svc)
			if retried && proto.Equal(cur.GetSpec(), spec) {
				w.specs[a.Service] = svc
				done(nil)
				return
			}
			c.UpdateService(a.Service, cur.GetMeta().GetVersion(), spec, func(_ *api.Service, err error) {
				if err == nil {
					w.specs[a.Service] = svc
				}
				done(err)
			})
		})
	case Rollback:
		var g rollbackGuard
		ctl(func(c *controlapi.Server, retried bool, done func(error)) {
			cur, err := c.GetService(a.Service)
			if err != nil {
				done(err)
				return
			}
			if g.applied(cur, retried) {
				done(nil)
				return
			}
			c.RollbackService(a.Service, func(_ *api.Service, err error) { done(err) })
		})
	case Secret:
		w.secretCall(a)(done)
	case Config:
		w.configCall(a)(done)
	case Drain:
		nodes(func(c *controlapi.Server, n string, done func(error)) {
			c.DrainNode(n, func(_ *api.Node, err error) { done(err) })
		})
	case Pause:
		nodes(func(c *controlapi.Server, n string, done func(error)) {
			c.PauseNode(n, func(_ *api.Node, err error) { done(err) })
		})
	case Activate:
		nodes(func(c *controlapi.Server, n string, done func(error)) {
			c.ActivateNode(n, func(_ *api.Node, err error) { done(err) })
		})
	case FailTasks:
		done(w.failTasks(a))
	case Promote:
		// The step finishes when every promoted node votes in raft.
		nodes(func(c *controlapi.Server, n string, done func(error)) {
			c.PromoteNode(n, func(_ *api.Node, err error) {
				if err != nil {
					done(err)
					return
				}
				w.waitMembership(n, true, done)
			})
		})
	case Demote:
		// The step finishes when every demoted node is out of raft.
		nodes(func(c *controlapi.Server, n string, done func(error)) {
			c.DemoteNode(n, func(_ *api.Node, err error) {
				if err != nil {
					done(err)
					return
				}
				w.waitMembership(n, false, done)
			})
		})
	default:
		return false
	}
	return true
}

// waitMembership calls done once the leader's raft membership has name as
// a voter (voter true) or not at all (voter false).
func (w *SimWorld) waitMembership(name string, voter bool, done func(error)) {
	var poll func()
	poll = func() {
		if lm := w.leaderManager(); lm != nil {
			mb, ok := lm.Raft().MemberByNode(env.NodeID(name))
			if voter && ok && !mb.Learner || !voter && !ok {
				done(nil)
				return
			}
		}
		w.k.Schedule(pollEvery, sim.KindStep, poll)
	}
	poll()
}

// failTasks makes count running containers of the service exit with an
// error, chosen by the seed among every running one.
func (w *SimWorld) failTasks(a FailTasks) error {
	svc := w.check.shadow.ServiceByName(a.Service)
	if svc == nil {
		return fmt.Errorf("no service %q", a.Service)
	}
	type victim struct {
		m    *cluster.Machine
		task string
	}
	var running []victim
	for t := range w.check.shadow.EachTaskByService(svc.GetId()) {
		m := w.c.Machine(w.nodeName(t.GetNodeId()))
		if m != nil && m.Status == cluster.NodeUp && m.Executor.IsRunning(t.GetId()) {
			running = append(running, victim{m, t.GetId()})
		}
	}
	if len(running) < a.Count {
		return fmt.Errorf("service %s has %d running containers, fewer than %d to fail", a.Service, len(running), a.Count)
	}
	for i := 0; i < a.Count; i++ {
		j := int(w.chooser.Int63n(int64(len(running))))
		v := running[j]
		running = slices.Delete(running, j, j+1)
		v.m.Executor.Kill(v.task, 1)
	}
	return nil
}

// nodeName maps a store node ID to its machine's name. Nodes register
// under their machine's name in the simulator.
func (w *SimWorld) nodeName(id string) string {
	if n := w.check.shadow.Node(id); n != nil {
		return n.GetDescription().GetHostname()
	}
	return id
}

// holdsService evaluates the service conditions on the committed state.
func (w *SimWorld) holdsService(c Condition) (bool, string, bool) {
	st := w.check.shadow
	switch c := c.(type) {
	case Running:
		svc := st.ServiceByName(c.Service)
		if svc == nil {
			return c.N == 0, "no such service", true
		}
		n := 0
		if c.Image == "" && c.On == nil {
			n = w.check.running(svc.GetId())
		} else {
			for t := range st.EachTaskByService(svc.GetId()) {
				if countsAsRunning(t) && w.taskMatches(t, c.Image, c.On) {
					n++
				}
			}
		}
		return n == c.N, fmt.Sprintf("%d running", n), true
	case Completed:
		svc := st.ServiceByName(c.Service)
		if svc == nil {
			return c.N == 0, "no such service", true
		}
		// A completion counts once per slot (per node for a global job):
		// a task replaced while its node was unreachable may still report
		// its own completion later, and the job does not run that slot
		// twice.
		done := map[string]bool{}
		for t := range st.EachTaskByService(svc.GetId()) {
			if t.GetStatus().GetState() == api.TaskState_TASK_STATE_COMPLETE && w.taskMatches(t, c.Image, c.On) {
				key := t.GetNodeId()
				if svc.GetSpec().GetReplicatedJob() != nil {
					key = fmt.Sprint(t.GetSlot())
				}
				done[key] = true
			}
		}
		return len(done) == c.N, fmt.Sprintf("%d completed", len(done)), true
	case Converged:
		for svc := range st.EachService() {
			ok, what := w.serviceConverged(svc)
			if !ok {
				return false, svc.GetSpec().GetName() + ": " + what, true
			}
		}
		return true, "", true
	}
	return false, "", false
}

func (w *SimWorld) taskMatches(t *api.Task, image string, on *Constraint) bool {
	if image != "" && t.GetSpec().GetContainer().GetImage() != image {
		return false
	}
	if on != nil {
		con, err := api.ParseConstraint(on.String())
		if err != nil || !con.Matches(w.check.shadow.Node(t.GetNodeId())) {
			return false
		}
	}
	return true
}

// serviceConverged reports whether a service runs what its spec asks for:
// every replica (or one task per eligible node) running at the current
// spec version, or a job's completions done.
func (w *SimWorld) serviceConverged(svc *api.Service) (bool, string) {
	st := w.check.shadow
	spec := svc.GetSpec()
	current := 0
	// A task is current when it runs the service's task spec. Tasks that
	// share a spec share one object in the store, so most compare by
	// pointer; the rest are compared once per distinct spec.
	want := spec.GetTask()
	same := map[*api.TaskSpec]bool{want: true}
	isCurrent := func(t *api.Task) bool {
		eq, ok := same[t.GetSpec()]
		if !ok {
			eq = proto.Equal(t.GetSpec(), want)
			same[t.GetSpec()] = eq
		}
		return eq
	}
	for t := range st.EachTaskByService(svc.GetId()) {
		if countsAsRunning(t) && isCurrent(t) {
			current++
		}
	}
	switch {
	case spec.GetReplicated() != nil:
		want := int(spec.GetReplicated().GetReplicas())
		return current == want && w.check.running(svc.GetId()) == want, fmt.Sprintf("%d of %d running at the current spec", current, want)
	case spec.GetGlobal() != nil:
		want := w.eligibleNodes(spec)
		return current == want, fmt.Sprintf("%d of %d nodes run it", current, want)
	case spec.GetReplicatedJob() != nil:
		done := 0
		for t := range st.EachTaskByService(svc.GetId()) {
			if t.GetStatus().GetState() == api.TaskState_TASK_STATE_COMPLETE && isCurrent(t) {
				done++
			}
		}
		want := int(spec.GetReplicatedJob().GetTotalCompletions())
		return done >= want, fmt.Sprintf("%d of %d completed", done, want)
	}
	return true, ""
}

// eligibleNodes counts the nodes a global service should run on.
func (w *SimWorld) eligibleNodes(spec *api.ServiceSpec) int {
	cons, _ := api.ParseConstraints(spec.GetTask().GetPlacement().GetConstraints())
	n := 0
	for nd := range w.check.shadow.EachNode() {
		if nd.GetRemoved() || nd.GetStatus().GetState() != api.NodeState_NODE_STATE_READY ||
			nd.GetSpec().GetAvailability() != api.NodeAvailability_NODE_AVAILABILITY_ACTIVE {
			continue
		}
		if api.MatchesAll(cons, nd) {
			n++
		}
	}
	return n
}
