package scheduler_test

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/scheduler"
	"github.com/swarmsim/swarmsim/engine/store"
)

const gib = 1 << 30

var (
	down         = state(api.NodeState_NODE_STATE_DOWN)
	disconnected = state(api.NodeState_NODE_STATE_DISCONNECTED)
	paused       = availability(api.NodeAvailability_NODE_AVAILABILITY_PAUSE)
	drained      = availability(api.NodeAvailability_NODE_AVAILABILITY_DRAIN)
)

// TestFilters places one task on a small cluster per case: it must land on
// one of the nodes the filters leave, or stay pending with the reason that
// says which filter failed where.
func TestFilters(t *testing.T) {
	cases := []struct {
		name   string
		nodes  []*api.Node
		spec   *api.TaskSpec
		want   []string // nodes the task may land on; none: it stays pending
		reason string
	}{
		{name: "ready node only",
			nodes: []*api.Node{mkNode("n1", down), mkNode("n2"), mkNode("n3", disconnected)},
			spec:  spec(0, 0), want: []string{"n2"}},
		{name: "no ready node",
			nodes: []*api.Node{mkNode("n1", down), mkNode("n2", state(api.NodeState_NODE_STATE_UNKNOWN))},
			spec:  spec(0, 0), reason: "no suitable node: 2 nodes are not ready"},
		{name: "active node only",
			nodes: []*api.Node{mkNode("n1", paused), mkNode("n2", drained), mkNode("n3")},
			spec:  spec(0, 0), want: []string{"n3"}},
		{name: "paused and drained",
			nodes: []*api.Node{mkNode("n1", paused), mkNode("n2", drained)},
			spec:  spec(0, 0), reason: "no suitable node: 1 node is paused, 1 node is drained"},
		{name: "cpu fits",
			nodes: []*api.Node{mkNode("n1", resources(1e9, 8*gib)), mkNode("n2")},
			spec:  spec(2e9, 0), want: []string{"n2"}},
		{name: "cpu fits nowhere",
			nodes: []*api.Node{mkNode("n1", resources(1e9, 8*gib))},
			spec:  spec(2e9, 0), reason: "no suitable node: 1 node lacks CPU"},
		{name: "memory fits",
			nodes: []*api.Node{mkNode("n1", resources(4e9, gib)), mkNode("n2")},
			spec:  spec(0, 2*gib), want: []string{"n2"}},
		{name: "memory fits nowhere",
			nodes: []*api.Node{mkNode("n1", resources(4e9, gib)), mkNode("n2", resources(4e9, gib))},
			spec:  spec(0, 2*gib), reason: "no suitable node: 2 nodes lack memory"},
		{name: "exact fit",
			nodes: []*api.Node{mkNode("n1", resources(2e9, 2*gib))},
			spec:  spec(2e9, 2*gib), want: []string{"n1"}},
		{name: "node without resources takes tasks that reserve nothing",
			nodes: []*api.Node{mkNode("n1", func(n *api.Node) { n.Description.Resources = nil })},
			spec:  spec(0, 0), want: []string{"n1"}},
		{name: "node.id",
			nodes: []*api.Node{mkNode("n1"), mkNode("n2"), mkNode("n3")},
			spec:  spec(0, 0, "node.id==n2"), want: []string{"n2"}},
		{name: "node.hostname !=",
			nodes: []*api.Node{mkNode("n1"), mkNode("n2")},
			spec:  spec(0, 0, "node.hostname!=host-n1"), want: []string{"n2"}},
		{name: "node.role",
			nodes: []*api.Node{mkNode("n1"), mkNode("n2", manager), mkNode("n3")},
			spec:  spec(0, 0, "node.role==manager"), want: []string{"n2"}},
		{name: "node.role !=",
			nodes: []*api.Node{mkNode("n1", manager), mkNode("n2")},
			spec:  spec(0, 0, "node.role!=manager"), want: []string{"n2"}},
		{name: "node label",
			nodes: []*api.Node{mkNode("n1", labels("zone", "b")), mkNode("n2", labels("zone", "a"))},
			spec:  spec(0, 0, "node.labels.zone==a"), want: []string{"n2"}},
		{name: "engine label",
			nodes: []*api.Node{mkNode("n1", engineLabels("os", "windows")), mkNode("n2", engineLabels("os", "linux"))},
			spec:  spec(0, 0, "engine.labels.os==linux"), want: []string{"n2"}},
		{name: "every constraint must hold",
			nodes: []*api.Node{
				mkNode("n1", labels("zone", "a"), engineLabels("os", "windows")),
				mkNode("n2", labels("zone", "a"), engineLabels("os", "linux")),
				mkNode("n3", labels("zone", "b"), engineLabels("os", "linux")),
			},
			spec: spec(0, 0, "node.labels.zone==a", "engine.labels.os==linux"), want: []string{"n2"}},
		{name: "a missing label satisfies !=",
			nodes: []*api.Node{mkNode("n1", labels("zone", "a")), mkNode("n2")},
			spec:  spec(0, 0, "node.labels.zone!=a"), want: []string{"n2"}},
		{name: "a missing label fails ==",
			nodes:  []*api.Node{mkNode("n1")},
			spec:   spec(0, 0, "node.labels.zone==a"),
			reason: "no suitable node: 1 node fails constraint node.labels.zone==a"},
		{name: "values compare without case, keys' fixed part too",
			nodes: []*api.Node{mkNode("n1", labels("zone", "b")), mkNode("n2", labels("zone", "A"))},
			spec:  spec(0, 0, "Node.Labels.zone == a"), want: []string{"n2"}},
		{name: "label names keep their case",
			nodes:  []*api.Node{mkNode("n1", labels("Zone", "a"))},
			spec:   spec(0, 0, "node.labels.zone==a"),
			reason: "no suitable node: 1 node fails constraint node.labels.zone==a"},
		{name: "first failing filter counts",
			nodes: []*api.Node{
				mkNode("n1", down, labels("zone", "b")),            // not ready first
				mkNode("n2", labels("zone", "b")),                  // constraint
				mkNode("n3", labels("zone", "a"), resources(0, 0)), // resources
			},
			spec:   spec(1e9, 0, "node.labels.zone==a"),
			reason: "no suitable node: 1 node is not ready, 1 node fails constraint node.labels.zone==a, 1 node lacks CPU"},
		{name: "removed nodes are not in the cluster",
			nodes: []*api.Node{mkNode("n1", func(n *api.Node) { n.Removed = true }), mkNode("n2", down)},
			spec:  spec(0, 0), reason: "no suitable node: 1 node is not ready"},
		{name: "no nodes",
			spec: spec(0, 0), reason: "no suitable node: the cluster has no nodes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			defer h.k.Activate()()
			if len(tc.nodes) > 0 {
				h.addNodes(tc.nodes...)
			}
			h.addService("svc", tc.spec)
			h.s.Start()
			id := h.addTasks("svc", tc.spec, 1)[0]
			if len(tc.want) == 0 {
				h.assertPending(tc.reason, id)
				return
			}
			h.assertAssigned(id)
			if got := h.nodeOf(id); !slices.Contains(tc.want, got) {
				t.Fatalf("task on %s, want one of %v", got, tc.want)
			}
		})
	}
}

// TestMalformedPlacement: a service whose placement does not parse leaves
// its tasks pending, with a reason that names the bad expression, and
// ValidatePlacement refuses it.
func TestMalformedPlacement(t *testing.T) {
	bad := []string{
		"node.labels.zone", "node.labels.zone=a", "node.labels.zone~a", "==a", "node.labels.zone==",
		"node.labels.zone==a==b", "node.labels.==a", "node.colour==red", "node.role==boss",
		"node.labels.zone!=a!=b", "node.id >= 3",
	}
	for _, expr := range bad {
		t.Run(expr, func(t *testing.T) {
			p := &api.Placement{Constraints: []string{"node.labels.zone==a", expr}}
			err := scheduler.ValidatePlacement(p)
			if !errors.Is(err, scheduler.ErrInvalidPlacement) || !strings.Contains(err.Error(), strconv.Quote(expr)) {
				t.Fatalf("ValidatePlacement(%q) = %v, want ErrInvalidPlacement naming it", expr, err)
			}
			h := newHarness(t)
			defer h.k.Activate()()
			h.addNodes(mkNode("n1", labels("zone", "a")))
			ts := spec(0, 0, p.Constraints...)
			h.addService("svc", ts)
			h.s.Start()
			id := h.addTasks("svc", ts, 1)[0]
			h.assertPending(err.Error(), id)
			if !strings.Contains(h.reason(id), strconv.Quote(expr)) {
				t.Fatalf("reason %q does not name %q", h.reason(id), expr)
			}
		})
	}
	t.Run("spread preference", func(t *testing.T) {
		p := &api.Placement{Preferences: []*api.PlacementPreference{{Spread: "node.zone"}}}
		err := scheduler.ValidatePlacement(p)
		if !errors.Is(err, scheduler.ErrInvalidPlacement) || !strings.Contains(err.Error(), `"node.zone"`) {
			t.Fatalf("ValidatePlacement = %v, want ErrInvalidPlacement naming node.zone", err)
		}
		h := newHarness(t)
		defer h.k.Activate()()
		h.addNodes(mkNode("n1"))
		ts := spec(0, 0)
		ts.Placement = p
		h.addService("svc", ts)
		h.s.Start()
		h.assertPending(err.Error(), h.addTasks("svc", ts, 2)...)
	})
}

// TestConstraintCache: a node change that matters to constraints is seen
// at once, though results are cached per (placement, node).
func TestConstraintCache(t *testing.T) {
	h := newHarness(t)
	defer h.k.Activate()()
	h.addNodes(mkNode("n1", labels("zone", "a")), mkNode("n2", labels("zone", "b")))
	ts := spec(0, 0, "node.labels.zone==a")
	h.addService("svc", ts)
	h.s.Start()
	first := h.addTasks("svc", ts, 2)
	if got := h.placement(first); !slices.Equal(got, []string{"n1", "n1"}) {
		t.Fatalf("placement %v, want both on n1", got)
	}
	h.setNode("n1", func(n *api.Node) { n.Spec.Labels["zone"] = "b" })
	h.setNode("n2", func(n *api.Node) { n.Spec.Labels["zone"] = "a" })
	second := h.addTasks("svc", ts, 2)
	if got := h.placement(second); !slices.Equal(got, []string{"n2", "n2"}) {
		t.Fatalf("after relabelling: placement %v, want both on n2", got)
	}
	// A node that leaves frees its slot in the per-node caches; the next
	// node takes it and must not inherit the verdict. n9 passes the
	// constraint (and is cached so) but has no CPU; once it is gone, n10,
	// idle and outside the zone, must not look like a fit.
	ts2 := spec(1e9, 0, "node.labels.zone==a")
	h.addService("svc2", ts2)
	h.addNodes(mkNode("n9", labels("zone", "a"), resources(0, gib)))
	if id := h.addTasks("svc2", ts2, 1)[0]; h.nodeOf(id) != "n2" {
		t.Fatalf("task on %q, want n2", h.nodeOf(id))
	}
	h.update(func(tx *store.Tx) error { return tx.Delete(store.KindNode, "n9", 0) })
	h.addNodes(mkNode("n10", labels("zone", "b")))
	if id := h.addTasks("svc2", ts2, 1)[0]; h.nodeOf(id) != "n2" {
		t.Fatalf("task on %q, want n2: a new node inherited a gone node's cached verdict", h.nodeOf(id))
	}
}
