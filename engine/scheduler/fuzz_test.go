package scheduler

import (
	"errors"
	"testing"

	"github.com/swarmsim/swarmsim/engine/api"
)

// FuzzPlacement feeds arbitrary constraints and spread preferences (user
// input, through the control API) to the placement parser: it must not
// panic, must accept exactly what api.ParseConstraint accepts, and must
// match nodes exactly as api.Constraint.Matches does, so that the
// orchestrator (which uses api's matcher for global services) and the
// scheduler never disagree about a node.
func FuzzPlacement(f *testing.F) {
	f.Add("node.labels.zone==a", "node.labels.zone", "a")
	f.Add("engine.labels.os != linux", "engine.labels.os", "Linux")
	f.Add("node.role==MANAGER", "node.role", "")
	f.Add("node.hostname==host-abc", "node.hostname", "x")
	f.Add("node.labels.==a", "node.labels.", "")
	f.Add("a==b==c", "node.id", "b")
	f.Fuzz(func(t *testing.T, expr, pref, value string) {
		n := &api.Node{
			Id:   "abc",
			Spec: &api.NodeSpec{Labels: map[string]string{"zone": value, "rack": "r1"}},
			Description: &api.NodeDescription{
				Hostname:     "host-" + value,
				EngineLabels: map[string]string{"os": value},
			},
		}
		c, err := parseConstraint(expr)
		ac, aerr := api.ParseConstraint(expr)
		if (err == nil) != (aerr == nil) {
			t.Fatalf("%q: scheduler says %v, api says %v", expr, err, aerr)
		}
		if err == nil && c.match(n) != ac.Matches(n) {
			t.Fatalf("%q on value %q: scheduler %v, api %v", expr, value, c.match(n), ac.Matches(n))
		}
		if err != nil && !errors.Is(err, ErrInvalidPlacement) {
			t.Fatalf("%q: error %v does not wrap ErrInvalidPlacement", expr, err)
		}
		p := &api.Placement{Constraints: []string{expr}, Preferences: []*api.PlacementPreference{{Spread: pref}}}
		pl, perr := compilePlacement(p)
		if perr == nil {
			ni := &nodeInfo{n: n, gen: 1}
			if got, want := pl.check(ni) < 0, c.match(n); got != want {
				t.Fatalf("%q: cached check %v, match %v", expr, got, want)
			}
			for _, d := range pl.spread {
				d.value(n)
			}
		}
	})
}
