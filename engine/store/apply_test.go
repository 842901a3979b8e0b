package store

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/swarmsim/swarmsim/engine/api"
)

const (
	pending  = api.TaskState_TASK_STATE_PENDING
	assigned = api.TaskState_TASK_STATE_ASSIGNED
	accepted = api.TaskState_TASK_STATE_ACCEPTED
	running  = api.TaskState_TASK_STATE_RUNNING
	failed   = api.TaskState_TASK_STATE_FAILED
)

// baseStore holds, at index 1 and timestamp 100: nodes n1 ("w1"), n2
// (removed), n3 ("w1" too); services s1 ("web"), s2 ("db"); tasks t1 (s1
// slot 1, pending, no node), t2 (s1 slot 2, running on n1), t3 (s2 slot 1,
// assigned to n1); network net1 ("overlay"), secret sec1 ("pw"), config
// cfg1 ("conf"), kv "k".
func baseStore(t tb) *Store {
	s, _ := newSyncStore()
	removed := node("n2", "w2")
	removed.Removed = true
	mustApply(t, s, 100,
		aCreate(node("n1", "w1")), aCreate(removed), aCreate(node("n3", "w1")),
		aCreate(service("s1", "web")), aCreate(service("s2", "db")),
		aCreate(task("t1", "s1", 1, "", pending)),
		aCreate(task("t2", "s1", 2, "n1", running)),
		aCreate(task("t3", "s2", 1, "n1", assigned)),
		aCreate(&api.Network{Id: "net1", Spec: &api.NetworkSpec{Name: "overlay"}}),
		aCreate(&api.Secret{Id: "sec1", Spec: &api.SecretSpec{Name: "pw"}}),
		aCreate(&api.Config{Id: "cfg1", Spec: &api.ConfigSpec{Name: "conf"}}),
		aCreate(&api.KV{Key: "k", Value: []byte("v")}),
	)
	return s
}

func TestApply(t *testing.T) {
	const ts = 200 // the proposal under test applies at index 2
	tests := []struct {
		name    string
		actions []*api.StoreAction
		want    error // nil: the proposal applies
		skipped uint64
		check   func(t *testing.T, s *Store)
	}{
		{
			name:    "create sets meta",
			actions: []*api.StoreAction{aCreate(task("t9", "s1", 3, "", pending))},
			check: func(t *testing.T, s *Store) {
				m := s.Task("t9").GetMeta()
				if m.GetVersion() != 2 || m.GetCreatedAt() != ts || m.GetUpdatedAt() != ts {
					t.Fatalf("meta %v, want version 2 created/updated %d", m, ts)
				}
			},
		},
		{name: "create existing", actions: []*api.StoreAction{aCreate(task("t1", "s1", 1, "", pending))}, want: ErrExist},
		{name: "create without id", actions: []*api.StoreAction{aCreate(task("", "s1", 1, "", pending))}, want: ErrInvalid},
		{name: "action without target", actions: []*api.StoreAction{{Kind: api.StoreAction_CREATE}}, want: ErrInvalid},
		{name: "unknown action kind", actions: []*api.StoreAction{newAction(7, task("t9", "s1", 1, "", pending))}, want: ErrInvalid},
		{
			name:    "update keeps created_at",
			actions: []*api.StoreAction{aUpdate(withVersion(service("s1", "web2"), 1))},
			check: func(t *testing.T, s *Store) {
				m := s.Service("s1").GetMeta()
				if m.GetVersion() != 2 || m.GetCreatedAt() != 100 || m.GetUpdatedAt() != ts {
					t.Fatalf("meta %v, want version 2 created 100 updated %d", m, ts)
				}
				if s.ServiceByName("web") != nil || s.ServiceByName("web2").GetId() != "s1" {
					t.Fatal("rename not reflected in the name index")
				}
			},
		},
		{name: "update stale version", actions: []*api.StoreAction{aUpdate(withVersion(service("s1", "web"), 0))}, want: ErrSequenceConflict},
		{name: "update missing", actions: []*api.StoreAction{aUpdate(withVersion(service("s9", "x"), 1))}, want: ErrNotExist},
		{name: "delete missing", actions: []*api.StoreAction{aDelete(KindTask, "t9", 0)}, want: ErrNotExist},
		{name: "delete stale version", actions: []*api.StoreAction{aDelete(KindTask, "t1", 7)}, want: ErrSequenceConflict},
		{
			name:    "delete any version",
			actions: []*api.StoreAction{aDelete(KindTask, "t2", 0), aDelete(KindKV, "k", 1)},
			check: func(t *testing.T, s *Store) {
				if s.Task("t2") != nil || s.KV("k") != nil {
					t.Fatal("not deleted")
				}
				if got := ids(s.TasksByNode("n1")); !slices.Equal(got, []string{"t3"}) {
					t.Fatalf("tasks on n1 %v, want [t3]", got)
				}
			},
		},
		{name: "service name taken", actions: []*api.StoreAction{aCreate(service("s9", "web"))}, want: ErrNameConflict},
		{name: "service rename onto taken name", actions: []*api.StoreAction{aUpdate(withVersion(service("s2", "web"), 1))}, want: ErrNameConflict},
		{name: "network name taken", actions: []*api.StoreAction{aCreate(&api.Network{Id: "net2", Spec: &api.NetworkSpec{Name: "overlay"}})}, want: ErrNameConflict},
		{name: "secret name taken", actions: []*api.StoreAction{aCreate(&api.Secret{Id: "sec2", Spec: &api.SecretSpec{Name: "pw"}})}, want: ErrNameConflict},
		{name: "config name taken", actions: []*api.StoreAction{aCreate(&api.Config{Id: "cfg2", Spec: &api.ConfigSpec{Name: "conf"}})}, want: ErrNameConflict},
		{
			name:    "name freed earlier in the proposal",
			actions: []*api.StoreAction{aUpdate(withVersion(service("s1", "old-web"), 1)), aCreate(service("s9", "web"))},
			check: func(t *testing.T, s *Store) {
				if s.ServiceByName("web").GetId() != "s9" || s.ServiceByName("old-web").GetId() != "s1" {
					t.Fatal("name index wrong")
				}
			},
		},
		{
			name:    "node names are not unique",
			actions: []*api.StoreAction{aCreate(node("n4", "w1"))},
			check: func(t *testing.T, s *Store) {
				if got := ids(s.NodesByName("w1")); !slices.Equal(got, []string{"n1", "n3", "n4"}) {
					t.Fatalf("nodes named w1: %v", got)
				}
			},
		},
		{
			name: "all or nothing",
			actions: []*api.StoreAction{
				aCreate(task("t9", "s1", 3, "", pending)),
				aAssign("t1", "n1", 1),
				aDelete(KindService, "s2", 0),
				aUpdate(withVersion(service("s1", "db"), 1)),                // s2 deleted above frees "db"
				aUpdate(withVersion(task("t2", "s1", 2, "n1", running), 0)), // stale: everything undone
			},
			want: ErrSequenceConflict,
		},
		{
			name: "several actions on one object name the version before the proposal",
			actions: []*api.StoreAction{
				aUpdate(withVersion(service("s1", "web-a"), 1)),
				aUpdate(withVersion(service("s1", "web-b"), 1)),
				aCreate(task("t9", "s1", 3, "", pending)),
				aUpdate(withVersion(task("t9", "s1", 4, "", pending), 0)),
				aDelete(KindTask, "t2", 1),
				aCreate(task("t2", "s2", 7, "", pending)),
			},
			check: func(t *testing.T, s *Store) {
				if s.ServiceByName("web-b").GetId() != "s1" || s.ServiceByName("web-a") != nil {
					t.Fatal("second rename lost")
				}
				if got := ids(s.TasksBySlot("s1", 4)); !slices.Equal(got, []string{"t9"}) {
					t.Fatalf("slot 4: %v", got)
				}
				if got := ids(s.TasksByService("s2")); !slices.Equal(got, []string{"t2", "t3"}) {
					t.Fatalf("s2 tasks: %v", got)
				}
			},
		},
		{
			name:    "action after the same object changed names a stale version",
			actions: []*api.StoreAction{aUpdate(withVersion(service("s1", "web-a"), 1)), aUpdate(withVersion(service("s1", "web-b"), 2))},
			want:    ErrSequenceConflict,
		},
		{
			name:    "full task update cannot move state back",
			actions: []*api.StoreAction{aUpdate(withVersion(task("t2", "s1", 2, "n1", pending), 1))},
			want:    ErrStatusRegression,
		},
		{
			name:    "status moves forward",
			actions: []*api.StoreAction{aStatus("t3", running, 150)},
			check: func(t *testing.T, s *Store) {
				tk := s.Task("t3")
				if tk.Status.State != running || tk.Meta.Version != 2 || tk.Meta.UpdatedAt != ts || tk.Meta.CreatedAt != 100 {
					t.Fatalf("task %v", tk)
				}
			},
		},
		{name: "status never moves back", actions: []*api.StoreAction{aStatus("t2", accepted, 150)}, skipped: 1, check: unchanged("t2")},
		{
			name:    "older report in the same state is dropped",
			actions: []*api.StoreAction{aStatus("t2", running, 300), aStatus("t2", running, 250)},
			skipped: 1,
			check: func(t *testing.T, s *Store) {
				if got := s.Task("t2").Status.Timestamp; got != 300 {
					t.Fatalf("status timestamp %d, want 300", got)
				}
			},
		},
		{name: "identical status is a no-op", actions: []*api.StoreAction{aStatus("t2", running, 0)}, skipped: 1, check: unchanged("t2")},
		{name: "status of a gone task", actions: []*api.StoreAction{aStatus("t9", running, 0)}, skipped: 1},
		{
			name:    "assignment",
			actions: []*api.StoreAction{aAssign("t1", "n3", 1)},
			check: func(t *testing.T, s *Store) {
				tk := s.Task("t1")
				if tk.NodeId != "n3" || tk.Status.State != assigned || tk.Status.Timestamp != ts || tk.Meta.Version != 2 {
					t.Fatalf("task %v", tk)
				}
				if got := ids(s.TasksByNode("n3")); !slices.Equal(got, []string{"t1"}) {
					t.Fatalf("tasks on n3: %v", got)
				}
				if got := s.TasksByNode(""); len(got) != 0 {
					t.Fatalf("unassigned tasks: %v", ids(got))
				}
			},
		},
		{name: "assignment with stale version", actions: []*api.StoreAction{aAssign("t1", "n1", 0)}, skipped: 1, check: unchanged("t1")},
		{name: "assignment of an assigned task", actions: []*api.StoreAction{aAssign("t3", "n3", 1)}, skipped: 1, check: unchanged("t3")},
		{name: "assignment to a missing node", actions: []*api.StoreAction{aAssign("t1", "n9", 1)}, skipped: 1, check: unchanged("t1")},
		{name: "assignment to a removed node", actions: []*api.StoreAction{aAssign("t1", "n2", 1)}, skipped: 1, check: unchanged("t1")},
		{
			name: "assignment after the task moved on in the same proposal",
			actions: []*api.StoreAction{
				aStatus("t1", failed, 150),
				aAssign("t1", "n1", 1),
			},
			skipped: 1,
			check: func(t *testing.T, s *Store) {
				if tk := s.Task("t1"); tk.NodeId != "" || tk.Status.State != failed {
					t.Fatalf("task %v", tk)
				}
			},
		},
		{
			name: "one stale assignment does not void the batch",
			actions: []*api.StoreAction{
				aCreate(task("t8", "s1", 3, "", pending)),
				aAssign("t8", "n1", 0),
				aAssign("t1", "n1", 5),
				aAssign("t9", "n1", 0),
			},
			skipped: 2,
			check: func(t *testing.T, s *Store) {
				if got := ids(s.TasksByNode("n1")); !slices.Equal(got, []string{"t2", "t3", "t8"}) {
					t.Fatalf("tasks on n1: %v", got)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := baseStore(t)
			before := snapshot(t, s)
			var events []Event
			s.Watch(func(evs []Event) { events = append(events, evs...) })
			st0 := s.Stats()
			err := apply(t, s, ts, tc.actions...)
			wantErr(t, err, tc.want)
			st := s.Stats()
			if st.AppliedIndex != 2 || st.Proposals != st0.Proposals+1 {
				t.Fatalf("stats %+v: applied index and proposals must move even on failure", st)
			}
			if tc.want != nil {
				if after := snapshot(t, s); !bytes.Equal(before, after) {
					t.Fatal("a rejected proposal changed the store")
				}
				if len(events) != 0 {
					t.Fatalf("a rejected proposal published %d events", len(events))
				}
				if st.Conflicts != st0.Conflicts+1 {
					t.Fatalf("conflicts %d, want %d", st.Conflicts, st0.Conflicts+1)
				}
				checkIndexes(t, s)
				return
			}
			if got := st.SkippedActions - st0.SkippedActions; got != tc.skipped {
				t.Fatalf("skipped %d actions, want %d", got, tc.skipped)
			}
			if want := len(tc.actions) - int(tc.skipped); len(events) != want {
				t.Fatalf("%d events, want %d", len(events), want)
			}
			if tc.check != nil {
				tc.check(t, s)
			}
			checkIndexes(t, s)
		})
	}
}

// unchanged checks that task id still has version 1.
func unchanged(id string) func(t *testing.T, s *Store) {
	return func(t *testing.T, s *Store) {
		t.Helper()
		if v := s.Task(id).GetMeta().GetVersion(); v != 1 {
			t.Fatalf("task %s has version %d, want it untouched", id, v)
		}
	}
}

// checkIndexes compares every index with a brute-force scan of the whole
// content: ID order everywhere, and the same members.
func checkIndexes(t tb, s *Store) {
	t.Helper()
	tasks := s.Tasks()
	if !slices.IsSortedFunc(tasks, func(a, b *api.Task) int { return cmpID(a, b) }) {
		t.Fatal("tasks not in ID order")
	}
	bySvc := map[string][]string{}
	byNode := map[string][]string{}
	bySlot := map[slotKey][]string{}
	for _, tk := range tasks {
		bySvc[tk.ServiceId] = append(bySvc[tk.ServiceId], tk.Id)
		byNode[tk.NodeId] = append(byNode[tk.NodeId], tk.Id)
		bySlot[slotKey{tk.ServiceId, tk.Slot}] = append(bySlot[slotKey{tk.ServiceId, tk.Slot}], tk.Id)
		if s.Task(tk.Id) != tk {
			t.Fatalf("task %s: by-ID and ordered index disagree", tk.Id)
		}
	}
	for k, want := range bySvc {
		if got := ids(s.TasksByService(k)); !slices.Equal(got, want) {
			t.Fatalf("TasksByService(%q) = %v, want %v", k, got, want)
		}
		if n := s.CountTasksByService(k); n != len(want) {
			t.Fatalf("CountTasksByService(%q) = %d, want %d", k, n, len(want))
		}
	}
	for k, want := range byNode {
		if got := ids(s.TasksByNode(k)); !slices.Equal(got, want) {
			t.Fatalf("TasksByNode(%q) = %v, want %v", k, got, want)
		}
		if n := s.CountTasksByNode(k); n != len(want) {
			t.Fatalf("CountTasksByNode(%q) = %d, want %d", k, n, len(want))
		}
	}
	for k, want := range bySlot {
		if got := ids(s.TasksBySlot(k.service, k.slot)); !slices.Equal(got, want) {
			t.Fatalf("TasksBySlot(%q, %d) = %v, want %v", k.service, k.slot, got, want)
		}
	}
	nodes := len(byNode)
	if byNode[""] != nil {
		nodes-- // tasks on no node are found by a scan
	}
	if len(s.c.taskIdx.byService) != len(bySvc) || len(s.c.taskIdx.byNode) != nodes {
		t.Fatalf("index holds %d services and %d nodes, want %d and %d (empty sets must go)",
			len(s.c.taskIdx.byService), len(s.c.taskIdx.byNode), len(bySvc), nodes)
	}
	slots := 0
	for k := range bySlot {
		if k.slot != 0 {
			slots++
		}
	}
	if len(s.c.taskIdx.bySlot) != slots {
		t.Fatalf("slot index holds %d keys, want %d", len(s.c.taskIdx.bySlot), slots)
	}
	nodeNames := map[string][]string{}
	for _, n := range s.Nodes() {
		if name := n.GetSpec().GetName(); name != "" {
			nodeNames[name] = append(nodeNames[name], n.Id)
		}
	}
	for name, want := range nodeNames {
		if got := ids(s.NodesByName(name)); !slices.Equal(got, want) {
			t.Fatalf("NodesByName(%q) = %v, want %v", name, got, want)
		}
	}
	if len(s.c.nodeNames) != len(nodeNames) {
		t.Fatalf("node name index holds %d names, want %d", len(s.c.nodeNames), len(nodeNames))
	}
	checkNames(t, s.Services(), s.ServiceByName)
	checkNames(t, s.Networks(), s.NetworkByName)
	checkNames(t, s.Secrets(), s.SecretByName)
	checkNames(t, s.Configs(), s.ConfigByName)
	for _, k := range Kinds {
		if tbl := s.c.tables[k]; tbl.len() != s.Stats().Objects[k] {
			t.Fatalf("%s count mismatch", k)
		}
	}
}

func checkNames[T Object](t tb, all []T, byName func(string) T) {
	t.Helper()
	seen := map[string]bool{}
	for _, o := range all {
		n := Name(o)
		if n == "" {
			continue
		}
		if seen[n] {
			t.Fatalf("name %q held twice", n)
		}
		seen[n] = true
		if got := byName(n); ID(got) != ID(o) {
			t.Fatalf("by name %q: got %q, want %q", n, ID(got), ID(o))
		}
	}
}

func cmpID(a, b Object) int {
	switch x, y := ID(a), ID(b); {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

func TestApplyDecodeError(t *testing.T) {
	s := baseStore(t)
	res, err := s.Apply(2, []byte{0xff, 0xff, 0xff}, nil)
	if err == nil || res != nil {
		t.Fatalf("Apply(garbage) = %v, %v; want nil, error", res, err)
	}
	if s.AppliedIndex() != 1 || s.Stats().DecodeErrors != 1 {
		t.Fatalf("a decode error must not move the applied index: %+v", s.Stats())
	}
}

// The rejection a proposer's done gets names the failing action, and wraps
// the sentinel for errors.Is.
func TestApplyErrorNamesAction(t *testing.T) {
	s := baseStore(t)
	err := apply(t, s, 200, aCreate(task("t9", "s1", 3, "", pending)), aUpdate(withVersion(service("s1", "x"), 9)))
	if !errors.Is(err, ErrSequenceConflict) {
		t.Fatalf("got %v", err)
	}
	const want = `store: entry 2 action 1: service "s1": version 9, stored 1: update out of sequence`
	if err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
}

// Stored tasks with equal specs share one spec; the registry that makes
// them share forgets a spec once no task uses it, and keeps nothing from a
// rejected proposal.
func TestApplySharesTaskSpecs(t *testing.T) {
	s := baseStore(t)
	specs := s.c.taskIdx.specs
	base := specs.len()
	spec := s.Service("s1").Spec.Task
	mk := func(id, image string) *api.StoreAction {
		tk := task(id, "s1", 9, "", pending)
		tk.Spec = proto.Clone(spec).(*api.TaskSpec)
		tk.Spec.Container.Image = image
		return aCreate(tk)
	}
	mustApply(t, s, 200, mk("x1", "a"), mk("x2", "a"))
	mustApply(t, s, 300, mk("x3", "a"), mk("y1", "b"))
	x1, x2, x3, y1 := s.Task("x1"), s.Task("x2"), s.Task("x3"), s.Task("y1")
	if x1.Spec != x2.Spec || x1.Spec != x3.Spec {
		t.Fatal("equal specs not shared")
	}
	if y1.Spec == x1.Spec || y1.Spec.Container.Image != "b" || x1.Spec.Container.Image != "a" {
		t.Fatal("a different spec must not be shared")
	}
	if got := specs.len(); got != base+2 {
		t.Fatalf("%d specs registered, want %d", got, base+2)
	}
	// A status change keeps the spec; a rejected proposal registers nothing.
	mustApply(t, s, 400, aStatus("x1", running, 1))
	if err := apply(t, s, 500, mk("z1", "c"), aCreate(task("x1", "s1", 1, "", pending))); !errors.Is(err, ErrExist) {
		t.Fatal(err)
	}
	if got := specs.len(); got != base+2 {
		t.Fatalf("%d specs registered after a rejected proposal, want %d", got, base+2)
	}
	mustApply(t, s, 600, aDelete(KindTask, "x1", 0), aDelete(KindTask, "x2", 0), aDelete(KindTask, "x3", 0), aDelete(KindTask, "y1", 0))
	if got := specs.len(); got != base {
		t.Fatalf("%d specs registered once their tasks are gone, want %d", got, base)
	}
}

// A KV's value survives decoding at every length around the inline sizes,
// and an inline value's capacity ends with it, so that appending to a
// read value cannot write into the block it shares with its KV.
func TestKVValueSizes(t *testing.T) {
	s, _ := newSyncStore()
	for n := range 41 {
		key := fmt.Sprintf("k%02d", n)
		value := bytes.Repeat([]byte{byte('a' + n%26)}, n)
		mustApply(t, s, 1, aCreate(&api.KV{Key: key, Value: value}))
		got := s.KV(key).GetValue()
		if !bytes.Equal(got, value) {
			t.Fatalf("%d bytes: value %q, want %q", n, got, value)
		}
		if n <= kvInlineValue && cap(got) != len(got) {
			t.Fatalf("%d bytes: capacity %d", n, cap(got))
		}
	}
}
