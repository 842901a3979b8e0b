package dispatcher

import (
	"testing"

	"github.com/swarmsim/swarmsim/engine/api"
)

// Answers share one pointer per role, pointing at that role; a role the
// dispatcher does not know gets a pointer of its own.
func TestRolePtr(t *testing.T) {
	d := New(Deps{})
	for _, r := range []api.NodeRole{api.NodeRole_NODE_ROLE_WORKER, api.NodeRole_NODE_ROLE_MANAGER} {
		p := d.rolePtr(r)
		if *p != r || d.rolePtr(r) != p {
			t.Errorf("role %v: pointer to %v, shared %v", r, *p, d.rolePtr(r) == p)
		}
	}
	if d.rolePtr(api.NodeRole_NODE_ROLE_WORKER) == d.rolePtr(api.NodeRole_NODE_ROLE_MANAGER) {
		t.Error("two roles share a pointer")
	}
	odd := api.NodeRole(7)
	if p := d.rolePtr(odd); *p != odd || p == d.rolePtr(odd) {
		t.Errorf("unknown role: pointer to %v", *p)
	}
}
