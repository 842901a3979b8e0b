package store

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"
	"pgregory.net/rapid"

	"github.com/swarmsim/swarmsim/engine/api"
)

// eventLog records what a store publishes, as text.
func eventLog(s *Store) *[]string {
	var log []string
	s.Watch(func(evs []Event) {
		for _, e := range evs {
			log = append(log, evString(e))
		}
	})
	return &log
}

func resultString(res any, err error) string {
	return fmt.Sprintf("%v|%v", res, err)
}

// Random proposals applied to store a; midway, b restores a's snapshot; from
// there both apply the same entries and must agree on every result, every
// event and every snapshot. Every rejected proposal leaves a unchanged; the
// indexes always match a brute-force scan; and store c, fed every entry
// from the start, ends byte-identical to a.
func TestStoreProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		a, _ := newSyncStore()
		c, _ := newSyncStore()
		g := gen{c: rapidChooser{rt}, s: a}
		steps := rapid.IntRange(1, 80).Draw(rt, "steps")
		restoreAt := rapid.IntRange(0, steps).Draw(rt, "restore at")
		var b *Store
		var logA, logB *[]string
		for i := range steps {
			if i == restoreAt {
				b, _ = newSyncStore()
				if err := b.Restore(snapshot(rt, a)); err != nil {
					rt.Fatalf("restore: %v", err)
				}
				logA, logB = eventLog(a), eventLog(b)
			}
			data := g.encode(g.proposal())
			index := uint64(i + 1)
			before := snapshot(rt, a)
			res, err := a.Apply(index, data, nil)
			if err != nil {
				rt.Fatalf("decode: %v", err)
			}
			if res != nil && !bytes.Equal(before, snapshot(rt, a)) {
				rt.Fatalf("rejected proposal %d (%v) changed the store", index, res)
			}
			if resC, errC := c.Apply(index, data, nil); resultString(res, err) != resultString(resC, errC) {
				rt.Fatalf("entry %d: a says %v, c says %v", index, res, resC)
			}
			if b != nil {
				if resB, errB := b.Apply(index, data, nil); resultString(res, err) != resultString(resB, errB) {
					rt.Fatalf("entry %d: a says %v, restored b says %v", index, res, resB)
				}
			}
			checkIndexes(rt, a)
		}
		final := snapshot(rt, a)
		if !bytes.Equal(final, snapshot(rt, c)) {
			rt.Fatal("two stores fed the same entries differ")
		}
		if b != nil {
			if !bytes.Equal(final, snapshot(rt, b)) {
				rt.Fatal("the store restored midway differs")
			}
			if !slices.Equal(*logA, *logB) {
				rt.Fatalf("events differ after restore:\n a %q\n b %q", *logA, *logB)
			}
			checkIndexes(rt, b)
		}
	})
}

// A longer seeded run: two stores, same entries, same snapshot bytes and
// the same event stream; a different seed gives a different store.
func TestDeterminism(t *testing.T) {
	run := func(seed uint64) ([]byte, []string, Stats) {
		a, _ := newSyncStore()
		log := eventLog(a)
		g := gen{c: &splitmix{seed}, s: a}
		for i := range 3000 {
			if _, err := a.Apply(uint64(i+1), g.encode(g.proposal()), nil); err != nil {
				t.Fatal(err)
			}
		}
		return snapshot(t, a), *log, a.Stats()
	}
	snap1, ev1, st1 := run(1)
	snap2, ev2, _ := run(1)
	if !bytes.Equal(snap1, snap2) || !slices.Equal(ev1, ev2) {
		t.Fatal("same entries, different stores")
	}
	if snap3, _, _ := run(2); bytes.Equal(snap1, snap3) {
		t.Fatal("a different seed gave the same store: the workload is not random")
	}
	// The workload exercises both outcomes and the skip paths.
	if st1.Conflicts == 0 || st1.Conflicts == st1.Proposals || st1.SkippedActions == 0 || st1.Objects[KindTask] == 0 {
		t.Fatalf("workload too tame: %+v", st1)
	}
}

// Random writes through one transaction: whatever the Tx accepts applies
// without a conflict (nothing ran concurrently), and the store then shows
// exactly what the Tx's reads showed, meta aside.
func TestTxMatchesApply(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		s, _ := newSyncStore()
		g := gen{c: rapidChooser{rt}, s: s}
		for round := range rapid.IntRange(1, 8).Draw(rt, "rounds") {
			var view map[Kind][]Object
			err := update(rt, s, func(tx *Tx) error {
				for range rapid.IntRange(1, 12).Draw(rt, "writes") {
					txWrite(tx, g.action())
				}
				view = contentOf(tx)
				return nil
			})
			if err != nil {
				rt.Fatalf("round %d: the Tx accepted writes Apply rejected: %v", round, err)
			}
			if got := contentOf(s); !sameContent(got, view) {
				rt.Fatalf("round %d: store after apply differs from the Tx's view", round)
			}
			checkIndexes(rt, s)
		}
	})
}

// txWrite performs the write a generated action stands for; errors are
// expected (stale versions, taken names) and mean nothing was recorded.
func txWrite(tx *Tx, a *api.StoreAction) {
	switch t := a.Target.(type) {
	case *api.StoreAction_TaskStatus:
		_ = tx.UpdateTaskStatus(t.TaskStatus.TaskId, t.TaskStatus.Status)
		return
	case *api.StoreAction_TaskAssignment:
		_ = tx.AssignTask(t.TaskAssignment.TaskId, t.TaskAssignment.NodeId, t.TaskAssignment.ExpectedVersion)
		return
	}
	o := actionObject(a)
	switch a.Kind {
	case api.StoreAction_CREATE:
		_ = tx.Create(o)
	case api.StoreAction_UPDATE:
		_ = tx.Update(o)
	case api.StoreAction_DELETE:
		_ = tx.Delete(KindOf(o), ID(o), metaVersion(o))
	}
}

// contentOf lists every object a Reader shows, by kind, without meta.
func contentOf(r Reader) map[Kind][]Object {
	out := map[Kind][]Object{}
	add := func(k Kind, o Object) {
		c := proto.Clone(o).(Object)
		setMeta(c, nil)
		out[k] = append(out[k], c)
	}
	for _, o := range r.Nodes() {
		add(KindNode, o)
	}
	for _, o := range r.Services() {
		add(KindService, o)
	}
	for _, o := range r.Tasks() {
		add(KindTask, o)
	}
	for _, o := range r.Networks() {
		add(KindNetwork, o)
	}
	for _, o := range r.Clusters() {
		add(KindCluster, o)
	}
	for _, o := range r.Secrets() {
		add(KindSecret, o)
	}
	for _, o := range r.Configs() {
		add(KindConfig, o)
	}
	for _, o := range r.KVs() {
		add(KindKV, o)
	}
	return out
}

func sameContent(a, b map[Kind][]Object) bool {
	for _, k := range Kinds {
		if !slices.EqualFunc(a[k], b[k], func(x, y Object) bool { return proto.Equal(x, y) }) {
			return false
		}
	}
	return true
}
