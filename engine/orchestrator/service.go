package orchestrator

import (
	"cmp"
	"maps"
	"slices"
	"strconv"

	"github.com/swarmsim/swarmsim/engine/api"
)

// createChunk is how many scale-up creations share a plan group: a failed
// group re-reconciles the whole service anyway, and fewer groups are
// cheaper at 100,000 replicas.
const createChunk = 256

// reconcileService reconciles a whole service: every slot, the replica
// count (or job completions, or the nodes of a global service), the
// rolling update, the history. It costs the service's tasks (and the
// nodes, for a global service), never the store's.
func (o *Orchestrator) reconcileService(s *svcState, c *svcCtx, p *plan) {
	switch {
	case c.svc == nil:
		o.reconcileRemoved(s, c, p)
		return
	case c.mode == modeNone:
		o.log.Warn("service has no mode; leaving its tasks alone", "service", c.id)
		return
	}
	if c.mode.job() {
		c.iter = o.jobIteration(c, p)
	}
	if c.mode.global() {
		o.reconcileGlobal(s, c, p)
		return
	}
	slots := o.slotsOf(c.id)
	for i := range slots {
		si := &slots[i]
		if si.key.slot == 0 {
			o.removeForeign(c, si, p)
			continue
		}
		o.maintain(c, si, p)
	}
	if c.mode == modeReplicatedJob {
		o.rebuildJob(s, c, slots, p)
		return
	}
	removed := o.scale(c, slots, p)
	var dirty []slotKey
	for i := range slots {
		if si := &slots[i]; si.needsUpdate && !removed[si.key.slot] {
			dirty = append(dirty, si.key)
		}
	}
	o.reconcileUpdate(s, c, dirty, p)
}

// reconcileSlots reconciles marked slots of one service: the reaction to
// task and node events, each costing its slot's history.
func (o *Orchestrator) reconcileSlots(s *svcState, c *svcCtx, keys []slotKey, p *plan) {
	if c.svc == nil {
		for _, k := range keys {
			p.begin(c.id, k, false)
			for _, t := range o.slotTasks(c.id, k) {
				o.removeTask(t, p)
			}
			p.end()
		}
		return
	}
	if c.mode == modeNone {
		return
	}
	if c.mode.job() {
		js := c.svc.GetJobStatus()
		if js == nil || js.SpecVersion != c.svc.SpecVersion ||
			c.mode == modeReplicatedJob && (s.job == nil || s.job.iter != c.iter) {
			// A new run is due, or the job's counters are not built yet.
			o.markFull(c.id)
			return
		}
	}
	u := s.upd
	for _, k := range keys {
		o.stats.SlotsReconciled++
		if u != nil {
			if _, inBatch := u.batch[k]; inBatch {
				u.check = append(u.check, k)
				s.updDirty = true
			}
		}
		si := slotInfo{key: k, tasks: o.slotTasks(c.id, k)}
		if c.mode.global() != (k.slot == 0) {
			o.removeForeign(c, &si, p)
			continue
		}
		o.maintain(c, &si, p)
		if c.mode == modeReplicatedJob {
			s.job.note(&si)
		}
	}
	if c.mode == modeReplicatedJob {
		o.refill(c, s.job, p)
	}
}

// removeForeign removes tasks that belong to no slot of the service's
// mode (a replicated task in a global service after a mode change, or the
// other way round), and reaps them once they stop.
func (o *Orchestrator) removeForeign(c *svcCtx, si *slotInfo, p *plan) {
	p.begin(c.id, si.key, false)
	for _, t := range si.tasks {
		if t.DesiredState < remove || t.DesiredState == remove && notRunning(t) {
			o.removeTask(t, p)
		}
	}
	p.end()
}

// reconcileRemoved ends a deleted (or pending_delete) service: every task
// to REMOVE, each deleted once it no longer runs, then the service object
// itself if it is marked pending_delete.
func (o *Orchestrator) reconcileRemoved(s *svcState, c *svcCtx, p *plan) {
	s.upd, s.job = nil, nil
	n := 0
	for t := range o.st.EachTaskByService(c.id) {
		if n%createChunk == 0 {
			p.begin(c.id, slotKey{}, true)
		}
		n++
		o.removeTask(t, p)
	}
	p.end()
	if svc := o.st.Service(c.id); n == 0 && svc != nil && svc.PendingDelete {
		p.begin(c.id, slotKey{}, true)
		p.add(action{op: opDeleteService, id: c.id})
		p.end()
	}
}

// slotsOf reads a replicated service's tasks grouped by slot, in slot
// order (tasks of one slot in ID order). Slots are dense small numbers, so
// a counting sort groups them in O(tasks).
func (o *Orchestrator) slotsOf(id string) []slotInfo {
	n := o.st.CountTasksByService(id)
	if n == 0 {
		return nil
	}
	all := make([]*api.Task, 0, n)
	var top uint64
	for t := range o.st.EachTaskByService(id) {
		all = append(all, t)
		top = max(top, t.Slot)
	}
	if top > uint64(4*len(all)+1024) {
		// Sparse slot numbers: sort instead (stable keeps ID order).
		slices.SortStableFunc(all, func(a, b *api.Task) int { return cmp.Compare(a.Slot, b.Slot) })
	} else {
		start := make([]int32, top+2)
		for _, t := range all {
			start[t.Slot+1]++
		}
		for i := 1; i < len(start); i++ {
			start[i] += start[i-1]
		}
		sorted := make([]*api.Task, len(all))
		for _, t := range all {
			sorted[start[t.Slot]] = t
			start[t.Slot]++
		}
		all = sorted
	}
	out := make([]slotInfo, 0, min(uint64(len(all)), top+1))
	for i := 0; i < len(all); {
		j := i + 1
		for j < len(all) && all[j].Slot == all[i].Slot {
			j++
		}
		out = append(out, slotInfo{key: slotKey{slot: all[i].Slot}, tasks: all[i:j:j]})
		i = j
	}
	return out
}

// scale brings a replicated service's occupied slots to its replica count:
// new tasks in the lowest free slot numbers, or the surplus slots removed.
// It returns the slots it removed.
func (o *Orchestrator) scale(c *svcCtx, slots []slotInfo, p *plan) map[uint64]bool {
	want := int(c.svc.GetSpec().GetReplicated().GetReplicas())
	occ := 0
	for i := range slots {
		if slots[i].occupied {
			occ++
		}
	}
	switch {
	case occ < want:
		need := want - occ
		p.acts = slices.Grow(p.acts, need)
		next, i, made := uint64(1), 0, 0
		for made < need {
			for i < len(slots) && slots[i].key.slot < next {
				i++
			}
			if i < len(slots) && slots[i].key.slot == next && slots[i].occupied {
				next++
				continue
			}
			if made%createChunk == 0 {
				p.begin(c.id, slotKey{slot: next}, true)
			}
			o.create(p, c.svc, slotKey{slot: next}, running, 0, tagNone)
			made++
			next++
		}
		p.end()
	case occ > want:
		return o.scaleDown(c, slots, occ-want, p)
	}
	return nil
}

// scaleDown removes k occupied slots: first those whose task is not
// running yet (or ended), then those on the nodes holding the most tasks
// of the service, then the highest slot numbers. Slots given a replacement
// in this very pass are left for the next pass, once the new task shows in
// the store.
func (o *Orchestrator) scaleDown(c *svcCtx, slots []slotInfo, k int, p *plan) map[uint64]bool {
	load := make(map[string]int)
	var cands []*slotInfo
	for i := range slots {
		si := &slots[i]
		if !si.occupied {
			continue
		}
		for _, t := range si.current {
			if t.NodeId != "" {
				load[t.NodeId]++
			}
		}
		if !si.replaced {
			cands = append(cands, si)
		}
	}
	slices.SortFunc(cands, func(a, b *slotInfo) int {
		if a.running != b.running {
			if !a.running {
				return -1
			}
			return 1
		}
		if la, lb := load[a.node], load[b.node]; la != lb {
			return cmp.Compare(lb, la)
		}
		return cmp.Compare(b.key.slot, a.key.slot)
	})
	if k > len(cands) {
		o.markFull(c.id) // the rest once the replacements are in the store
		k = len(cands)
	}
	removed := make(map[uint64]bool, k)
	for _, si := range cands[:k] {
		p.begin(c.id, si.key, true)
		for _, t := range si.current {
			o.removeTask(t, p)
		}
		if si.marker != nil {
			o.removeTask(si.marker, p)
		}
		p.end()
		removed[si.key.slot] = true
	}
	return removed
}

// reconcileGlobal gives every eligible node one task of a global service
// (or global job) and takes it off the others. It walks the nodes and the
// service's tasks, grouped by node, in one merge.
func (o *Orchestrator) reconcileGlobal(s *svcState, c *svcCtx, p *plan) {
	byNode := make(map[string][]*api.Task)
	var foreign []*api.Task
	for t := range o.st.EachTaskByService(c.id) {
		if t.Slot != 0 {
			foreign = append(foreign, t)
			continue
		}
		byNode[t.NodeId] = append(byNode[t.NodeId], t)
	}
	if len(foreign) > 0 {
		o.removeForeign(c, &slotInfo{key: slotKey{slot: foreign[0].Slot}, tasks: foreign}, p)
	}
	taskNodes := slices.Sorted(maps.Keys(byNode))
	var dirty []slotKey
	visit := func(node string) {
		si := slotInfo{key: slotKey{node: node}, tasks: byNode[node]}
		o.maintain(c, &si, p)
		if si.needsUpdate {
			dirty = append(dirty, si.key)
		}
	}
	i := 0
	for n := range o.st.EachNode() {
		for i < len(taskNodes) && taskNodes[i] < n.Id {
			visit(taskNodes[i]) // tasks on a node the store no longer has
			i++
		}
		if i < len(taskNodes) && taskNodes[i] == n.Id {
			i++
		}
		visit(n.Id)
	}
	for ; i < len(taskNodes); i++ {
		visit(taskNodes[i])
	}
	if !c.mode.job() {
		slices.SortFunc(dirty, slotKey.compare)
		o.reconcileUpdate(s, c, dirty, p)
	}
}

// ------------------------------------------------------------------ jobs

// jobState counts a replicated job's current iteration, so that a task's
// completion refills the job without a scan of the service: the slots of
// one iteration are handed out in increasing order, retries reuse their
// slot, and only active slots can change.
type jobState struct {
	iter     uint64
	complete uint64
	finished uint64 // slots whose task failed for good (restart policy)
	active   map[uint64]struct{}
	holes    []uint64 // free slot numbers below next, ascending
	next     uint64   // every slot from next up is free
}

// note records what a slot reconcile concluded.
func (js *jobState) note(si *slotInfo) {
	slot := si.key.slot
	_, was := js.active[slot]
	delete(js.active, slot)
	switch {
	case si.complete:
		if was {
			js.complete++
		}
	case si.marker != nil:
		if was {
			js.finished++
		}
	case si.occupied:
		js.active[slot] = struct{}{}
	case was:
		i, _ := slices.BinarySearch(js.holes, slot)
		js.holes = slices.Insert(js.holes, i, slot)
	}
}

// take hands out the lowest free slot, or 0 when none is left.
func (js *jobState) take(total uint64) uint64 {
	if len(js.holes) > 0 {
		s := js.holes[0]
		js.holes = js.holes[1:]
		return s
	}
	if js.next > total {
		return 0
	}
	js.next++
	return js.next - 1
}

// jobLimits are a replicated job's total completions and concurrency. A
// zero max_concurrent runs everything at once; a zero total_completions
// asks for max_concurrent completions (Docker's reading of --replicas).
func jobLimits(svc *api.Service) (total, maxc uint64) {
	rj := svc.GetSpec().GetReplicatedJob()
	total, maxc = rj.GetTotalCompletions(), rj.GetMaxConcurrent()
	if total == 0 {
		total = maxc
	}
	if maxc == 0 {
		maxc = total
	}
	return total, maxc
}

// jobIteration returns the job's current iteration, starting a new one
// (and recording it in job_status) when the spec changed since the
// current one began. Tasks of earlier iterations are removed by maintain.
func (o *Orchestrator) jobIteration(c *svcCtx, p *plan) uint64 {
	js := c.svc.GetJobStatus()
	if js != nil && js.SpecVersion == c.svc.SpecVersion {
		return js.JobIteration
	}
	iter := uint64(0)
	if js != nil {
		iter = js.JobIteration + 1
	}
	ver := c.svc.SpecVersion
	want := &api.JobStatus{JobIteration: iter, LastExecution: c.now, SpecVersion: ver}
	p.begin(c.id, slotKey{}, true)
	p.add(action{op: opService, tag: tagJobIteration, id: c.id, mutate: func(cur *api.Service) *api.Service {
		if cur.SpecVersion != ver || cur.GetJobStatus().GetSpecVersion() == ver && cur.JobStatus != nil {
			return nil
		}
		n := cur.ShallowCopy()
		n.JobStatus = want
		return n
	}})
	p.end()
	o.log.Debug("job iteration", "service", c.id, "iteration", iter)
	return iter
}

// rebuildJob counts a replicated job from its slots (after a full
// reconcile) and starts what may run.
func (o *Orchestrator) rebuildJob(s *svcState, c *svcCtx, slots []slotInfo, p *plan) {
	total, _ := jobLimits(c.svc)
	js := &jobState{iter: c.iter, active: make(map[uint64]struct{}), next: 1}
	used := make(map[uint64]bool)
	for i := range slots {
		si := &slots[i]
		if si.key.slot == 0 {
			continue
		}
		switch {
		case si.complete:
			js.complete++
		case si.marker != nil:
			js.finished++
		case si.occupied:
			js.active[si.key.slot] = struct{}{}
		default:
			continue
		}
		used[si.key.slot] = true
		js.next = max(js.next, si.key.slot+1)
	}
	for n := uint64(1); n < js.next && n <= total; n++ {
		if !used[n] {
			js.holes = append(js.holes, n)
		}
	}
	s.job = js
	o.refill(c, js, p)
}

// refill starts tasks in free slots while the job is under its
// concurrency and short of its completions.
func (o *Orchestrator) refill(c *svcCtx, js *jobState, p *plan) {
	total, maxc := jobLimits(c.svc)
	for uint64(len(js.active)) < maxc && js.complete+js.finished+uint64(len(js.active)) < total {
		slot := js.take(total)
		if slot == 0 {
			break
		}
		k := slotKey{slot: slot}
		p.begin(c.id, k, true)
		o.create(p, c.svc, k, running, js.iter, tagNone)
		p.end()
		js.active[slot] = struct{}{}
	}
}

// String renders a slot for logs.
func (k slotKey) String() string {
	if k.slot != 0 {
		return "slot " + strconv.FormatUint(k.slot, 10)
	}
	return "node " + k.node
}
