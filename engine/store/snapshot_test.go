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

func TestSnapshotRoundTrip(t *testing.T) {
	src := baseStore(t)
	mustApply(t, src, 200, aAssign("t1", "n3", 1), aStatus("t2", failed, 9),
		aCreate(&api.Cluster{Id: "c1", Spec: &api.ClusterSpec{Name: "default"}}))
	for i, image := range []string{"a", "a", "b"} { // two tasks share a spec
		tk := task(fmt.Sprint("x", i), "s1", uint64(10+i), "", pending)
		tk.Spec = proto.Clone(src.Service("s1").Spec.Task).(*api.TaskSpec)
		tk.Spec.Container.Image = image
		mustApply(t, src, 300, aCreate(tk))
	}
	data := snapshot(t, src)

	// Whatever the field order, the bytes mean the store's content.
	var decoded api.StoreSnapshot
	if err := proto.Unmarshal(data, &decoded); err != nil {
		t.Fatal(err)
	}
	want := &api.StoreSnapshot{Nodes: src.Nodes(), Services: src.Services(), Tasks: src.Tasks(),
		Networks: src.Networks(), Clusters: src.Clusters(), Secrets: src.Secrets(), Configs: src.Configs(), Kvs: src.KVs()}
	if !proto.Equal(&decoded, want) {
		t.Fatalf("snapshot decodes to\n%v\nwant\n%v", &decoded, want)
	}

	dst, _ := newSyncStore()
	if err := dst.Restore(data); err != nil {
		t.Fatal(err)
	}
	if again := snapshot(t, dst); !bytes.Equal(data, again) {
		t.Fatal("restored store snapshots to different bytes")
	}
	for _, k := range Kinds {
		if a, b := src.Stats().Objects[k], dst.Stats().Objects[k]; a != b {
			t.Fatalf("%s: %d objects, restored %d", k, a, b)
		}
	}
	for _, tk := range src.Tasks() {
		if !proto.Equal(tk, dst.Task(tk.Id)) {
			t.Fatalf("task %s differs after restore", tk.Id)
		}
	}
	if dst.AppliedIndex() != 5 {
		t.Fatalf("applied index %d, want the highest version 5", dst.AppliedIndex())
	}
	checkIndexes(t, dst)
	// The restored store goes on applying like the original.
	for _, s := range []*Store{src, dst} {
		mustApply(t, s, 300, aStatus("t1", running, 10), aDelete(KindService, "s2", 1))
	}
	if !bytes.Equal(snapshot(t, src), snapshot(t, dst)) {
		t.Fatal("stores diverged after restore")
	}
}

// Equal content gives identical bytes whatever the order objects came in
// and however map fields were built.
func TestSnapshotDeterministic(t *testing.T) {
	build := func(order []int) []byte {
		snap := &api.StoreSnapshot{}
		for _, i := range order {
			labels := map[string]string{}
			for j := range 20 {
				labels[fmt.Sprint("k", (j*7+i)%20)] = fmt.Sprint(j)
			}
			snap.Tasks = append(snap.Tasks, &api.Task{Id: fmt.Sprintf("t%02d", i), ServiceId: "s",
				Spec: &api.TaskSpec{Container: &api.ContainerSpec{Labels: labels}}})
			snap.Nodes = append(snap.Nodes, node(fmt.Sprintf("n%02d", i), ""))
		}
		data, err := proto.Marshal(snap) // not deterministic on purpose
		if err != nil {
			t.Fatal(err)
		}
		s, _ := newSyncStore()
		if err := s.Restore(data); err != nil {
			t.Fatal(err)
		}
		return snapshot(t, s)
	}
	a := build([]int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	b := build([]int{9, 3, 7, 1, 0, 8, 2, 6, 4, 5})
	if !bytes.Equal(a, b) {
		t.Fatal("equal content, different snapshot bytes")
	}
	var snap api.StoreSnapshot
	if err := proto.Unmarshal(a, &snap); err != nil {
		t.Fatal(err)
	}
	if !slices.IsSortedFunc(snap.Tasks, func(x, y *api.Task) int { return cmpID(x, y) }) {
		t.Fatal("snapshot tasks not in ID order")
	}
}

func TestRestoreRejects(t *testing.T) {
	tests := []struct {
		name string
		snap *api.StoreSnapshot
		want error
	}{
		{"duplicate ID", &api.StoreSnapshot{Tasks: []*api.Task{{Id: "t"}, {Id: "t"}}}, ErrExist},
		{"empty ID", &api.StoreSnapshot{Kvs: []*api.KV{{Value: []byte("v")}}}, ErrInvalid},
		{"duplicate name", &api.StoreSnapshot{Services: []*api.Service{service("a", "x"), service("b", "x")}}, ErrNameConflict},
		{"same ID, different kinds", &api.StoreSnapshot{Nodes: []*api.Node{node("x", "")}, Tasks: []*api.Task{{Id: "x"}}}, nil},
		{"duplicate node names are fine", &api.StoreSnapshot{Nodes: []*api.Node{node("a", "x"), node("b", "x")}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := baseStore(t)
			before := snapshot(t, s)
			data, err := proto.Marshal(tc.snap)
			if err != nil {
				t.Fatal(err)
			}
			err = s.Restore(data)
			wantErr(t, err, tc.want)
			if tc.want != nil && !bytes.Equal(before, snapshot(t, s)) {
				t.Fatal("a failed restore changed the store")
			}
		})
	}
	s := baseStore(t)
	if err := s.Restore([]byte{0x0a, 0xff}); err == nil || errors.Is(err, ErrExist) {
		t.Fatalf("Restore(garbage) = %v", err)
	}
}

// Restored tasks share equal specs, as applied ones do.
func TestRestoreSharesSpecs(t *testing.T) {
	src := baseStore(t)
	svc := src.Service("s1")
	for i := range 3 {
		tk := task(fmt.Sprint("x", i), "s1", uint64(10+i), "", pending)
		tk.Spec = proto.Clone(svc.Spec.Task).(*api.TaskSpec)
		mustApply(t, src, 200, aCreate(tk))
	}
	dst, _ := newSyncStore()
	if err := dst.Restore(snapshot(t, src)); err != nil {
		t.Fatal(err)
	}
	spec := dst.Task("x0").Spec
	for i := range 3 {
		if got := dst.Task(fmt.Sprint("x", i)).Spec; got != spec || !proto.Equal(got, svc.Spec.Task) {
			t.Fatalf("task x%d does not share the spec", i)
		}
	}
	if n := dst.c.taskIdx.specs.len(); n != 1 {
		t.Fatalf("%d specs registered, want 1", n)
	}
}
