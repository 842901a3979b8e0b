package scheduler

import (
	"testing"

	"github.com/swarmsim/swarmsim/engine/api"
)

func testNode(id string) *api.Node {
	return &api.Node{
		Id:          id,
		Role:        api.NodeRole_NODE_ROLE_MANAGER,
		Spec:        &api.NodeSpec{Name: id, Labels: map[string]string{"zone": "Eu-1", "empty": ""}},
		Description: &api.NodeDescription{Hostname: "host-" + id, EngineLabels: map[string]string{"os": "linux"}},
	}
}

// TestConstraintMatch checks parsing and matching against nodes directly.
func TestConstraintMatch(t *testing.T) {
	n := testNode("abc")
	cases := []struct {
		expr string
		want bool
	}{
		{"node.id==abc", true},
		{"node.id!=abc", false},
		{"node.hostname==HOST-ABC", true},
		{"node.role==manager", true},
		{"node.role==worker", false},
		{"node.role!=worker", true},
		{"node.labels.zone==eu-1", true},
		{"node.labels.zone!=eu-1", false},
		{"node.labels.zone==eu-2", false},
		{"node.labels.rack==r1", false},
		{"node.labels.rack!=r1", true},
		{"node.labels.empty!=x", true},
		{"engine.labels.os==linux", true},
		{"engine.labels.os!=linux", false},
		{"ENGINE.LABELS.os==LINUX", true},
		{"  node.labels.zone   ==   eu-1  ", true},
	}
	for _, tc := range cases {
		c, err := parseConstraint(tc.expr)
		if err != nil {
			t.Fatalf("%q: %v", tc.expr, err)
		}
		if got := c.match(n); got != tc.want {
			t.Errorf("%q on node: %v, want %v", tc.expr, got, tc.want)
		}
		ac, _ := api.ParseConstraint(tc.expr)
		if got := ac.Matches(n); got != tc.want {
			t.Errorf("%q: api.Constraint.Matches says %v, want %v (the orchestrator and scheduler must agree)", tc.expr, got, tc.want)
		}
	}
}
