package store

import (
	"fmt"
	"slices"
	"testing"

	"github.com/swarmsim/swarmsim/engine/api"
)

func evString(e Event) string {
	return fmt.Sprintf("%s %s %s old=%d new=%d", e.Action, e.Kind, e.ID, metaVersion(e.Old), metaVersion(e.New))
}

func TestWatchEvents(t *testing.T) {
	s := baseStore(t)
	var got [][]string
	s.Watch(func(evs []Event) {
		var batch []string
		for _, e := range evs {
			batch = append(batch, evString(e))
		}
		got = append(got, batch)
	})
	mustApply(t, s, 200,
		aCreate(task("t9", "s1", 3, "", pending)),
		aAssign("t1", "n1", 1),
		aStatus("t2", running, 0), // no-op: no event
		aStatus("t3", running, 1),
		aDelete(KindKV, "k", 0),
		aUpdate(withVersion(node("n1", "w1"), 1)),
	)
	_ = apply(t, s, 300, aCreate(node("n1", ""))) // rejected: no events
	mustApply(t, s, 400, aStatus("t9", failed, 0))
	want := [][]string{
		{
			"create task t9 old=0 new=2",
			"update task t1 old=1 new=2",
			"update task t3 old=1 new=2",
			"delete kv k old=1 new=0",
			"update node n1 old=1 new=2",
		},
		{"update task t9 old=2 new=4"},
	}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("events\n got %q\nwant %q", got, want)
	}
}

// Watchers may read the store, which already shows the change, and keep
// the events after the callback.
func TestWatchSeesStoreAfterChange(t *testing.T) {
	s := baseStore(t)
	var kept []Event
	s.Watch(func(evs []Event) {
		for _, e := range evs {
			if tk, ok := e.New.(*api.Task); ok && s.Task(e.ID) != tk {
				t.Errorf("store does not show %s yet", e.ID)
			}
		}
		kept = evs
	})
	mustApply(t, s, 200, aAssign("t1", "n1", 1))
	first := kept
	mustApply(t, s, 300, aCreate(node("n9", "")))
	if first[0].ID != "t1" || first[0].New.(*api.Task).NodeId != "n1" {
		t.Fatal("a kept event slice was reused by the next proposal")
	}
}

func TestWatchCancel(t *testing.T) {
	tests := []struct {
		name string
		// setup registers watchers; calls lists, per proposal, which
		// watchers were called.
		setup func(s *Store, log *[]string)
		want  [][]string
	}{
		{
			name: "cancel self during callback",
			setup: func(s *Store, log *[]string) {
				var cancel func()
				cancel = s.Watch(func([]Event) { *log = append(*log, "a"); cancel(); cancel() })
				s.Watch(func([]Event) { *log = append(*log, "b") })
			},
			want: [][]string{{"a", "b"}, {"b"}},
		},
		{
			name: "cancel a later watcher during callback",
			setup: func(s *Store, log *[]string) {
				var cancelB func()
				s.Watch(func([]Event) { *log = append(*log, "a"); cancelB() })
				cancelB = s.Watch(func([]Event) { *log = append(*log, "b") })
				s.Watch(func([]Event) { *log = append(*log, "c") })
			},
			want: [][]string{{"a", "c"}, {"a", "c"}},
		},
		{
			name: "cancel an earlier watcher during callback",
			setup: func(s *Store, log *[]string) {
				cancelA := s.Watch(func([]Event) { *log = append(*log, "a") })
				s.Watch(func([]Event) { *log = append(*log, "b"); cancelA() })
				s.Watch(func([]Event) { *log = append(*log, "c") })
			},
			want: [][]string{{"a", "b", "c"}, {"b", "c"}},
		},
		{
			name: "cancel everyone, register a new one",
			setup: func(s *Store, log *[]string) {
				var cancels []func()
				registered := false
				cancels = append(cancels, s.Watch(func([]Event) {
					*log = append(*log, "a")
					for _, c := range cancels {
						c()
					}
					if !registered {
						registered = true
						s.Watch(func([]Event) { *log = append(*log, "new") })
					}
				}))
				cancels = append(cancels, s.Watch(func([]Event) { *log = append(*log, "b") }))
			},
			want: [][]string{{"a"}, {"new"}},
		},
		{
			name: "cancel outside a callback",
			setup: func(s *Store, log *[]string) {
				cancel := s.Watch(func([]Event) { *log = append(*log, "a") })
				s.Watch(func([]Event) { *log = append(*log, "b") })
				cancel()
			},
			want: [][]string{{"b"}, {"b"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := baseStore(t)
			var log []string
			tc.setup(s, &log)
			var got [][]string
			for i := range 2 {
				log = nil
				mustApply(t, s, 200, aCreate(node(fmt.Sprint("x", i), "")))
				got = append(got, log)
			}
			if !slices.EqualFunc(got, tc.want, slices.Equal) {
				t.Fatalf("calls %q, want %q", got, tc.want)
			}
			if n := s.Stats().Watchers; n != len(tc.want[1]) {
				t.Fatalf("%d watchers left, want %d", n, len(tc.want[1]))
			}
			if len(s.watchers) != s.Stats().Watchers {
				t.Fatal("cancelled watchers were not dropped")
			}
		})
	}
}

func TestWatchRestore(t *testing.T) {
	src := baseStore(t)
	data := snapshot(t, src)
	s, _ := newSyncStore()
	var got []Event
	var sawTasks int
	s.Watch(func(evs []Event) {
		got = append(got, evs...)
		sawTasks = len(s.Tasks())
	})
	if err := s.Restore(data); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Action != ActionRestore || got[0].Old != nil || got[0].New != nil {
		t.Fatalf("events %v, want one restore", got)
	}
	if sawTasks != 3 {
		t.Fatalf("watcher saw %d tasks during restore, want the restored 3", sawTasks)
	}
}

// A kind watcher is called for the proposals that touch its kinds, with
// all their events, and for every restore; a proposal no watcher looks at
// reaches nobody, and its log is reused instead of handed out.
func TestWatchKinds(t *testing.T) {
	s := baseStore(t)
	var nodes, kvs [][]string
	record := func(into *[][]string) func([]Event) {
		return func(evs []Event) {
			var batch []string
			for _, e := range evs {
				batch = append(batch, evString(e))
			}
			*into = append(*into, batch)
		}
	}
	s.WatchKinds(KindSetOf(KindNode), record(&nodes))
	cancelKV := s.WatchKinds(KindSetOf(KindKV, KindCluster), record(&kvs))
	mustApply(t, s, 200, aStatus("t3", running, 1))                            // tasks: nobody
	mustApply(t, s, 300, aUpdate(withVersion(node("n1", "w1"), 1)))            // node watcher
	mustApply(t, s, 400, aDelete(KindKV, "k", 0), aAssign("t1", "n1", 1))      // kv watcher, with the task event
	mustApply(t, s, 500, aCreate(node("n9", "")), aCreate(&api.KV{Key: "k2"})) // both
	want := func(name string, got, want [][]string) {
		t.Helper()
		if !slices.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("%s watcher\n got %q\nwant %q", name, got, want)
		}
	}
	want("node", nodes, [][]string{
		{"update node n1 old=1 new=3"},
		{"create node n9 old=0 new=5", "create kv k2 old=0 new=5"},
	})
	want("kv", kvs, [][]string{
		{"delete kv k old=1 new=0", "update task t1 old=1 new=4"},
		{"create node n9 old=0 new=5", "create kv k2 old=0 new=5"},
	})

	// With the KV watcher gone, a KV write is logged into the same storage
	// each time: nothing watches it.
	cancelKV()
	if s.watchKinds != KindSetOf(KindNode, KindNone) {
		t.Fatalf("watched kinds %b after cancel", s.watchKinds)
	}
	mustApply(t, s, 600, aUpdate(withVersion(&api.KV{Key: "k2"}, 5)))
	before := &s.log[:1][0]
	mustApply(t, s, 700, aUpdate(withVersion(&api.KV{Key: "k2"}, 6)))
	if cap(s.log) == 0 || &s.log[:1][0] != before {
		t.Fatal("an unwatched proposal's log was handed out")
	}
	if len(kvs) != 2 || len(nodes) != 2 {
		t.Fatalf("unwatched KV writes reached a watcher: %d %d", len(kvs), len(nodes))
	}

	// Every watcher sees a restore.
	nodes = nil
	if err := s.Restore(snapshot(t, baseStore(t))); err != nil {
		t.Fatal(err)
	}
	want("node", nodes, [][]string{{"restore none  old=0 new=0"}})
}
