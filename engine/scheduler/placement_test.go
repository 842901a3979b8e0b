package scheduler_test

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/store"
)

func spreadSpec(cpu int64, descriptors ...string) *api.TaskSpec {
	ts := spec(cpu, 0)
	for _, d := range descriptors {
		ts.Placement.Preferences = append(ts.Placement.Preferences, &api.PlacementPreference{Spread: d})
	}
	return ts
}

// zoneCounts sums per-node counts by the nodes' zone label ("-" for nodes
// without one).
func (h *harness) zoneCounts(perNode map[string]int, key string) map[string]int {
	out := map[string]int{}
	for node, k := range perNode {
		v, ok := h.st.Node(node).GetSpec().GetLabels()[key]
		if !ok {
			v = "-"
		}
		out[v] += k
	}
	return out
}

// TestSpread: tasks spread evenly across the values of the preference,
// whatever the number of nodes behind each value; nodes lacking the label
// form their own group; tasks already running count; a value without room
// gives its share to the others; preferences nest.
func TestSpread(t *testing.T) {
	zoned := func() []*api.Node {
		return []*api.Node{
			mkNode("a1", labels("zone", "a", "rack", "r1")), mkNode("a2", labels("zone", "a", "rack", "r1")),
			mkNode("a3", labels("zone", "a", "rack", "r2")), mkNode("a4", labels("zone", "a", "rack", "r2")),
			mkNode("b1", labels("zone", "b", "rack", "r1")), mkNode("b2", labels("zone", "b", "rack", "r2")),
			mkNode("c1", labels("zone", "c", "rack", "r1")),
			mkNode("x1"),
		}
	}
	t.Run("even across values", func(t *testing.T) {
		h := newHarness(t)
		defer h.k.Activate()()
		h.addNodes(zoned()...)
		ts := spreadSpec(0, "node.labels.zone")
		h.addService("svc", ts)
		h.s.Start()
		ids := h.addTasks("svc", ts, 16)
		h.assertAssigned(ids...)
		per := h.perNode(ids)
		if got, want := h.zoneCounts(per, "zone"), map[string]int{"a": 4, "b": 4, "c": 4, "-": 4}; !maps.Equal(got, want) {
			t.Fatalf("per zone %v, want %v", got, want)
		}
		// Within a zone, least loaded: a's four nodes take one each.
		for _, n := range []string{"a1", "a2", "a3", "a4"} {
			if per[n] != 1 {
				t.Fatalf("per node %v, want one task on each node of zone a", per)
			}
		}
	})
	t.Run("running tasks count", func(t *testing.T) {
		h := newHarness(t)
		defer h.k.Activate()()
		h.addNodes(zoned()...)
		ts := spreadSpec(0, "node.labels.zone")
		h.addService("svc", ts)
		for range 3 {
			h.addRunning("svc", ts, "a1")
		}
		h.s.Start()
		ids := h.addTasks("svc", ts, 9)
		if got, want := h.zoneCounts(h.perNode(ids), "zone"), map[string]int{"b": 3, "c": 3, "-": 3}; !maps.Equal(got, want) {
			t.Fatalf("new tasks per zone %v, want %v (zone a holds 3 already)", got, want)
		}
	})
	t.Run("a full value gives its share away", func(t *testing.T) {
		h := newHarness(t)
		defer h.k.Activate()()
		nodes := zoned()
		nodes[6] = mkNode("c1", labels("zone", "c"), resources(1e9, 8*gib)) // room for one task
		h.addNodes(nodes...)
		ts := spreadSpec(1e9, "node.labels.zone")
		h.addService("svc", ts)
		h.s.Start()
		ids := h.addTasks("svc", ts, 13)
		if got, want := h.zoneCounts(h.perNode(ids), "zone"), map[string]int{"a": 4, "b": 4, "c": 1, "-": 4}; !maps.Equal(got, want) {
			t.Fatalf("per zone %v, want %v", got, want)
		}
	})
	t.Run("nested preferences", func(t *testing.T) {
		h := newHarness(t)
		defer h.k.Activate()()
		h.addNodes(zoned()[:6]...) // zones a and b only
		ts := spreadSpec(0, "node.labels.zone", "node.labels.rack")
		h.addService("svc", ts)
		h.s.Start()
		ids := h.addTasks("svc", ts, 8)
		per := h.perNode(ids)
		want := map[string]int{"a1": 1, "a2": 1, "a3": 1, "a4": 1, "b1": 2, "b2": 2}
		if !maps.Equal(per, want) {
			t.Fatalf("per node %v, want %v", per, want)
		}
	})
	t.Run("uneven total splits deterministically", func(t *testing.T) {
		h := newHarness(t)
		defer h.k.Activate()()
		h.addNodes(zoned()[:7]...)
		ts := spreadSpec(0, "node.labels.zone")
		h.addService("svc", ts)
		h.s.Start()
		ids := h.addTasks("svc", ts, 5)
		// Five tasks over three zones: 2, 2, 1, the extra ones going to the
		// first values in order.
		if got, want := h.zoneCounts(h.perNode(ids), "zone"), map[string]int{"a": 2, "b": 2, "c": 1}; !maps.Equal(got, want) {
			t.Fatalf("per zone %v, want %v", got, want)
		}
	})
}

// TestLeastLoaded: fewest tasks of the service first, then fewest tasks
// overall, then node ID order.
func TestLeastLoaded(t *testing.T) {
	t.Run("order", func(t *testing.T) {
		h := newHarness(t)
		defer h.k.Activate()()
		h.addNodes(mkNode("n1"), mkNode("n2"), mkNode("n3"))
		web, api := spec(0, 0), spec(0, 1)
		h.addService("web", web)
		h.addService("api", api)
		h.addRunning("web", web, "n1")
		h.addRunning("web", web, "n1")
		h.addRunning("web", web, "n2")
		h.addRunning("api", api, "n3")
		h.s.Start()
		ids := h.addTasks("api", api, 3)
		// n1 and n2 run no api task; n2 runs fewer tasks. Then all three
		// run one api task and n3 runs the fewest tasks.
		if got, want := h.placement(ids), []string{"n2", "n1", "n3"}; !slices.Equal(got, want) {
			t.Fatalf("placement %v, want %v", got, want)
		}
	})
	t.Run("even distribution", func(t *testing.T) {
		h := newHarness(t)
		defer h.k.Activate()()
		var nodes []*api.Node
		for _, id := range []string{"n01", "n02", "n03", "n04", "n05", "n06", "n07", "n08", "n09", "n10"} {
			nodes = append(nodes, mkNode(id))
		}
		h.addNodes(nodes...)
		ts := spec(1e8, 1<<20)
		h.addService("svc", ts)
		h.s.Start()
		ids := h.addTasks("svc", ts, 25)
		per := h.perNode(ids)
		for i, id := range sortedKeys(per) {
			want := 2
			if i < 5 {
				want = 3 // ties go to the lowest IDs
			}
			if per[id] != want {
				t.Fatalf("per node %v: %s has %d, want %d", per, id, per[id], want)
			}
		}
	})
}

// TestMaxReplicas: at most max_replicas tasks of the service per node,
// counting those already running.
func TestMaxReplicas(t *testing.T) {
	h := newHarness(t)
	defer h.k.Activate()()
	h.addNodes(mkNode("n1"), mkNode("n2"), mkNode("n3"))
	ts := spec(0, 0)
	ts.Placement.MaxReplicas = 2
	h.addService("svc", ts)
	h.addRunning("svc", ts, "n1")
	h.addRunning("svc", ts, "n1")
	h.s.Start()
	ids := h.addTasks("svc", ts, 6)
	per := h.perNode(ids)
	if want := map[string]int{"n2": 2, "n3": 2, "": 2}; !maps.Equal(per, want) {
		t.Fatalf("per node %v, want %v", per, want)
	}
	h.assertPending("no suitable node: 3 nodes have max replicas (2) of the service", ids[4:]...)
	// Another service is not limited by this one's tasks.
	other := spec(0, 0)
	other.Placement.MaxReplicas = 1
	h.addService("other", other)
	h.assertAssigned(h.addTasks("other", other, 3)...)
}

// TestHostPorts: a node cannot host two tasks publishing the same host
// port and protocol.
func TestHostPorts(t *testing.T) {
	h := newHarness(t)
	defer h.k.Activate()()
	h.addNodes(mkNode("n1"), mkNode("n2"), mkNode("n3"))
	ts := spec(0, 0)
	h.addService("web", ts)
	h.addService("dns", ts)
	h.addRunning("other", ts, "n1", hostPortCfg(8080, api.PortConfig_TCP))
	h.s.Start()
	var web, dns []string
	h.update(func(tx *store.Tx) error {
		for range 3 {
			t := h.pendingTask("web", ts, "")
			t.Endpoint = &api.Endpoint{Ports: []*api.PortConfig{
				hostPortCfg(8080, api.PortConfig_TCP),
				{TargetPort: 9000, PublishedPort: 30000, PublishMode: api.PortConfig_INGRESS}, // not a host port
			}}
			web = append(web, t.Id)
			if err := tx.Create(t); err != nil {
				return err
			}
		}
		t := h.pendingTask("dns", ts, "")
		t.Endpoint = &api.Endpoint{Ports: []*api.PortConfig{hostPortCfg(8080, api.PortConfig_UDP)}}
		dns = append(dns, t.Id)
		return tx.Create(t)
	})
	per := h.perNode(web)
	if want := map[string]int{"n2": 1, "n3": 1, "": 1}; !maps.Equal(per, want) {
		t.Fatalf("web per node %v, want %v", per, want)
	}
	h.assertPending("no suitable node: 3 nodes have host port 8080/tcp in use", web[2])
	h.assertAssigned(dns...) // UDP 8080 is another port
	// The port frees when the task on n1 ends.
	running := h.st.TasksByNode("n1")[0].Id
	h.setStatus(running, api.TaskState_TASK_STATE_COMPLETE)
	h.assertAssigned(web[2])
	if got := h.nodeOf(web[2]); got != "n1" {
		t.Fatalf("web task on %s, want n1", got)
	}
}

// TestFailureBackoff: a node where five of a service's tasks failed within
// five minutes goes to the back of the list for that service, until the
// failures age out.
func TestFailureBackoff(t *testing.T) {
	h := newHarness(t)
	defer h.k.Activate()()
	h.addNodes(mkNode("n1"), mkNode("n2"))
	ts := spec(0, 0)
	h.addService("svc", ts)
	h.addService("other", ts)
	h.s.Start()
	fail := func(k int, st api.TaskState) {
		for range k {
			id := h.addRunning("svc", ts, "n1")
			h.setStatus(id, st)
			h.advance(10 * time.Second)
		}
	}
	h.addRunning("svc", ts, "n2")
	// Four failures: not yet in back-off, n1 (idle) is preferred.
	fail(4, api.TaskState_TASK_STATE_FAILED)
	first := h.addTasks("svc", ts, 1)
	if got := h.nodeOf(first[0]); got != "n1" {
		t.Fatalf("after 4 failures: task on %s, want n1", got)
	}
	h.setStatus(first[0], api.TaskState_TASK_STATE_SHUTDOWN)
	// The fifth (a rejection counts too): n1 goes last for svc.
	fail(1, api.TaskState_TASK_STATE_REJECTED)
	second := h.addTasks("svc", ts, 2)
	if got := h.placement(second); !slices.Equal(got, []string{"n2", "n2"}) {
		t.Fatalf("after 5 failures: placement %v, want both on n2", got)
	}
	// Other services do not care.
	if id := h.addTasks("other", ts, 1)[0]; h.nodeOf(id) != "n1" {
		t.Fatalf("other service's task on %s, want n1", h.nodeOf(id))
	}
	// Back-off is a preference, not a filter: n1 still takes tasks when
	// nothing else can.
	h.setNode("n2", func(n *api.Node) { n.Spec.Availability = api.NodeAvailability_NODE_AVAILABILITY_DRAIN })
	if id := h.addTasks("svc", ts, 1)[0]; h.nodeOf(id) != "n1" {
		t.Fatalf("with n2 drained: task on %s, want n1", h.nodeOf(id))
	}
	h.setNode("n2", func(n *api.Node) { n.Spec.Availability = api.NodeAvailability_NODE_AVAILABILITY_ACTIVE })
	// Five minutes after the oldest of the five, n1 recovers.
	h.advance(5 * time.Minute)
	third := h.addTasks("svc", ts, 1)
	if got := h.nodeOf(third[0]); got != "n1" {
		t.Fatalf("after the window: task on %s, want n1 (fewer tasks of svc)", got)
	}
}
