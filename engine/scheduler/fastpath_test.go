package scheduler_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/scheduler"
	"github.com/swarmsim/swarmsim/engine/store"
)

// TestFastPathsMatchSimple drives two schedulers through the same random
// history (tasks created, changed, deleted and finished while proposals
// are held, applied out of order or fail; nodes joining) and checks after
// every step that they wrote the same store: one takes the fast paths
// (finding a task's event by the batch cursor or not looking at all,
// indexing tasks by ID only when needed, forgetting them lazily and
// sweeping often, placing level by level), the other the plain ones (a map
// insert, lookup and delete per task, a heap pop per task).
func TestFastPathsMatchSimple(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		fast, simple := newHarness(t), newHarness(t)
		scheduler.SetSweepMin(fast.s, 2)
		scheduler.UseSimplePaths(simple.s)
		hs := []*harness{fast, simple}
		both := func(f func(h *harness)) {
			for _, h := range hs {
				undo := h.k.Activate()
				f(h)
				undo()
			}
		}
		ts := spreadSpec(1e9, "node.labels.zone")
		maxBatch := rapid.IntRange(1, 6).Draw(rt, "maxBatch")
		both(func(h *harness) {
			h.addNodes(mkNode("n1", resources(2e9, gib), labels("zone", "a")),
				mkNode("n2", resources(3e9, gib), labels("zone", "b")),
				mkNode("n3", resources(1e9, gib)))
			h.addService("svc", ts)
			h.s.SetMaxBatch(maxBatch)
			h.s.Start()
		})
		nodes := 3
		var deleted []string
		// apply runs a write from outside the scheduler, which applies at
		// once even while the scheduler's proposals are held.
		apply := func(h *harness, fn func(tx *store.Tx) error) {
			h.st.Update(fn, nil)
			if h.hold {
				h.releaseLast()
			} else {
				h.settle()
			}
		}
		// pick returns a task of the store (in ID order) that ok accepts,
		// the same one in both harnesses since their stores match.
		pick := func(ok func(*api.Task) bool) *api.Task {
			var ts []*api.Task
			for t := range fast.st.EachTask() {
				if ok(t) {
					ts = append(ts, t)
				}
			}
			if len(ts) == 0 {
				return nil
			}
			return ts[rapid.IntRange(0, len(ts)-1).Draw(rt, "task")]
		}
		pending := func(t *api.Task) bool { return t.GetStatus().GetState() == api.TaskState_TASK_STATE_PENDING }
		assigned := func(t *api.Task) bool { return t.GetStatus().GetState() == api.TaskState_TASK_STATE_ASSIGNED }
		steps := rapid.IntRange(1, 40).Draw(rt, "steps")
		for step := range steps {
			switch op := rapid.IntRange(0, 11).Draw(rt, "op"); op {
			case 0: // new tasks
				k := rapid.IntRange(1, 8).Draw(rt, "k")
				both(func(h *harness) {
					apply(h, func(tx *store.Tx) error {
						for range k {
							if err := tx.Create(h.pendingTask("svc", ts, "")); err != nil {
								return err
							}
						}
						return nil
					})
				})
			case 1: // hold the scheduler's proposals, or let them go
				both(func(h *harness) {
					if h.hold = !h.hold; !h.hold {
						h.release()
					}
				})
			case 2: // the oldest held proposal applies
				both(func(h *harness) {
					if len(h.held) > 0 {
						h.releaseFirst()
					}
				})
			case 3: // the newest held proposal applies first
				both(func(h *harness) {
					if len(h.held) > 0 {
						h.releaseLast()
					}
				})
			case 4: // a pending task changes under the scheduler
				if t := pick(pending); t != nil {
					both(func(h *harness) {
						apply(h, func(tx *store.Tx) error {
							c := tx.Task(t.Id).ShallowCopy()
							c.SpecVersion++
							return tx.Update(c)
						})
					})
				}
			case 5: // a task is deleted
				if t := pick(func(*api.Task) bool { return true }); t != nil {
					deleted = append(deleted, t.Id)
					both(func(h *harness) {
						apply(h, func(tx *store.Tx) error {
							return tx.Delete(store.KindTask, t.Id, tx.Task(t.Id).GetMeta().GetVersion())
						})
					})
				}
			case 6: // an assigned task ends, freeing its node
				if t := pick(assigned); t != nil {
					both(func(h *harness) {
						apply(h, func(tx *store.Tx) error {
							return tx.UpdateTaskStatus(t.Id, &api.TaskStatus{State: api.TaskState_TASK_STATE_COMPLETE, Timestamp: h.now()})
						})
					})
				}
			case 7: // a node joins
				nodes++
				id := fmt.Sprintf("n%d", nodes)
				zone := rapid.SampledFrom([]string{"a", "b", "c"}).Draw(rt, "zone")
				both(func(h *harness) {
					apply(h, func(tx *store.Tx) error {
						return tx.Create(mkNode(id, resources(1e9, gib), labels("zone", zone)))
					})
				})
			case 8: // time passes: waiting tasks are retried
				both(func(h *harness) { h.advance(150 * time.Millisecond) })
			case 10: // leadership moves away and back: the view is rebuilt
				both(func(h *harness) {
					h.s.Stop()
					h.s.Start()
					h.settle()
				})
			case 11: // an assigned task fails on its node
				if t := pick(assigned); t != nil {
					both(func(h *harness) {
						apply(h, func(tx *store.Tx) error {
							return tx.UpdateTaskStatus(t.Id, &api.TaskStatus{State: api.TaskState_TASK_STATE_FAILED, Timestamp: h.now()})
						})
					})
				}
			case 9: // a deleted task comes back, pending, under its old ID
				if len(deleted) > 0 {
					i := rapid.IntRange(0, len(deleted)-1).Draw(rt, "deleted")
					id := deleted[i]
					deleted = slices.Delete(deleted, i, i+1)
					both(func(h *harness) {
						apply(h, func(tx *store.Tx) error {
							t := h.pendingTask("svc", ts, "")
							t.Id = id
							return tx.Create(t)
						})
					})
				}
			}
			compareHarnesses(rt, step, fast, simple)
		}
		both(func(h *harness) {
			h.hold = false
			h.release()
			h.advance(2 * time.Second)
		})
		compareHarnesses(rt, steps, fast, simple)
		if st := fast.s.Stats(); st.InFlight != 0 || st.Queued != 0 {
			rt.Fatalf("at rest: %+v", st)
		}
	})
}

// compareHarnesses fails unless both stores hold the same tasks, on the
// same nodes, in the same states, with the same reasons, and both
// schedulers counted the same.
func compareHarnesses(rt *rapid.T, step int, a, b *harness) {
	view := func(h *harness) []string {
		var out []string
		for t := range h.st.EachTask() {
			out = append(out, fmt.Sprintf("%s %s %s %q", t.Id, t.NodeId, t.GetStatus().GetState(), t.PendingReason))
		}
		return out
	}
	if va, vb := view(a), view(b); !slices.Equal(va, vb) {
		rt.Fatalf("step %d: stores differ:\nfast   %q\nsimple %q", step, va, vb)
	}
	sa, sb := a.s.Stats(), b.s.Stats()
	sa.Latency, sb.Latency = scheduler.Histogram{}, scheduler.Histogram{}
	if sa != sb {
		rt.Fatalf("step %d: stats differ:\nfast   %+v\nsimple %+v", step, sa, sb)
	}
}
