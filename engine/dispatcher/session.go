package dispatcher

import (
	"slices"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/store"
)

// session is one node's connection to this dispatcher.
type session struct {
	// A heartbeat reads and writes these, and they fill the first 64
	// bytes: at 10,000 workers a session has left the cache between two
	// heartbeats, and spread over the struct they cost two misses each.
	id string
	// placeholder stands for a node the store says READY that has no
	// session with this leader yet: it only carries the node's deadline.
	placeholder bool
	closed      bool
	// The desired role of the node as the store said it at roleWrites
	// (Store.NodeWrites), when roleKnown; roleFound is false when the
	// store had no such node. Heartbeat answers carry desiredRole itself
	// (Dispatcher.rolePtr), so it is replaced when the role changes,
	// never written through.
	roleKnown, roleFound bool
	lastSeen             int64 // clock ns of the last heartbeat or session request
	roleWrites           uint64
	desiredRole          *api.NodeRole
	// seq is the sequence number of the last Assignments sent.
	seq uint64
	// bucket is the expiry bucket the session sits in.
	bucket int64

	node        string // node ID, also where messages go
	incarnation uint64
	attempt     uint64
	desc        *api.NodeDescription
	addr        string
	role        api.NodeRole

	// needFull: the next message is the whole set.
	needFull bool
	// pending holds the changes not sent yet: the newest version of each
	// changed task, nil for a task that left the set. Allocated on the
	// first change, dropped after each flush, so a quiet session costs
	// nothing.
	pending map[string]*api.Task
	dirty   bool
	// secrets and configs are what the node holds as far as this session
	// sent them (see secrets.go).
	secrets, configs refSet
}

// visibleOn returns the node a task belongs to in its node's assignment
// set, or "": a task is sent to its node from the moment the scheduler
// assigns it until it ends (ASSIGNED up to RUNNING). A task that ended
// leaves the set, and its node then removes the container.
func visibleOn(t *api.Task) string {
	if t == nil || t.NodeId == "" {
		return ""
	}
	if s := t.GetStatus().GetState(); s < api.TaskState_TASK_STATE_ASSIGNED || s >= api.TaskState_TASK_STATE_COMPLETE {
		return ""
	}
	return t.NodeId
}

// changedForAgent reports whether a task change matters to the agent that
// runs it: its desired state or its spec changed. Status changes are the
// agent's own reports coming back and are not sent. The store interns
// specs, so an unchanged spec keeps its pointer.
func changedForAgent(old, new *api.Task) bool {
	return old.DesiredState != new.DesiredState || old.Spec != new.Spec ||
		old.SpecVersion != new.SpecVersion || !slices.Equal(old.Networks, new.Networks)
}

// onEvents routes store changes to the sessions they concern. It runs
// inside Apply: it only records and Posts.
func (d *Dispatcher) onEvents(evs []store.Event) {
	if !d.running {
		return
	}
	for i := range evs {
		ev := &evs[i]
		switch ev.Kind {
		case store.KindTask:
			d.routeTask(ev)
		case store.KindNode:
			old, _ := ev.Old.(*api.Node)
			new, _ := ev.New.(*api.Node)
			if d.managersFn == nil {
				d.managers.update(old, new)
			}
			if new == nil || new.GetRemoved() {
				// Removed from the cluster: its session ends, and a new
				// one is refused.
				if s := d.sessions[ev.ID]; s != nil {
					d.closeSession(s)
				}
				continue
			}
			d.checkNode(new)
		case store.KindNone:
			if ev.Action == store.ActionRestore {
				d.onRestore()
			}
		}
	}
}

func (d *Dispatcher) routeTask(ev *store.Event) {
	old, _ := ev.Old.(*api.Task)
	new, _ := ev.New.(*api.Task)
	from, to := visibleOn(old), visibleOn(new)
	if from != "" && from != to {
		if s := d.sessions[from]; s != nil && !s.placeholder {
			d.change(s, old.Id, nil)
		}
	}
	if to == "" {
		return
	}
	if from == to && !changedForAgent(old, new) {
		return
	}
	if s := d.sessions[to]; s != nil && !s.placeholder {
		d.change(s, new.Id, new)
	}
}

// checkNode heals a node someone else wrote out of READY (a late DOWN of
// the previous leader, say) while it has a live session here.
func (d *Dispatcher) checkNode(n *api.Node) {
	if n.GetStatus().GetState() == api.NodeState_NODE_STATE_READY {
		return
	}
	s := d.sessions[n.Id]
	if s == nil || s.placeholder {
		return
	}
	if _, queued := d.nodeWrites[n.Id]; queued {
		return
	}
	d.queueNodeWrite(n.Id, nodeWrite{ready: true, desc: s.desc, addr: s.addr, role: s.role})
}

func (d *Dispatcher) onRestore() {
	d.managers.rebuild(d.st)
	ids := make([]string, 0, len(d.sessions))
	for id := range d.sessions {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if s := d.sessions[id]; !s.placeholder {
			s.needFull = true
			s.pending = nil
			d.markDirty(s)
		}
	}
}

func (d *Dispatcher) change(s *session, taskID string, t *api.Task) {
	if s.needFull {
		return // the whole set goes anyway
	}
	if s.pending == nil {
		s.pending = make(map[string]*api.Task, 4)
	}
	s.pending[taskID] = t
	d.markDirty(s)
}

func (d *Dispatcher) markDirty(s *session) {
	if s.dirty {
		return
	}
	s.dirty = true
	d.dirty = append(d.dirty, s)
	if !d.flushPosted {
		d.flushPosted = true
		gen := d.gen
		d.loop.Post(func() { d.flushAssignments(gen) })
	}
}

// flushAssignments sends every dirty session its changes, in the order
// the sessions became dirty (which follows the store's event order).
func (d *Dispatcher) flushAssignments(gen uint64) {
	if gen != d.gen {
		return
	}
	d.flushPosted = false
	dirty := d.dirty
	for i, s := range dirty {
		dirty[i] = nil
		s.dirty = false
		if s.closed || !d.running {
			continue
		}
		if s.needFull {
			d.sendFull(s)
		} else if len(s.pending) > 0 {
			d.sendIncremental(s)
		}
	}
	d.dirty = dirty[:0]
}

func (d *Dispatcher) sendFull(s *session) {
	var tasks []*api.Task
	for t := range d.st.EachTaskByNode(s.node) {
		if visibleOn(t) != "" {
			tasks = append(tasks, t)
		}
	}
	s.needFull = false
	s.pending = nil
	s.seq++
	d.stats.AssignmentsFull++
	d.stats.AssignmentTasks += uint64(len(tasks))
	m := &api.Assignments{SessionId: s.id, Seq: s.seq, Full: true, Tasks: tasks}
	d.fullRefs(s, m)
	d.tr.Send(env.NodeID(s.node), m)
}

func (d *Dispatcher) sendIncremental(s *session) {
	ids := make([]string, 0, len(s.pending))
	for id := range s.pending {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	m := &api.Assignments{SessionId: s.id}
	for _, id := range ids {
		if t := s.pending[id]; t != nil {
			m.Tasks = append(m.Tasks, t)
		} else {
			m.Removed = append(m.Removed, id)
		}
	}
	s.pending = nil
	d.diffRefs(s, m)
	s.seq++
	m.Seq = s.seq
	d.stats.AssignmentsIncr++
	d.stats.AssignmentTasks += uint64(len(m.Tasks))
	d.stats.AssignmentRemovals += uint64(len(m.Removed))
	d.tr.Send(env.NodeID(s.node), m)
}

// expiryWheel files sessions by the time their grace ends, in buckets of
// one sweep interval on a ring that spans the longest grace. A heartbeat
// only moves lastSeen; the session stays in its bucket, and when the sweep
// reaches the bucket a session whose deadline moved on is filed again
// under its new deadline. Each session is thus touched about once per
// grace, not once per heartbeat, and there is one timer in all.
type expiryWheel struct {
	gran int64 // ns per bucket
	ring [][]*session
	next int64 // the first bucket not swept yet
}

func (w *expiryWheel) init(now, gran, span int64) {
	w.gran = gran
	n := span/gran + 3
	if int64(len(w.ring)) != n {
		w.ring = make([][]*session, n)
	}
	w.next = now / gran
}

func (w *expiryWheel) reset() {
	for i := range w.ring {
		clear(w.ring[i])
		w.ring[i] = w.ring[i][:0]
	}
}

// add files s under deadline (ns). A deadline is never further than the
// ring spans.
func (w *expiryWheel) add(s *session, deadline int64) {
	b := deadline/w.gran + 1
	if b < w.next {
		b = w.next
	}
	if max := w.next + int64(len(w.ring)) - 1; b > max {
		b = max
	}
	s.bucket = b
	i := b % int64(len(w.ring))
	w.ring[i] = append(w.ring[i], s)
}

// advance visits every session in the buckets up to now. visit returns
// whether to keep the session and, if so, its new deadline.
func (w *expiryWheel) advance(now int64, visit func(*session) (bool, int64)) {
	last := now / w.gran
	for ; w.next <= last; w.next++ {
		i := w.next % int64(len(w.ring))
		list := w.ring[i]
		w.ring[i] = nil
		for j, s := range list {
			list[j] = nil
			if s.bucket != w.next {
				continue
			}
			if keep, dl := visit(s); keep {
				w.add(s, dl)
			}
		}
		if w.ring[i] == nil {
			w.ring[i] = list[:0] // reuse the bucket's array
		}
	}
}
