package scheduler

import (
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/store"
)

// DefaultMaxBatch bounds the actions of one proposal. 10,000 assignments
// encode to about 600 KB: large enough that a big deployment commits in a
// few entries, small enough that raft replicates each one quickly.
const DefaultMaxBatch = 10000

// retryDelay is how long tasks whose proposal failed (leadership lost, a
// proposal refused) wait before they are tried again, so that a proposer
// that keeps failing does not make the scheduler spin.
const retryDelay = time.Second

// RetryInterval is the least time between two retries of the tasks that
// fit nowhere. Capacity changes with every task that ends; in a big busy
// cluster, retrying thousands of waiting tasks after each would keep the
// leader's loop busy for nothing. New tasks do not wait for it.
const RetryInterval = 100 * time.Millisecond

// assignedMessage is the status message of a pre-placed task the scheduler
// accepted; the store writes the same one for AssignTask.
const assignedMessage = "assigned"

// Scheduler places pending tasks on nodes. It runs on the leader only,
// between Start and Stop, on the node's loop.
type Scheduler struct {
	st       *store.Store
	loop     env.Loop
	clock    env.Clock
	log      *slog.Logger
	maxBatch int

	running     bool
	epoch       uint64 // changes at Start, Stop and Restore: older callbacks are ignored
	cancelWatch func()
	turnPosted  bool
	retryTimer  env.Timer

	// The view.
	nodes      map[string]*nodeInfo
	order      []*nodeInfo // nodes that may take tasks, in ID order
	orderDirty bool        // order must be rebuilt: a node left or was removed
	orderAdded []*nodeInfo // nodes that became candidates since order was built
	freeIdx    []int32
	nextIdx    int32
	gen        uint64
	services   map[string]*serviceInfo

	// live counts the schedulable tasks the scheduler tracks: queued,
	// waiting for capacity, or with a write in flight. Finding one by
	// ID takes the index tasks, which is built only when first needed
	// (see lookup): until then the tracked tasks are listed in unindexed.
	// Both may hold tasks forgotten since (gone): see forget.
	live      int
	tasks     map[string]*ptask
	indexed   bool
	unindexed []*ptask
	queue     []*ptask
	waiting   []*ptask // may hold stale entries (waiting false): skipped
	nWaiting  int
	inflight  int
	// capEpoch counts capacity changes (a node joined or changed, a task
	// released resources); waiting tasks are retried once it moves past
	// retryEpoch, the value at the last retry.
	capEpoch, retryEpoch uint64
	lastRetry            int64 // clock time of the last retry, Unix ns
	nextBatch            uint64
	// flight holds the proposals in flight, oldest first: their events
	// mostly arrive in the order their writes were proposed, which lets
	// lookup find a task without hashing its ID.
	flight []*batch
	slab   []ptask

	// Scratch reused from one turn to the next.
	work    []*ptask
	assign  []decision // compact writes: assignments
	updates []decision // full task updates: pending reasons
	turnBuf turnScratch

	stats Stats

	// simple turns the fast paths off (lookup by cursor, lazy forgetting,
	// level-wise fill), for tests that compare them with the plain ones.
	simple bool
	// sweepMin is the least number of stale task entries worth a sweep
	// (minSweep; tests lower it).
	sweepMin int
}

// ptask is a schedulable task the scheduler tracks.
type ptask struct {
	t       *api.Task // latest stored version
	queued  bool
	waiting bool
	gone    bool // no longer schedulable; stale list entries skip it
	// batch is the proposal carrying a write for the task, 0 if none.
	// node is the node of an in-flight assignment (nil for a pending
	// reason write), which holds a reservation for the task.
	batch uint64
	pos   int32 // the task's index in its batch's items
	node  *nodeInfo
	// tried is capEpoch when the task was last left pending.
	tried uint64
}

// decision is one write a turn decided.
type decision struct {
	pt     *ptask
	node   *nodeInfo // nil: a pending reason write
	reason string
}

// batch is one proposal of decisions.
type batch struct {
	id      uint64
	items   []*ptask
	next    int // items[next] is the task whose event lookup expects next
	written int // actions recorded
	// assignments: a proposal of compact assignments, counted in
	// Stats.Batches.
	assignments bool
}

// New returns a stopped scheduler over st. It proposes through st, posts
// its turns to loop and reads time from clock; log may be nil.
func New(st *store.Store, loop env.Loop, clock env.Clock, log *slog.Logger) *Scheduler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{st: st, loop: loop, clock: clock, log: log, maxBatch: DefaultMaxBatch, sweepMin: minSweep}
}

// SetMaxBatch bounds the actions of one proposal; n <= 0 restores
// DefaultMaxBatch.
func (s *Scheduler) SetMaxBatch(n int) {
	if n <= 0 {
		n = DefaultMaxBatch
	}
	s.maxBatch = n
}

// Start makes the scheduler active: it reads the whole store, watches it,
// and schedules what is pending on the next turn of the loop. Starting a
// started scheduler does nothing.
func (s *Scheduler) Start() {
	if s.running {
		return
	}
	s.running = true
	s.rebuild()
	s.cancelWatch = s.st.WatchKinds(store.KindSetOf(store.KindTask, store.KindNode, store.KindService), s.onEvents)
}

// Stop makes the scheduler inactive: it stops watching, cancels its timer,
// forgets its view and ignores the callbacks of proposals still in flight.
// It starts no write afterwards.
func (s *Scheduler) Stop() {
	if !s.running {
		return
	}
	s.running = false
	if s.cancelWatch != nil {
		s.cancelWatch()
		s.cancelWatch = nil
	}
	s.reset()
}

// Stats returns the counters and gauges.
func (s *Scheduler) Stats() Stats {
	st := s.stats
	st.Queued = len(s.queue)
	st.Waiting = s.nWaiting
	st.InFlight = s.inflight
	st.Nodes = len(s.order)
	if s.orderDirty || len(s.orderAdded) > 0 {
		st.Nodes = 0
		for _, n := range s.nodes {
			if n.availability() != filterGone {
				st.Nodes++
			}
		}
	}
	return st
}

// reset drops the view and makes every callback of the previous epoch a
// no-op.
func (s *Scheduler) reset() {
	s.epoch++
	if s.retryTimer != nil {
		s.retryTimer.Stop()
		s.retryTimer = nil
	}
	s.turnPosted = false
	s.nodes = make(map[string]*nodeInfo)
	s.order = nil
	s.orderDirty = false
	s.orderAdded = nil
	s.freeIdx = nil
	s.nextIdx = 0
	s.services = make(map[string]*serviceInfo)
	s.tasks = make(map[string]*ptask)
	s.live, s.indexed, s.unindexed = 0, s.simple, nil
	s.queue, s.waiting, s.work = nil, nil, nil
	s.nWaiting, s.inflight = 0, 0
	s.capEpoch, s.retryEpoch = 0, 0
	s.lastRetry = math.MinInt64
	s.slab = nil
	s.flight = nil
	s.assign, s.updates = nil, nil
	s.turnBuf = turnScratch{}
}

// rebuild reads the view from the store: at Start, and after a Restore
// replaced the store's content.
func (s *Scheduler) rebuild() {
	s.reset()
	for n := range s.st.EachNode() {
		s.onNode(n.Id, nil, n)
	}
	for t := range s.st.EachTask() {
		if reserves(t) {
			s.account(t, s.nodeRef(t.NodeId), 1)
		}
		if schedulable(t) {
			s.track(t)
		}
	}
	s.kick()
}

// kick posts a turn if there is work and none is posted.
func (s *Scheduler) kick() {
	if !s.running || s.turnPosted {
		return
	}
	if len(s.queue) == 0 && !s.retryDue(s.clock.Now().UnixNano()) {
		return
	}
	s.turnPosted = true
	ep := s.epoch
	s.loop.Post(func() {
		if s.epoch == ep && s.running {
			s.turn()
		}
	})
}

// ---------------------------------------------------------------- events

func (s *Scheduler) onEvents(evs []store.Event) {
	for i := range evs {
		e := &evs[i]
		switch e.Kind {
		case store.KindTask:
			old, _ := e.Old.(*api.Task)
			nw, _ := e.New.(*api.Task)
			s.onTask(e.ID, old, nw)
		case store.KindNode:
			old, _ := e.Old.(*api.Node)
			nw, _ := e.New.(*api.Node)
			s.onNode(e.ID, old, nw)
		case store.KindService:
			if e.Action == store.ActionDelete {
				s.onServiceDeleted(e.ID)
			}
		case store.KindNone:
			if e.Action == store.ActionRestore {
				s.rebuild()
				return
			}
		}
	}
	s.kick()
}

func (s *Scheduler) onTask(id string, old, nw *api.Task) {
	pt := s.lookup(id, old)
	wasInFlight, wasReason, taken := false, false, false
	if pt != nil && pt.batch != 0 {
		wasInFlight, wasReason = true, pt.node == nil
		pt.batch = 0
		s.inflight--
		if n := pt.node; n != nil {
			pt.node = nil
			if reserves(nw) && nw.NodeId == n.id && sameFootprint(pt.t, nw) {
				// Our assignment took: its in-flight reservation is now
				// the task's own.
				taken = true
				s.stats.Assigned++
			} else {
				s.account(pt.t, n, -1)
				s.capacityChanged()
				s.stats.Skipped++
			}
		}
	}
	switch {
	case taken:
		if reserves(old) { // not expected: the task was pending
			s.account(old, s.nodeRef(old.NodeId), -1)
			s.capacityChanged()
		}
	case reserves(old) && reserves(nw) && old.NodeId == nw.NodeId && sameFootprint(old, nw):
		// The hot path of status reports: nothing moves.
	default:
		if reserves(old) {
			s.account(old, s.nodeRef(old.NodeId), -1)
			s.capacityChanged()
		}
		if reserves(nw) {
			s.account(nw, s.nodeRef(nw.NodeId), 1)
		}
	}
	if failed(old, nw) {
		if n := s.nodes[nw.NodeId]; n != nil && n.n != nil {
			s.service(nw.ServiceId).recordFailure(n, s.clock.Now().UnixNano())
		}
	}

	if !schedulable(nw) {
		if pt != nil {
			s.forget(pt)
		}
		return
	}
	if pt == nil {
		s.track(nw)
		return
	}
	same := samePlacementInput(pt.t, nw)
	pt.t = nw
	switch {
	case !same:
		s.enqueue(pt)
	case wasReason:
		// Our pending reason landed: back to waiting, unless capacity
		// changed since the decision.
		if pt.tried != s.capEpoch {
			s.enqueue(pt)
		} else {
			s.wait(pt)
		}
	case wasInFlight:
		s.enqueue(pt)
	}
}

// lookup returns the tracked task called id, or nil; old is the task as
// it was before the change being handled, which is the version the
// scheduler last saw: a tracked task's ptask holds it.
//
// At 100k nodes a million tasks are tracked, and finding one in a map
// keyed by ID costs a cache miss or two; so does adding it and deleting
// it. Most changes need no map: a task that was not schedulable (or did
// not exist) is not tracked, and most changes of a tracked task are the
// scheduler's own writes, confirmed in the order it proposed them, so the
// oldest batch with events still to come names the task to expect and a
// pointer comparison proves it. Any other change goes through the map,
// built on the first such need, and realigns the cursor when it finds a
// task of that batch further on (a write skipped, or refused at once,
// has no event).
func (s *Scheduler) lookup(id string, old *api.Task) *ptask {
	if s.simple {
		return s.tasks[id]
	}
	var head *batch
	for _, b := range s.flight {
		if b.next < len(b.items) {
			head = b
			break
		}
	}
	if head != nil && old != nil {
		if pt := head.items[head.next]; pt.t == old && pt.batch == head.id && !pt.gone {
			head.next++
			return pt
		}
	}
	// After the cursor: old's status is a cache miss the cursor spares.
	if !schedulable(old) {
		return nil
	}
	if !s.indexed {
		s.index()
	}
	pt := s.tasks[id]
	if pt != nil && pt.gone {
		delete(s.tasks, id)
		pt = nil
	}
	if head != nil && pt != nil && pt.batch == head.id && int(pt.pos) >= head.next {
		head.next = int(pt.pos) + 1
	}
	return pt
}

// index builds the map of the tracked tasks by ID.
func (s *Scheduler) index() {
	s.tasks = make(map[string]*ptask, s.live)
	for _, pt := range s.unindexed {
		if !pt.gone {
			s.tasks[pt.t.Id] = pt
		}
	}
	s.unindexed, s.indexed = nil, true
}

// failed reports whether the change from old to nw is a task failing on
// its node.
func failed(old, nw *api.Task) bool {
	if nw == nil || nw.NodeId == "" {
		return false
	}
	st := nw.GetStatus().GetState()
	if st != api.TaskState_TASK_STATE_FAILED && st != api.TaskState_TASK_STATE_REJECTED {
		return false
	}
	return old == nil || old.GetStatus().GetState() < api.TaskState_TASK_STATE_FAILED
}

func (s *Scheduler) onNode(id string, old, nw *api.Node) {
	ni := s.nodes[id]
	if nw == nil {
		if ni == nil || ni.n == nil {
			return
		}
		ni.n = nil
		ni.gen = s.nextGen()
		ni.cpuCap, ni.memCap = 0, 0
		s.orderDirty = true
		s.dropNodeIfUnused(ni)
		return
	}
	if ni == nil {
		ni = s.newNode(id)
	}
	prev := ni.n
	ni.n = nw
	res := nw.GetDescription().GetResources()
	changed := prev == nil || prev.Removed != nw.Removed ||
		ni.cpuCap != res.GetNanoCpus() || ni.memCap != res.GetMemoryBytes()
	ni.cpuCap, ni.memCap = res.GetNanoCpus(), res.GetMemoryBytes()
	switch {
	case prev == nil && !nw.Removed, prev != nil && prev.Removed && !nw.Removed:
		// Joins come thousands at a time when a cluster starts: merging
		// them in keeps each turn linear, where a full sort per turn
		// made the start quadratic.
		s.orderAdded = append(s.orderAdded, ni)
	case prev != nil && !prev.Removed && nw.Removed:
		s.orderDirty = true
	}
	if prev == nil || !constraintInputsEqual(prev, nw) {
		ni.gen = s.nextGen()
		changed = true
	}
	if prev != nil && prev.GetStatus().GetState() != nw.GetStatus().GetState() ||
		prev != nil && prev.GetSpec().GetAvailability() != nw.GetSpec().GetAvailability() {
		changed = true
	}
	if changed {
		s.capacityChanged()
	}
}

func (s *Scheduler) onServiceDeleted(id string) {
	svc := s.services[id]
	if svc == nil {
		return
	}
	svc.deleted = true
	svc.failures = nil
	svc.placements = nil
	if svc.total == 0 {
		delete(s.services, id)
	}
}

// capacityChanged notes that waiting tasks may fit now.
func (s *Scheduler) capacityChanged() { s.capEpoch++ }

func (s *Scheduler) nextGen() uint64 {
	s.gen++
	return s.gen
}

func (s *Scheduler) newNode(id string) *nodeInfo {
	ni := &nodeInfo{id: id, gen: s.nextGen()}
	if k := len(s.freeIdx); k > 0 {
		ni.idx = s.freeIdx[k-1]
		s.freeIdx = s.freeIdx[:k-1]
	} else {
		ni.idx = s.nextIdx
		s.nextIdx++
	}
	s.nodes[id] = ni
	return ni
}

// nodeRef returns the view of the node called id, creating a placeholder
// when the store has no such node (a task names a node that left).
func (s *Scheduler) nodeRef(id string) *nodeInfo {
	if ni := s.nodes[id]; ni != nil {
		return ni
	}
	return s.newNode(id)
}

// dropNodeIfUnused forgets a node the store no longer holds once nothing
// reserves on it.
func (s *Scheduler) dropNodeIfUnused(ni *nodeInfo) {
	if ni.n != nil || ni.tasks != 0 || s.nodes[ni.id] != ni {
		return
	}
	delete(s.nodes, ni.id)
	s.freeIdx = append(s.freeIdx, ni.idx)
}

func (s *Scheduler) service(id string) *serviceInfo {
	svc := s.services[id]
	if svc == nil {
		svc = &serviceInfo{id: id, counts: make(map[*nodeInfo]int32)}
		s.services[id] = svc
	}
	return svc
}

// account adds (sign 1) or removes (sign -1) what t reserves on n.
func (s *Scheduler) account(t *api.Task, n *nodeInfo, sign int32) {
	r := t.GetSpec().GetReservations()
	n.cpuUsed += int64(sign) * r.GetNanoCpus()
	n.memUsed += int64(sign) * r.GetMemoryBytes()
	n.tasks += sign
	svc := s.service(t.ServiceId)
	svc.add(n, sign)
	ports := t.GetEndpoint().GetPorts()
	for i := 0; ; {
		var hp hostPort
		var ok bool
		if hp, i, ok = nextHostPort(ports, i); !ok {
			break
		}
		n.addPort(hp, sign)
	}
	if sign < 0 {
		s.dropNodeIfUnused(n)
		if svc.deleted && svc.total == 0 {
			delete(s.services, svc.id)
		}
	}
}

func (n *nodeInfo) addPort(hp hostPort, d int32) {
	if n.ports == nil {
		n.ports = make(map[hostPort]int32)
	}
	if c := n.ports[hp] + d; c == 0 {
		delete(n.ports, hp)
	} else {
		n.ports[hp] = c
	}
}

// ------------------------------------------------------------ task lists

// track starts tracking a schedulable task and queues it.
func (s *Scheduler) track(t *api.Task) {
	if len(s.slab) == 0 {
		s.slab = make([]ptask, 256)
	}
	pt := &s.slab[0]
	s.slab = s.slab[1:]
	pt.t = t
	s.live++
	if s.indexed {
		s.tasks[t.Id] = pt
	} else {
		s.unindexed = append(s.unindexed, pt)
	}
	s.enqueue(pt)
}

// forget stops tracking pt. It stays in the index (or the list of tasks
// not yet indexed), marked gone, until a lookup meets it or enough pile
// up: nearly every tracked task is forgotten once its assignment lands,
// and deleting each from a map of a million costs a cache miss or two,
// while a sweep costs little per entry. Sweeping when the gone entries
// outnumber the live ones four to one keeps the index at most five times
// the live tasks (plus a constant), each entry swept once on average.
func (s *Scheduler) forget(pt *ptask) {
	pt.gone = true
	if pt.waiting {
		pt.waiting = false
		s.nWaiting--
	}
	s.live--
	if s.simple {
		delete(s.tasks, pt.t.Id)
		return
	}
	size := len(s.unindexed)
	if s.indexed {
		size = len(s.tasks)
	}
	if gone := size - s.live; gone >= s.sweepMin && gone > 4*s.live {
		s.sweep()
	}
}

// minSweep is the least number of gone entries worth a sweep.
const minSweep = 1024

// sweep drops the gone entries of the index, rebuilding it at the size of
// the live ones so that the next sweep walks no empty slots left by a
// peak (what it keeps does not depend on the order it walks the map in),
// or of the list of tasks not yet indexed.
func (s *Scheduler) sweep() {
	if !s.indexed {
		s.unindexed = slices.DeleteFunc(s.unindexed, func(pt *ptask) bool { return pt.gone })
		return
	}
	m := make(map[string]*ptask, s.live)
	for id, pt := range s.tasks {
		if !pt.gone {
			m[id] = pt
		}
	}
	s.tasks = m
}

func (s *Scheduler) enqueue(pt *ptask) {
	if pt.queued || pt.gone {
		return
	}
	if pt.waiting {
		pt.waiting = false
		s.nWaiting--
	}
	pt.queued = true
	s.queue = append(s.queue, pt)
}

// wait parks a task until capacity changes.
func (s *Scheduler) wait(pt *ptask) {
	if pt.waiting || pt.queued || pt.gone {
		return
	}
	pt.waiting = true
	s.nWaiting++
	s.waiting = append(s.waiting, pt)
	if len(s.waiting) > 1024 && len(s.waiting) > 2*s.nWaiting {
		s.waiting = slices.DeleteFunc(s.waiting, func(p *ptask) bool { return !p.waiting })
	}
}

// ------------------------------------------------------------------ turn

// turn schedules everything queued, and the waiting tasks when capacity
// changed since they were last tried, then commits the decisions.
func (s *Scheduler) turn() {
	s.turnPosted = false
	work := s.work[:0]
	now := s.clock.Now().UnixNano()
	if s.nWaiting == 0 {
		s.retryEpoch = s.capEpoch
	}
	if s.retryDue(now) {
		s.retryEpoch, s.lastRetry = s.capEpoch, now
		// Waiting tasks first: they have waited longest.
		for _, pt := range s.waiting {
			if pt.waiting {
				pt.waiting = false
				work = append(work, pt)
			}
		}
		clear(s.waiting)
		s.waiting = s.waiting[:0]
		s.nWaiting = 0
	}
	for _, pt := range s.queue {
		if pt.queued {
			pt.queued = false
			if !pt.gone && pt.batch == 0 {
				work = append(work, pt)
			}
		}
	}
	clear(s.queue)
	s.queue = s.queue[:0]
	if len(work) > 0 {
		s.stats.Turns++
		s.sortNodes()
		s.decide(work, now)
		s.commit()
	}
	clear(work)
	s.work = work[:0]
}

// sortNodes brings the candidate list up to date after nodes joined or
// left: a full rebuild after one left, a merge when they only joined.
func (s *Scheduler) sortNodes() {
	byID := func(a, b *nodeInfo) int { return strings.Compare(a.id, b.id) }
	if s.orderDirty {
		s.orderDirty = false
		clear(s.orderAdded)
		s.orderAdded = s.orderAdded[:0]
		s.order = s.order[:0]
		for _, n := range s.nodes {
			if n.n != nil && !n.n.Removed {
				s.order = append(s.order, n)
			}
		}
		slices.SortFunc(s.order, byID)
		return
	}
	if len(s.orderAdded) == 0 {
		return
	}
	add := s.orderAdded
	slices.SortFunc(add, byID)
	// Merge from the back, in place: order grows by len(add), and each
	// step moves the larger of the two tails' last elements.
	old := len(s.order)
	s.order = slices.Grow(s.order, len(add))[:old+len(add)]
	i, j := old-1, len(add)-1
	for k := len(s.order) - 1; j >= 0; k-- {
		if i >= 0 && s.order[i].id > add[j].id {
			s.order[k] = s.order[i]
			i--
		} else {
			s.order[k] = add[j]
			j--
		}
	}
	clear(add)
	s.orderAdded = add[:0]
}

// commit proposes the turn's decisions: assignments first, in compact
// actions that never void a batch, then the full updates (pending reasons),
// each split into proposals of at most maxBatch actions.
func (s *Scheduler) commit() {
	ep := s.epoch
	s.propose(s.assign, true)
	if s.epoch == ep {
		s.propose(s.updates, false)
	}
	clear(s.assign)
	s.assign = s.assign[:0]
	clear(s.updates)
	s.updates = s.updates[:0]
}

func (s *Scheduler) propose(list []decision, assignments bool) {
	ep := s.epoch
	for len(list) > 0 {
		if s.epoch != ep {
			// Stopped (or restored) by a callback of an earlier chunk,
			// which a synchronous proposer runs inside Update: write
			// nothing more.
			return
		}
		chunk := list[:min(len(list), s.maxBatch)]
		list = list[len(chunk):]
		s.nextBatch++
		b := &batch{id: s.nextBatch, items: make([]*ptask, len(chunk)), assignments: assignments}
		for i := range chunk {
			pt := chunk[i].pt
			pt.batch, pt.pos = b.id, int32(i)
			b.items[i] = pt
		}
		s.flight = append(s.flight, b)
		s.inflight += len(chunk)
		s.st.Update(func(tx *store.Tx) error {
			ts := tx.Timestamp()
			for i := range chunk {
				d := &chunk[i]
				if err := s.write(tx, d, ts); err != nil {
					s.log.Warn("scheduler: write refused", "task", d.pt.t.Id, "err", err)
					s.abandon(d.pt)
					continue
				}
				b.written++
				if d.node != nil {
					s.stats.Latency.Observe(time.Duration(ts - d.pt.t.GetStatus().GetTimestamp()))
				}
			}
			return nil
		}, func(err error) {
			if s.epoch == ep {
				s.batchDone(b, err)
			}
		})
	}
}

// write records one decision in tx.
func (s *Scheduler) write(tx *store.Tx, d *decision, ts int64) error {
	t := d.pt.t
	switch {
	case d.node == nil:
		nt := t.ShallowCopy()
		nt.PendingReason = d.reason
		return tx.Update(nt)
	case t.NodeId == "":
		return tx.AssignTask(t.Id, d.node.id, t.GetMeta().GetVersion())
	case t.PendingReason == "":
		// A pre-placed task: AssignTask only takes tasks on no node, and
		// a status update is just as compact and never voids the batch.
		return tx.UpdateTaskStatus(t.Id, &api.TaskStatus{
			State: api.TaskState_TASK_STATE_ASSIGNED, Timestamp: ts, Message: assignedMessage})
	default:
		// A pre-placed task whose old pending reason must go too.
		nt := t.ShallowCopy()
		nt.Status = &api.TaskStatus{State: api.TaskState_TASK_STATE_ASSIGNED, Timestamp: ts, Message: assignedMessage}
		nt.PendingReason = ""
		return tx.Update(nt)
	}
}

// abandon takes back a decision the transaction refused at once. The view
// and the store disagree about the task, which its next event will settle;
// until then it waits, with a timer as a backstop, rather than being
// retried at once and refused again.
func (s *Scheduler) abandon(pt *ptask) {
	pt.batch = 0
	s.inflight--
	if n := pt.node; n != nil {
		pt.node = nil
		s.account(pt.t, n, -1)
	}
	pt.tried = s.capEpoch
	s.wait(pt)
	s.armRetry(retryDelay)
}

// batchDone settles a proposal: writes no event confirmed did not take.
func (s *Scheduler) batchDone(b *batch, err error) {
	if i := slices.Index(s.flight, b); i >= 0 {
		s.flight[i] = nil
		s.flight = slices.Delete(s.flight, i, i+1)
	}
	if err != nil {
		s.stats.ProposalErrors++
		s.log.Warn("scheduler: proposal failed", "actions", len(b.items), "err", err)
	} else if b.assignments && b.written > 0 {
		s.stats.Batches++
	}
	for _, pt := range b.items {
		if pt.batch != b.id {
			continue // settled by its event
		}
		pt.batch = 0
		s.inflight--
		if n := pt.node; n != nil {
			pt.node = nil
			s.account(pt.t, n, -1)
			if err == nil {
				// The guard failed at apply: something changed that
				// the view already shows. Freed capacity may fit others.
				s.stats.Skipped++
				s.capacityChanged()
			}
		}
		switch {
		case pt.gone:
		case err != nil:
			pt.tried = s.capEpoch
			s.wait(pt)
		default:
			s.enqueue(pt)
		}
	}
	if err != nil {
		s.armRetry(retryDelay)
	}
	s.kick()
}

// retryDue reports whether the waiting tasks should be tried again now:
// capacity changed since they were last tried, and the last retry is
// RetryInterval old. When only the interval holds it back, it arms the
// timer that will.
func (s *Scheduler) retryDue(now int64) bool {
	if s.nWaiting == 0 || s.capEpoch == s.retryEpoch {
		return false
	}
	if wait := s.lastRetry + int64(RetryInterval) - now; s.lastRetry != math.MinInt64 && wait > 0 {
		s.armRetry(time.Duration(wait))
		return false
	}
	return true
}

// armRetry makes waiting tasks be tried again after d, unless a timer is
// armed already.
func (s *Scheduler) armRetry(d time.Duration) {
	if s.retryTimer != nil || !s.running {
		return
	}
	ep := s.epoch
	s.retryTimer = s.clock.AfterFunc(d, func() {
		if s.epoch != ep || !s.running {
			return
		}
		s.retryTimer = nil
		s.capacityChanged()
		s.kick()
	})
}
