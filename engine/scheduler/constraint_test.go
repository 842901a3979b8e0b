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

func TestFailureLog(t *testing.T) {
	const min = int64(60e9)
	var f failureLog
	for i := range int64(4) {
		f.add(i * min)
	}
	if f.backoff(4 * min) {
		t.Fatal("back-off after 4 failures")
	}
	f.add(4 * min)
	if !f.backoff(4*min) || !f.backoff(5*min-1) {
		t.Fatal("no back-off after 5 failures in 5 minutes")
	}
	if f.backoff(5 * min) {
		t.Fatal("back-off once the oldest failure is 5 minutes old")
	}
	f.add(5 * min) // the last five now span 1..5 minutes
	if !f.backoff(5 * min) {
		t.Fatal("no back-off with 5 failures in the window")
	}
	if f.latest() != 5*min {
		t.Fatalf("latest %d", f.latest())
	}

	// Logs of nodes whose failures aged out are pruned as others come.
	svc := &serviceInfo{}
	for i := range 200 {
		svc.recordFailure(&nodeInfo{idx: int32(i)}, int64(i)*min)
	}
	if len(svc.failures) > 70 {
		t.Fatalf("%d failure logs kept, want the stale ones pruned", len(svc.failures))
	}
}

func TestSameFootprint(t *testing.T) {
	spec := &api.TaskSpec{Reservations: &api.Resources{NanoCpus: 1, MemoryBytes: 2}}
	ep := &api.Endpoint{Ports: []*api.PortConfig{{PublishedPort: 80, PublishMode: api.PortConfig_HOST}}}
	base := &api.Task{ServiceId: "s", Spec: spec, Endpoint: ep}
	cases := []struct {
		name string
		t    *api.Task
		want bool
	}{
		{"same pointers", &api.Task{ServiceId: "s", Spec: spec, Endpoint: ep}, true},
		{"equal copies", &api.Task{ServiceId: "s",
			Spec:     &api.TaskSpec{Reservations: &api.Resources{NanoCpus: 1, MemoryBytes: 2}},
			Endpoint: &api.Endpoint{Ports: []*api.PortConfig{{TargetPort: 1}, {PublishedPort: 80, PublishMode: api.PortConfig_HOST}}}}, true},
		{"other service", &api.Task{ServiceId: "t", Spec: spec, Endpoint: ep}, false},
		{"other reservation", &api.Task{ServiceId: "s", Spec: &api.TaskSpec{}, Endpoint: ep}, false},
		{"no ports", &api.Task{ServiceId: "s", Spec: spec}, false},
		{"other protocol", &api.Task{ServiceId: "s", Spec: spec, Endpoint: &api.Endpoint{Ports: []*api.PortConfig{
			{PublishedPort: 80, PublishMode: api.PortConfig_HOST, Protocol: api.PortConfig_UDP}}}}, false},
	}
	for _, tc := range cases {
		if got := sameFootprint(base, tc.t); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
