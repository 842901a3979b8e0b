package scheduler

import (
	"maps"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/swarmsim/swarmsim/engine/api"
)

// nodeInfo is the scheduler's view of one node: the node as stored, and
// what the tasks on it (and the assignments to it still in flight)
// reserve.
type nodeInfo struct {
	id string
	// idx is a small dense number for per-node arrays (the constraint
	// caches); freed numbers are reused, which gen makes safe.
	idx int32
	// n is the stored node; nil for a placeholder standing for a node the
	// store does not hold (a task names it), which is never a candidate.
	n *api.Node
	// gen changes whenever what constraints read (ID, hostname, role,
	// labels) may have changed. Values come from one counter for all
	// nodes, so a cache entry left by a node whose idx was reused never
	// matches.
	gen uint64

	cpuCap, memCap   int64
	cpuUsed, memUsed int64
	tasks            int32              // tasks reserving on the node
	ports            map[hostPort]int32 // host-mode published ports in use
}

// hostPort is a host-mode published port.
type hostPort struct {
	port  uint32
	proto api.PortConfig_Protocol
}

// filter names the check a node failed, for pending reasons. The order is
// the order checks run in: the first failing one is counted.
type filter uint8

const (
	filterPass filter = iota
	filterGone        // the node is not in the store, or was removed
	filterNotReady
	filterPaused
	filterDrained
	filterConstraint
	filterCPU
	filterMemory
	filterMaxReplicas
	filterHostPort
	numFilters
)

// availability is the static part of the filters: whether the node can take
// any task at all.
func (n *nodeInfo) availability() filter {
	switch {
	case n.n == nil || n.n.Removed:
		return filterGone
	case n.n.GetStatus().GetState() != api.NodeState_NODE_STATE_READY:
		return filterNotReady
	}
	switch n.n.GetSpec().GetAvailability() {
	case api.NodeAvailability_NODE_AVAILABILITY_ACTIVE:
		return filterPass
	case api.NodeAvailability_NODE_AVAILABILITY_PAUSE:
		return filterPaused
	default:
		return filterDrained
	}
}

// constraintInputsEqual reports whether two versions of a node look the
// same to constraints and spread preferences.
func constraintInputsEqual(a, b *api.Node) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Role != b.Role || a.Id != b.Id {
		return false
	}
	if a.Spec != b.Spec && !maps.Equal(a.GetSpec().GetLabels(), b.GetSpec().GetLabels()) {
		return false
	}
	if a.Description != b.Description {
		da, db := a.GetDescription(), b.GetDescription()
		if da.GetHostname() != db.GetHostname() || !maps.Equal(da.GetEngineLabels(), db.GetEngineLabels()) {
			return false
		}
	}
	return true
}

// reserves reports whether t holds resources on its node: it is placed, not
// past RUNNING, and meant to run. A PENDING task that names its node (a
// global service's) does not reserve yet: the scheduler checks that it fits
// and the reservation starts with its assignment.
func reserves(t *api.Task) bool {
	if t == nil || t.NodeId == "" || t.DesiredState > api.TaskState_TASK_STATE_RUNNING {
		return false
	}
	st := t.GetStatus().GetState()
	return st >= api.TaskState_TASK_STATE_ASSIGNED && st <= api.TaskState_TASK_STATE_RUNNING
}

// schedulable reports whether t waits for the scheduler.
func schedulable(t *api.Task) bool {
	return t != nil && t.GetStatus().GetState() == api.TaskState_TASK_STATE_PENDING &&
		t.DesiredState <= api.TaskState_TASK_STATE_RUNNING
}

// sameFootprint reports whether a and b reserve the same things on a node.
func sameFootprint(a, b *api.Task) bool {
	if a.ServiceId != b.ServiceId {
		return false
	}
	if a.Spec != b.Spec {
		ra, rb := a.GetSpec().GetReservations(), b.GetSpec().GetReservations()
		if ra.GetNanoCpus() != rb.GetNanoCpus() || ra.GetMemoryBytes() != rb.GetMemoryBytes() {
			return false
		}
	}
	return samePorts(a, b)
}

// samePlacementInput reports whether b, a newer version of a schedulable
// task a, would be placed exactly as a: only its pending reason, meta or
// status details changed. Specs and endpoints are compared by value when
// their pointers differ, since a full update (our own pending reason
// write) decodes new ones.
func samePlacementInput(a, b *api.Task) bool {
	if a.NodeId != b.NodeId || a.ServiceId != b.ServiceId || a.DesiredState != b.DesiredState ||
		a.GetStatus().GetState() != b.GetStatus().GetState() || !samePorts(a, b) {
		return false
	}
	return a.Spec == b.Spec || proto.Equal(a.Spec, b.Spec)
}

// samePorts reports whether a and b publish the same host ports.
func samePorts(a, b *api.Task) bool {
	if a.Endpoint == b.Endpoint {
		return true
	}
	pa, pb := a.GetEndpoint().GetPorts(), b.GetEndpoint().GetPorts()
	var ia, ib int
	for {
		var ha, hb hostPort
		var oka, okb bool
		ha, ia, oka = nextHostPort(pa, ia)
		hb, ib, okb = nextHostPort(pb, ib)
		if oka != okb || ha != hb {
			return false
		}
		if !oka {
			return true
		}
	}
}

// nextHostPort returns the first host-mode published port of ports at or
// after i, and the index after it.
func nextHostPort(ports []*api.PortConfig, i int) (hostPort, int, bool) {
	for ; i < len(ports); i++ {
		p := ports[i]
		if p.GetPublishMode() == api.PortConfig_HOST && p.GetPublishedPort() != 0 {
			return hostPort{p.GetPublishedPort(), p.GetProtocol()}, i + 1, true
		}
	}
	return hostPort{}, i, false
}

// hostPorts appends the host-mode published ports of t to dst.
func hostPorts(dst []hostPort, t *api.Task) []hostPort {
	ports := t.GetEndpoint().GetPorts()
	for i := 0; ; {
		var hp hostPort
		var ok bool
		if hp, i, ok = nextHostPort(ports, i); !ok {
			return dst
		}
		dst = append(dst, hp)
	}
}

// A node where maxFailures tasks of a service failed (or were rejected)
// within FailureWindow goes to the back of the candidates for that
// service: it may be missing an image, a mount or a device the service
// needs, and placing there again would fail again.
const (
	FailureWindow      = 5 * time.Minute
	maxFailures        = 5
	failureWindowNanos = int64(FailureWindow)
)

// failureLog keeps the times of the last maxFailures failures of one
// service's tasks on one node.
type failureLog struct {
	at   [maxFailures]int64
	n    int // entries used
	next int // ring position of the next write (the oldest when full)
}

func (f *failureLog) add(t int64) {
	f.at[f.next] = t
	f.next = (f.next + 1) % maxFailures
	if f.n < maxFailures {
		f.n++
	}
}

// backoff reports whether maxFailures failures happened within the window
// before now.
func (f *failureLog) backoff(now int64) bool {
	return f.n == maxFailures && now-f.at[f.next] < failureWindowNanos
}

// latest returns the time of the most recent failure.
func (f *failureLog) latest() int64 {
	return f.at[(f.next+maxFailures-1)%maxFailures]
}

// serviceInfo is what the scheduler keeps per service: task counts per
// node, parsed placements, and recent failures per node.
type serviceInfo struct {
	id string
	// counts holds the service's reserving tasks (and in-flight
	// assignments) per node; total is their sum.
	counts map[*nodeInfo]int32
	total  int
	// placements caches parsed placements by placementKey.
	placements map[string]*placement
	failures   map[*nodeInfo]*failureLog
	// pruneAt is the size of failures that triggers the next pruning of
	// stale logs.
	pruneAt int
	deleted bool // the service was deleted; drop once nothing refers to it
}

func (s *serviceInfo) count(n *nodeInfo) int32 { return s.counts[n] }

func (s *serviceInfo) add(n *nodeInfo, d int32) {
	if d == 0 {
		return
	}
	c := s.counts[n] + d
	if c == 0 {
		delete(s.counts, n)
	} else {
		s.counts[n] = c
	}
	s.total += int(d)
}

// maxPlacements bounds the parsed placements cached per service: a rolling
// update holds two; more means churn, and the cache starts over.
const maxPlacements = 4

// placement returns the parsed placement of spec, parsing it once per
// service and placement text.
func (s *serviceInfo) placement(p *api.Placement) *placement {
	key := placementKey(p)
	if pl := s.placements[key]; pl != nil {
		return pl
	}
	if len(s.placements) >= maxPlacements {
		clear(s.placements)
	}
	pl, _ := compilePlacement(p)
	if s.placements == nil {
		s.placements = make(map[string]*placement)
	}
	s.placements[key] = pl
	return pl
}

// recordFailure notes a failure of one of the service's tasks on n at now.
func (s *serviceInfo) recordFailure(n *nodeInfo, now int64) {
	if s.failures == nil {
		s.failures = make(map[*nodeInfo]*failureLog)
		s.pruneAt = 64
	}
	f := s.failures[n]
	if f == nil {
		if len(s.failures) >= s.pruneAt {
			s.pruneFailures(now)
		}
		f = &failureLog{}
		s.failures[n] = f
	}
	f.add(now)
}

// pruneFailures forgets logs whose latest failure left the window.
func (s *serviceInfo) pruneFailures(now int64) {
	for n, f := range s.failures {
		if now-f.latest() >= failureWindowNanos {
			delete(s.failures, n)
		}
	}
	s.pruneAt = max(64, 2*len(s.failures))
}

// backoff reports whether n is in back-off for the service at now.
func (s *serviceInfo) backoff(n *nodeInfo, now int64) bool {
	if len(s.failures) == 0 {
		return false
	}
	f := s.failures[n]
	return f != nil && f.backoff(now)
}
