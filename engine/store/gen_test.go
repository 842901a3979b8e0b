package store

import (
	"fmt"

	"pgregory.net/rapid"

	"github.com/swarmsim/swarmsim/engine/api"
)

// chooser draws the random choices of a generated workload: rapid in
// property tests (so failures shrink), a seeded splitmix elsewhere.
type chooser interface {
	intn(label string, n int) int // uniform in [0, n)
}

type rapidChooser struct{ t *rapid.T }

func (c rapidChooser) intn(label string, n int) int { return rapid.IntRange(0, n-1).Draw(c.t, label) }

// splitmix is a tiny seeded generator, so tests need no math/rand.
type splitmix struct{ s uint64 }

func (r *splitmix) intn(_ string, n int) int {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	return int(z % uint64(n))
}

var taskStates = []api.TaskState{
	api.TaskState_TASK_STATE_NEW, pending, assigned, accepted, api.TaskState_TASK_STATE_PREPARING,
	running, api.TaskState_TASK_STATE_COMPLETE, api.TaskState_TASK_STATE_SHUTDOWN, failed,
}

// gen builds random proposals against a store's current content, mostly
// valid (right versions, known IDs), sometimes not: stale versions, taken
// names, gone objects, backwards states.
type gen struct {
	c chooser
	s *Store // read for versions; never written by gen
}

func (g gen) pick(label, prefix string, n int) string {
	return fmt.Sprintf("%s%d", prefix, g.c.intn(label, n))
}

// ver returns the stored version of (k, id) most of the time, a wrong one
// otherwise.
func (g gen) ver(k Kind, id string) uint64 {
	if g.c.intn("stale", 5) == 0 {
		return uint64(g.c.intn("stale version", 4))
	}
	return metaVersion(g.s.Get(k, id))
}

func (g gen) name(label string, pool ...string) string {
	return pool[g.c.intn(label, len(pool))]
}

func (g gen) proposal() *api.Proposal {
	p := &api.Proposal{Timestamp: int64(g.c.intn("ts", 1000))}
	for n := 1 + g.c.intn("actions", 6); n > 0; n-- {
		p.Actions = append(p.Actions, g.action())
	}
	return p
}

func (g gen) action() *api.StoreAction {
	op := []api.StoreAction_Kind{api.StoreAction_CREATE, api.StoreAction_UPDATE, api.StoreAction_DELETE}[g.c.intn("op", 3)]
	switch g.c.intn("target", 10) {
	case 0:
		id := g.pick("node", "n", 5)
		if op == api.StoreAction_DELETE {
			return aDelete(KindNode, id, g.ver(KindNode, id))
		}
		n := node(id, g.name("node name", "", "a", "b"))
		n.Removed = g.c.intn("removed", 4) == 0
		n.Spec.Labels = map[string]string{"zone": g.name("zone", "z1", "z2"), "rack": "r"}
		return newAction(op, withVersion(n, g.ver(KindNode, id)))
	case 1:
		id := g.pick("service", "s", 4)
		if op == api.StoreAction_DELETE {
			return aDelete(KindService, id, g.ver(KindService, id))
		}
		return newAction(op, withVersion(service(id, g.name("service name", "web", "db", "api", "")), g.ver(KindService, id)))
	case 2, 3:
		id := g.pick("task", "t", 20)
		if op == api.StoreAction_DELETE {
			return aDelete(KindTask, id, g.ver(KindTask, id))
		}
		svc := g.pick("task service", "s", 4)
		tk := task(id, svc, uint64(g.c.intn("slot", 4)), g.name("task node", "", "n0", "n1", "n2"),
			taskStates[g.c.intn("state", len(taskStates))])
		if g.c.intn("shares spec", 2) == 0 {
			if sv := g.s.Service(svc); sv != nil {
				tk.Spec = sv.GetSpec().GetTask() // equal content: stored shared
			}
		}
		return newAction(op, withVersion(tk, g.ver(KindTask, id)))
	case 4, 5:
		id := g.pick("task", "t", 20)
		st := taskStates[g.c.intn("state", len(taskStates))]
		return aStatus(id, st, int64(g.c.intn("status ts", 3)))
	case 6, 7:
		id := g.pick("task", "t", 20)
		return aAssign(id, g.pick("assign node", "n", 5), g.ver(KindTask, id))
	case 8:
		id := g.pick("kv", "k", 3)
		if op == api.StoreAction_DELETE {
			return aDelete(KindKV, id, g.ver(KindKV, id))
		}
		return newAction(op, withVersion(&api.KV{Key: id, Value: []byte(g.name("value", "x", "y"))}, g.ver(KindKV, id)))
	default:
		k := []Kind{KindNetwork, KindSecret, KindConfig, KindCluster}[g.c.intn("other kind", 4)]
		id := g.pick("other", "o", 3)
		if op == api.StoreAction_DELETE {
			return aDelete(k, id, g.ver(k, id))
		}
		name := g.name("other name", "p", "q", "")
		var o Object
		switch k {
		case KindNetwork:
			o = &api.Network{Id: id, Spec: &api.NetworkSpec{Name: name}}
		case KindSecret:
			o = &api.Secret{Id: id, Spec: &api.SecretSpec{Name: name, Data: []byte("secret")}}
		case KindConfig:
			o = &api.Config{Id: id, Spec: &api.ConfigSpec{Name: name}}
		default:
			o = &api.Cluster{Id: id, Spec: &api.ClusterSpec{Name: name}}
		}
		return newAction(op, withVersion(o, g.ver(k, id)))
	}
}

func (g gen) encode(p *api.Proposal) []byte {
	data, err := marshalOptions.Marshal(p)
	if err != nil {
		panic(err)
	}
	return data
}
