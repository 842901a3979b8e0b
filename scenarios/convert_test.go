package scenarios

import (
	"testing"

	"github.com/swarmsim/swarmsim/engine/api"
)

// TestRollbackGuard: a rollback asked again after an ambiguous failure is
// done when the service shows the swap the first attempt asked for, and
// not when it shows the spec that attempt saw (nothing applied) or the
// swap undone.
func TestRollbackGuard(t *testing.T) {
	v1 := &api.ServiceSpec{Name: "web", Task: &api.TaskSpec{Container: &api.ContainerSpec{Image: "web:1"}}}
	v2 := &api.ServiceSpec{Name: "web", Task: &api.TaskSpec{Container: &api.ContainerSpec{Image: "web:2"}}}
	before := &api.Service{Spec: v2, PreviousSpec: v1}
	rolledBack := &api.Service{Spec: v1, PreviousSpec: v2}

	var g rollbackGuard
	if g.applied(before, false) {
		t.Fatal("a first attempt counted as applied")
	}
	if g.applied(before, true) {
		t.Fatal("a retry that finds the spec unchanged counted as applied")
	}
	if !g.applied(rolledBack, true) {
		t.Fatal("a retry that finds the swap made did not count as applied")
	}
	var none rollbackGuard
	none.applied(&api.Service{Spec: v1}, false)
	if none.applied(&api.Service{Spec: v1}, true) {
		t.Fatal("a service with no previous spec counted as rolled back")
	}
}
