package scheduler

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/swarmsim/swarmsim/engine/api"
)

// group is a set of identical tasks of one service: the same spec (hence
// the same reservations and placement) and the same host ports. A group is
// placed in one pass over the nodes.
type group struct {
	svc         *serviceInfo
	spec        *api.TaskSpec
	cpu, mem    int64
	maxReplicas uint64
	ports       []hostPort
	pl          *placement
	tasks       []*ptask // to place anywhere
	pre         []*ptask // pre-placed on their node
	next        int      // tasks[:next] are placed
}

type groupKey struct {
	svc   string
	spec  *api.TaskSpec
	ports string
}

// versionKey finds groups whose spec is equal but not shared (the store
// shares a task's spec with its service's when they are equal; tasks made
// otherwise carry their own copy).
type versionKey struct {
	svc     string
	version uint64
	ports   string
}

// cand is a node able to take tasks of the group being placed.
type cand struct {
	n       *nodeInfo
	rank    int32 // position in ID order: the last tie-breaker
	svc     int32 // the service's tasks on the node
	total   int32 // all tasks on the node
	slots   int32 // how many more of the group's tasks fit
	placed  int32 // placed in this pass
	backoff bool  // the service keeps failing there
}

// turnScratch holds buffers a turn reuses.
type turnScratch struct {
	groups  []*group
	byKey   map[groupKey]*group
	byVer   map[versionKey][]*group
	cands   []cand
	idx     []int32
	heap    []int32 // fillHeap's heap; fillLevels' sorted candidates
	act     []int32 // fillLevels: the nodes taking tasks at this level
	merged  []int32 // fillLevels: act with the nodes joining it
	bheap   []*branch
	explain explanation
}

// decide places the tasks of work, appending the writes to s.assign and
// s.updates.
func (s *Scheduler) decide(work []*ptask, now int64) {
	groups := s.groupTasks(work)
	// Pre-placed tasks first: a global service's task can only run on its
	// node, so it must not lose that node's capacity to a task that could
	// run elsewhere.
	for _, g := range groups {
		for _, pt := range g.pre {
			s.placePreassigned(g, pt)
		}
	}
	for _, g := range groups {
		if len(g.tasks) > 0 {
			s.placeGroup(g, now)
		}
	}
	for i, g := range groups {
		*g = group{}
		groups[i] = nil
	}
}

func (s *Scheduler) groupTasks(work []*ptask) []*group {
	sc := &s.turnBuf
	if sc.byKey == nil {
		sc.byKey = make(map[groupKey]*group)
		sc.byVer = make(map[versionKey][]*group)
	}
	clear(sc.byKey)
	clear(sc.byVer)
	groups := sc.groups[:0]
	var last groupKey
	var g *group
	for _, pt := range work {
		t := pt.t
		sig := portSignature(t)
		k := groupKey{t.ServiceId, t.Spec, sig}
		// Tasks arrive in runs of one service (a creation batch, a full
		// scan in ID order... ): skip the map while the key repeats.
		if g == nil || k != last {
			g, last = sc.byKey[k], k
		}
		if g == nil {
			vk := versionKey{t.ServiceId, t.SpecVersion, sig}
			for _, o := range sc.byVer[vk] {
				if proto.Equal(o.spec, t.Spec) {
					g = o
					break
				}
			}
			if g == nil {
				g = s.newGroup(t)
				groups = append(groups, g)
				sc.byVer[vk] = append(sc.byVer[vk], g)
			}
			sc.byKey[k] = g
		}
		if t.NodeId != "" {
			g.pre = append(g.pre, pt)
		} else {
			g.tasks = append(g.tasks, pt)
		}
	}
	sc.groups = groups
	return groups
}

// portSignature names the host-mode published ports of t, "" when it has
// none (the common case, which allocates nothing).
func portSignature(t *api.Task) string {
	ports := t.GetEndpoint().GetPorts()
	hp, i, ok := nextHostPort(ports, 0)
	if !ok {
		return ""
	}
	var b strings.Builder
	for ok {
		b.WriteString(strconv.FormatUint(uint64(hp.port), 10))
		b.WriteByte('/')
		b.WriteString(strconv.Itoa(int(hp.proto)))
		b.WriteByte(',')
		hp, i, ok = nextHostPort(ports, i)
	}
	return b.String()
}

func (s *Scheduler) newGroup(t *api.Task) *group {
	svc := s.service(t.ServiceId)
	r := t.GetSpec().GetReservations()
	return &group{
		svc:         svc,
		spec:        t.Spec,
		cpu:         r.GetNanoCpus(),
		mem:         r.GetMemoryBytes(),
		maxReplicas: t.GetSpec().GetPlacement().GetMaxReplicas(),
		ports:       hostPorts(nil, t),
		pl:          svc.placement(t.GetSpec().GetPlacement()),
	}
}

// slots returns how many of g's tasks fit on n beyond what it holds (at
// most limit), or 0 and the first filter that fails with its detail (the
// index of the port in use).
func (g *group) slots(n *nodeInfo, svcCount, limit int32) (int32, filter, int) {
	slots := int64(limit)
	if g.cpu > 0 {
		free := n.cpuCap - n.cpuUsed
		if free < g.cpu {
			return 0, filterCPU, 0
		}
		slots = min(slots, free/g.cpu)
	}
	if g.mem > 0 {
		free := n.memCap - n.memUsed
		if free < g.mem {
			return 0, filterMemory, 0
		}
		slots = min(slots, free/g.mem)
	}
	if g.maxReplicas > 0 {
		if uint64(svcCount) >= g.maxReplicas {
			return 0, filterMaxReplicas, 0
		}
		slots = int64(min(uint64(slots), g.maxReplicas-uint64(svcCount)))
	}
	if len(g.ports) > 0 {
		for i, p := range g.ports {
			if n.ports[p] > 0 {
				return 0, filterHostPort, i
			}
		}
		slots = min(slots, 1)
	}
	return int32(slots), filterPass, 0
}

// check runs every filter for one task of g on n and returns the first
// that fails, with its detail (the constraint or port index).
func (s *Scheduler) check(g *group, n *nodeInfo) (filter, int) {
	if f := n.availability(); f != filterPass {
		return f, 0
	}
	if i := g.pl.check(n); i >= 0 {
		return filterConstraint, i
	}
	_, f, d := g.slots(n, g.svc.count(n), 1)
	return f, d
}

func (s *Scheduler) placePreassigned(g *group, pt *ptask) {
	if g.pl.err != nil {
		s.leavePending(pt, g.pl.err.Error())
		return
	}
	f, d := filterGone, 0
	n := s.nodes[pt.t.NodeId]
	if n != nil {
		f, d = s.check(g, n)
	}
	if f != filterPass {
		s.leavePending(pt, "node "+pt.t.NodeId+" "+phrase(g, f, d, false))
		return
	}
	s.reserve(g, n, 1)
	s.emit(pt, n)
}

// placeGroup places g's free tasks: one pass over the nodes finds the
// candidates and how many tasks each can take, then spread preferences
// share the tasks out between groups of nodes and fill hands each task to
// the least loaded candidate.
func (s *Scheduler) placeGroup(g *group, now int64) {
	if g.pl.err != nil {
		for _, pt := range g.tasks {
			s.leavePending(pt, g.pl.err.Error())
		}
		return
	}
	sc := &s.turnBuf
	k := len(g.tasks)
	limit := int32(min(k, 1<<30))
	spread := len(g.pl.spread) > 0
	cands, idx := sc.cands[:0], sc.idx[:0]
	for i, n := range s.order {
		if n.availability() != filterPass || g.pl.check(n) >= 0 {
			continue
		}
		svcCount := g.svc.count(n)
		slots, _, _ := g.slots(n, svcCount, limit)
		if slots == 0 && !spread {
			continue
		}
		// Nodes that are full still count for spreading: their tasks
		// weigh on their branch.
		idx = append(idx, int32(len(cands)))
		cands = append(cands, cand{
			n: n, rank: int32(i), svc: svcCount, total: n.tasks, slots: slots,
			backoff: g.svc.backoff(n, now),
		})
	}
	sc.cands, sc.idx = cands, idx
	s.assign = slices.Grow(s.assign, k)
	var placed int
	if spread {
		placed = s.spread(g, 0, idx, k)
	} else {
		placed = s.fill(g, idx, k)
	}
	clear(sc.cands)
	if placed < k {
		reason := s.explain(g)
		s.log.Debug("scheduler: tasks left pending", "service", g.svc.id, "placed", placed, "pending", k-placed, "reason", reason)
		for _, pt := range g.tasks[placed:] {
			s.leavePending(pt, reason)
		}
	}
}

// candLess orders candidates: nodes in back-off last, then fewest tasks of
// the service, fewest tasks overall, lowest ID.
func candLess(a, b *cand) bool {
	if a.backoff != b.backoff {
		return b.backoff
	}
	if a.svc != b.svc {
		return a.svc < b.svc
	}
	if a.total != b.total {
		return a.total < b.total
	}
	return a.rank < b.rank
}

// fill places up to k of g's next tasks on the candidates idx, least loaded
// first, and returns how many it placed.
func (s *Scheduler) fill(g *group, idx []int32, k int) int {
	if s.simple {
		return s.fillHeap(g, idx, k)
	}
	return s.fillLevels(g, idx, k)
}

// withSlots lists, in the turn's reusable buffer, the candidates of idx
// that can take another task.
func (sc *turnScratch) withSlots(idx []int32) []int32 {
	out := sc.heap[:0]
	for _, i := range idx {
		if sc.cands[i].slots > 0 {
			out = append(out, i)
		}
	}
	return out
}

// giveOne places the group's next task on candidate c, which then holds
// one more task of the service and one more in all, and returns how many
// more c can take.
func (s *Scheduler) giveOne(g *group, c *cand) int32 {
	s.emitFree(g.tasks[g.next], c.n)
	g.next++
	c.svc++
	c.total++
	c.placed++
	c.slots--
	return c.slots
}

// fillHeap is fill by the book: a heap of the candidates in candLess
// order hands each task to its least candidate, which then holds one
// more task of the service and one more in all.
func (s *Scheduler) fillHeap(g *group, idx []int32, k int) int {
	sc := &s.turnBuf
	cs := sc.cands
	h := sc.withSlots(idx)
	less := func(i, j int) bool { return candLess(&cs[h[i]], &cs[h[j]]) }
	down := func(i int) {
		for {
			l := 2*i + 1
			if l >= len(h) {
				return
			}
			m := l
			if r := l + 1; r < len(h) && less(r, l) {
				m = r
			}
			if !less(m, i) {
				return
			}
			h[i], h[m] = h[m], h[i]
			i = m
		}
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		down(i)
	}
	placed := 0
	for placed < k && len(h) > 0 {
		placed++
		if s.giveOne(g, &cs[h[0]]) == 0 {
			last := len(h) - 1
			h[0] = h[last]
			h = h[:last]
		}
		down(0)
	}
	for _, i := range idx {
		if c := &cs[i]; c.placed > 0 {
			s.reserve(g, c.n, c.placed)
			c.placed = 0
		}
	}
	sc.heap = h[:0]
	return placed
}

// fillLevels places exactly as fillHeap, in O(n log n + k) rather than
// O(n + k log n), and walking the candidates in order rather than up and
// down a heap. A candidate's successive tasks have the keys (backoff, svc+j,
// total+j, rank) for j below its slots, and the heap hands the tasks out
// in the sorted order of all these keys. Within one backoff class, that is
// level by level (L = svc+j), and within a level in the order of
// (total-svc, rank), which placing a task does not change. So: sort the
// candidates once by (backoff, svc, total-svc, rank), keep the nodes
// taking tasks at the current level in (total-svc, rank) order, give each
// one task per level, merge in the nodes whose count of the service's
// tasks reaches the level, and drop the full ones.
func (s *Scheduler) fillLevels(g *group, idx []int32, k int) int {
	sc := &s.turnBuf
	cs := sc.cands
	order := sc.withSlots(idx)
	diff := func(c *cand) int32 { return c.total - c.svc }
	slices.SortFunc(order, func(a, b int32) int {
		ca, cb := &cs[a], &cs[b]
		if ca.backoff != cb.backoff {
			if ca.backoff {
				return 1
			}
			return -1
		}
		if ca.svc != cb.svc {
			return cmp.Compare(ca.svc, cb.svc)
		}
		if da, db := diff(ca), diff(cb); da != db {
			return cmp.Compare(da, db)
		}
		return cmp.Compare(ca.rank, cb.rank)
	})
	byDiff := func(a, b int32) bool {
		ca, cb := &cs[a], &cs[b]
		if da, db := diff(ca), diff(cb); da != db {
			return da < db
		}
		return ca.rank < cb.rank
	}
	act, merged := sc.act[:0], sc.merged[:0]
	placed, p := 0, 0
	for placed < k && p < len(order) {
		// One backoff class, from its lowest level up.
		backoff := cs[order[p]].backoff
		level := cs[order[p]].svc
		act = act[:0]
		for placed < k {
			// The nodes joining at this level (svc still as read: they
			// took nothing yet), in (total-svc, rank) order already.
			q := p
			for q < len(order) && cs[order[q]].backoff == backoff && cs[order[q]].svc == level {
				q++
			}
			if q > p {
				merged = merged[:0]
				a, b := act, order[p:q]
				for len(a) > 0 && len(b) > 0 {
					if byDiff(b[0], a[0]) {
						merged, b = append(merged, b[0]), b[1:]
					} else {
						merged, a = append(merged, a[0]), a[1:]
					}
				}
				merged = append(append(merged, a...), b...)
				act, merged = merged, act
				p = q
			}
			if len(act) == 0 {
				if p == len(order) || cs[order[p]].backoff != backoff {
					break // the class is full
				}
				level = cs[order[p]].svc // skip the empty levels
				continue
			}
			w := 0
			for _, i := range act {
				if placed == k {
					break
				}
				placed++
				if s.giveOne(g, &cs[i]) > 0 {
					act[w] = i
					w++
				}
			}
			act = act[:w]
			level++
		}
	}
	for _, i := range idx {
		if c := &cs[i]; c.placed > 0 {
			s.reserve(g, c.n, c.placed)
			c.placed = 0
		}
	}
	sc.heap, sc.act, sc.merged = order[:0], act[:0], merged[:0]
	return placed
}

// branch is the set of candidates sharing one value of a spread
// descriptor.
type branch struct {
	value    string
	has      bool // the nodes carry the label (false: they lack it)
	nodes    []int32
	existing int // the service's tasks on those nodes
	capacity int // how many more fit, at most k
	share    int // tasks given to the branch
	order    int
}

type branchKey struct {
	value string
	has   bool
}

// spread shares k tasks out between the values of spread preference level
// so that the service's task counts per value end as even as capacity
// allows, then recurses into each value's nodes.
func (s *Scheduler) spread(g *group, level int, idx []int32, k int) int {
	if level == len(g.pl.spread) {
		return s.fill(g, idx, k)
	}
	d := g.pl.spread[level]
	cs := s.turnBuf.cands
	byKey := make(map[branchKey]*branch)
	var branches []*branch
	for _, i := range idx {
		v, has := d.value(cs[i].n.n)
		if !has {
			v = ""
		}
		b := byKey[branchKey{v, has}]
		if b == nil {
			b = &branch{value: v, has: has}
			byKey[branchKey{v, has}] = b
			branches = append(branches, b)
		}
		b.nodes = append(b.nodes, i)
		b.existing += int(cs[i].svc)
		b.capacity = min(b.capacity+int(cs[i].slots), k)
	}
	// Nodes lacking the label first, then by value: any fixed order will
	// do, as long as it does not come from a map.
	slices.SortFunc(branches, func(a, b *branch) int {
		if a.has != b.has {
			if a.has {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.value, b.value)
	})
	// Water-filling: each task goes to the branch that would then hold
	// the fewest of the service's tasks, among those with room.
	h := s.turnBuf.bheap[:0]
	for i, b := range branches {
		b.order = i
		if b.capacity > 0 {
			h = append(h, b)
		}
	}
	less := func(a, b *branch) bool {
		if ea, eb := a.existing+a.share, b.existing+b.share; ea != eb {
			return ea < eb
		}
		return a.order < b.order
	}
	down := func(i int) {
		for {
			l := 2*i + 1
			if l >= len(h) {
				return
			}
			m := l
			if r := l + 1; r < len(h) && less(h[r], h[l]) {
				m = r
			}
			if !less(h[m], h[i]) {
				return
			}
			h[i], h[m] = h[m], h[i]
			i = m
		}
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		down(i)
	}
	for left := k; left > 0 && len(h) > 0; left-- {
		b := h[0]
		b.share++
		if b.share == b.capacity {
			last := len(h) - 1
			h[0] = h[last]
			h = h[:last]
		}
		down(0)
	}
	clear(h)
	s.turnBuf.bheap = h[:0]
	placed := 0
	for _, b := range branches {
		if b.share > 0 {
			placed += s.spread(g, level+1, b.nodes, b.share)
		}
	}
	return placed
}

// reserve counts k tasks of g as placed on n.
func (s *Scheduler) reserve(g *group, n *nodeInfo, k int32) {
	n.cpuUsed += int64(k) * g.cpu
	n.memUsed += int64(k) * g.mem
	n.tasks += k
	g.svc.add(n, k)
	for _, p := range g.ports {
		n.addPort(p, k)
	}
}

// emit records the assignment of pt to n, whose reservation the caller
// made.
func (s *Scheduler) emit(pt *ptask, n *nodeInfo) {
	s.stats.Decisions++
	pt.node = n
	d := decision{pt: pt, node: n}
	if pt.t.NodeId != "" && pt.t.PendingReason != "" {
		s.updates = append(s.updates, d)
	} else {
		s.assign = append(s.assign, d)
	}
}

// emitFree is emit for a task on no node (one of a group's tasks, not
// its pre-placed ones): it needs no look at the task itself, which at a
// million tasks is a cache miss each.
func (s *Scheduler) emitFree(pt *ptask, n *nodeInfo) {
	s.stats.Decisions++
	pt.node = n
	s.assign = append(s.assign, decision{pt: pt, node: n})
}

// leavePending records that pt stays pending for reason, writing the reason
// only when it changes.
func (s *Scheduler) leavePending(pt *ptask, reason string) {
	s.stats.Decisions++
	s.stats.LeftPending++
	pt.tried = s.capEpoch
	if reason == pt.t.PendingReason {
		s.wait(pt)
		return
	}
	s.stats.ReasonWrites++
	s.updates = append(s.updates, decision{pt: pt, reason: reason})
}

// ---------------------------------------------------------------- reasons

// explanation counts, over the nodes, the first filter each one fails.
type explanation struct {
	nodes       int
	counts      [numFilters]int
	constraints []int // by constraint index
	ports       []int // by port index
}

// explain says why g's remaining tasks fit nowhere.
func (s *Scheduler) explain(g *group) string {
	e := &s.turnBuf.explain
	*e = explanation{constraints: e.constraints[:0], ports: e.ports[:0]}
	for range g.pl.constraints {
		e.constraints = append(e.constraints, 0)
	}
	for range g.ports {
		e.ports = append(e.ports, 0)
	}
	for _, n := range s.order {
		f, d := s.check(g, n)
		e.nodes++
		switch f {
		case filterConstraint:
			e.constraints[d]++
		case filterHostPort:
			e.ports[d]++
		default:
			e.counts[f]++
		}
	}
	return e.text(g)
}

func (e *explanation) text(g *group) string {
	if e.nodes == 0 {
		return "no suitable node: the cluster has no nodes"
	}
	type item struct {
		n    int
		text string
	}
	var items []item
	add := func(n int, f filter, d int) {
		if n > 0 {
			noun := " node "
			if n != 1 {
				noun = " nodes "
			}
			items = append(items, item{n, strconv.Itoa(n) + noun + phrase(g, f, d, n != 1)})
		}
	}
	for f := filterGone; f < numFilters; f++ {
		switch f {
		case filterConstraint:
			for i, n := range e.constraints {
				add(n, f, i)
			}
		case filterHostPort:
			for i, n := range e.ports {
				add(n, f, i)
			}
		default:
			add(e.counts[f], f, 0)
		}
	}
	if len(items) == 0 {
		// Every node fits one more task: only a concurrent change can
		// cause this, and the next turn will see it.
		return "no suitable node: nodes changed while scheduling"
	}
	slices.SortStableFunc(items, func(a, b item) int { return cmp.Compare(b.n, a.n) })
	var b strings.Builder
	b.WriteString("no suitable node: ")
	for i, it := range items {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(it.text)
	}
	return b.String()
}

// phrase says what a node failing filter f lacks, after "1 node" or, when
// plural, after "3 nodes".
func phrase(g *group, f filter, d int, plural bool) string {
	pick := func(one, many string) string {
		if plural {
			return many
		}
		return one
	}
	switch f {
	case filterGone:
		return pick("is not in the cluster", "are not in the cluster")
	case filterNotReady:
		return pick("is not ready", "are not ready")
	case filterPaused:
		return pick("is paused", "are paused")
	case filterDrained:
		return pick("is drained", "are drained")
	case filterConstraint:
		return pick("fails", "fail") + " constraint " + g.pl.constraints[d].expr
	case filterCPU:
		return pick("lacks CPU", "lack CPU")
	case filterMemory:
		return pick("lacks memory", "lack memory")
	case filterMaxReplicas:
		return fmt.Sprintf("%s max replicas (%d) of the service", pick("has", "have"), g.maxReplicas)
	case filterHostPort:
		p := g.ports[d]
		proto := "tcp"
		if p.proto == api.PortConfig_UDP {
			proto = "udp"
		}
		return fmt.Sprintf("%s host port %d/%s in use", pick("has", "have"), p.port, proto)
	}
	return pick("fits", "fit")
}
