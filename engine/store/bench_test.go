package store

import (
	"fmt"
	"runtime"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/swarmsim/swarmsim/engine/api"
)

// randomID returns a 25-character base-36 ID as SwarmKit makes them, from a
// seeded stream: IDs arrive in random order, as in a real cluster.
func randomID(r *splitmix) string {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 25)
	for i := range b {
		b[i] = digits[r.intn("", len(digits))]
	}
	return string(b)
}

// fixture is a cluster of nodes, services and tasks, as snapshots.
type fixture struct {
	nodes, services, tasks []string
	pending                []byte // every task pending, on no node
	assigned               []byte // every task assigned, round robin over nodes
}

var fixtures = map[[3]int]*fixture{}

// benchFixture builds (once per size) nNodes nodes and nTasks tasks spread
// over nServices services, through the real apply path in proposals of
// 10,000 creates.
func benchFixture(b *testing.B, nNodes, nServices, nTasks int) *fixture {
	key := [3]int{nNodes, nServices, nTasks}
	if f := fixtures[key]; f != nil {
		return f
	}
	r := &splitmix{42}
	f := &fixture{}
	s, _ := newSyncStore()
	var actions []*api.StoreAction
	flush := func() {
		if len(actions) > 0 {
			mustApply(b, s, 1, actions...)
			actions = actions[:0]
		}
	}
	for i := range nNodes {
		id := randomID(r)
		f.nodes = append(f.nodes, id)
		n := node(id, fmt.Sprintf("worker-%05d", i))
		n.Description = &api.NodeDescription{Hostname: n.Spec.Name, Resources: &api.Resources{NanoCpus: 8e9, MemoryBytes: 32 << 30}}
		n.Status = &api.NodeStatus{State: api.NodeState_NODE_STATE_READY, Addr: "10.0.0.1"}
		actions = append(actions, aCreate(n))
	}
	for i := range nServices {
		id := randomID(r)
		f.services = append(f.services, id)
		svc := service(id, fmt.Sprintf("svc-%04d", i))
		svc.Spec.Task.Container.Env = []string{"A=1", "B=2"}
		svc.Spec.Task.Container.Command = []string{"/workload", "--serve"}
		svc.Spec.Task.Reservations = &api.Resources{NanoCpus: 1e8, MemoryBytes: 64 << 20}
		svc.Spec.Mode = &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: uint64(nTasks / nServices)}}
		actions = append(actions, aCreate(svc))
	}
	flush()
	for i := range nTasks {
		id := randomID(r)
		f.tasks = append(f.tasks, id)
		svc := s.Service(f.services[i%nServices])
		tk := task(id, svc.Id, uint64(i/nServices+1), "", pending)
		tk.Spec = svc.Spec.Task
		tk.SpecVersion = 1
		tk.ServiceName = svc.Spec.Name
		tk.Status.Message = "waiting for the scheduler"
		actions = append(actions, aCreate(tk))
		if len(actions) == 10000 {
			flush()
		}
	}
	flush()
	f.pending = snapshot(b, s)
	for i, id := range f.tasks {
		tk := s.Task(id)
		actions = append(actions, aAssign(id, f.nodes[i%nNodes], tk.Meta.Version))
		if len(actions) == 10000 {
			flush()
		}
	}
	flush()
	f.assigned = snapshot(b, s)
	fixtures[key] = f
	return f
}

func restored(b *testing.B, snap []byte) *Store {
	s, _ := newSyncStore()
	if err := s.Restore(snap); err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkApplyAssignments decodes and applies one proposal of n task
// assignments (the scheduler's batch), on a store holding 100,000 pending
// tasks and 10,000 nodes.
func BenchmarkApplyAssignments(b *testing.B) {
	f := benchFixture(b, 10000, 100, 100000)
	for _, n := range []int{10000, 100000} {
		for _, watched := range []bool{false, true} {
			b.Run(fmt.Sprintf("n=%d/watched=%v", n, watched), func(b *testing.B) {
				s := restored(b, f.pending)
				actions := make([]*api.StoreAction, n)
				for i := range n {
					id := f.tasks[i]
					actions[i] = aAssign(id, f.nodes[i%len(f.nodes)], s.Task(id).Meta.Version)
				}
				data := enc(b, 1, actions...)
				b.ReportMetric(float64(len(data))/float64(n), "B/assignment")
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					b.StopTimer()
					s = restored(b, f.pending)
					runtime.GC() // do not bill the restore's garbage to the apply
					events := 0
					if watched {
						s.Watch(func(evs []Event) { events += len(evs) })
					}
					b.StartTimer()
					res, err := s.Apply(s.AppliedIndex()+1, data, nil)
					if err != nil || res != nil {
						b.Fatal(res, err)
					}
					if watched && events != n {
						b.Fatalf("%d events", events)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/assignment")
			})
		}
	}
}

// BenchmarkApplyStatusUpdates decodes and applies one proposal of 10,000
// task status updates (the dispatcher's batch) on 100,000 assigned tasks.
func BenchmarkApplyStatusUpdates(b *testing.B) {
	f := benchFixture(b, 10000, 100, 100000)
	const n = 10000
	actions := make([]*api.StoreAction, n)
	for i := range n {
		actions[i] = aStatus(f.tasks[i*7], running, 1000)
	}
	data := enc(b, 1, actions...)
	b.ReportMetric(float64(len(data))/float64(n), "B/update")
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		s := restored(b, f.assigned)
		runtime.GC()
		b.StartTimer()
		if res, err := s.Apply(s.AppliedIndex()+1, data, nil); err != nil || res != nil {
			b.Fatal(res, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/update")
}

// BenchmarkTxAssign is the writer's side of a scheduler batch: 10,000
// AssignTask calls in one transaction, encoded and handed to a proposer.
func BenchmarkTxAssign(b *testing.B) {
	f := benchFixture(b, 10000, 100, 100000)
	s := restored(b, f.pending)
	s.SetProposer(discard{})
	const n = 10000
	b.ReportAllocs()
	for b.Loop() {
		s.Update(func(tx *Tx) error {
			for i := range n {
				id := f.tasks[i]
				if err := tx.AssignTask(id, f.nodes[i%len(f.nodes)], s.Task(id).Meta.Version); err != nil {
					return err
				}
			}
			return nil
		}, func(err error) {
			if err != nil {
				b.Fatal(err)
			}
		})
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/assignment")
}

type discard struct{}

func (discard) Propose(_ []byte, done Proposal) { done.Done(nil, nil) }

// BenchmarkSnapshot encodes 100,000 assigned tasks, 10,000 nodes and 100
// services.
func BenchmarkSnapshot(b *testing.B) {
	f := benchFixture(b, 10000, 100, 100000)
	s := restored(b, f.assigned)
	b.ReportAllocs()
	var data []byte
	for b.Loop() {
		var err error
		if data, err = s.Snapshot(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(data))/(1<<20), "MiB")
}

// BenchmarkRestore decodes and indexes the same snapshot, and reports the
// heap the restored store holds per task (nodes and services included).
func BenchmarkRestore(b *testing.B) {
	f := benchFixture(b, 10000, 100, 100000)
	b.ReportAllocs()
	var s *Store
	for b.Loop() {
		s = restored(b, f.assigned)
	}
	b.StopTimer()
	var m0, m1 runtime.MemStats
	s = nil
	runtime.GC()
	runtime.ReadMemStats(&m0)
	s = restored(b, f.assigned)
	runtime.GC()
	runtime.ReadMemStats(&m1)
	b.ReportMetric(float64(m1.HeapAlloc-m0.HeapAlloc)/float64(len(f.tasks)), "heapB/task")
	runtime.KeepAlive(s)
}

// BenchmarkQuery lists tasks by node (10 each) and by service (1,000
// each) among 100,000, as slices and through iterators; ns/task shows the
// cost follows the result, not the store.
func BenchmarkQuery(b *testing.B) {
	f := benchFixture(b, 10000, 100, 100000)
	s := restored(b, f.assigned)
	benches := []struct {
		name string
		keys []string
		run  func(key string) int
	}{
		{"TasksByNode", f.nodes, func(k string) int { return len(s.TasksByNode(k)) }},
		{"EachTaskByNode", f.nodes, func(k string) int {
			n := 0
			for range s.EachTaskByNode(k) {
				n++
			}
			return n
		}},
		{"TasksByService", f.services, func(k string) int { return len(s.TasksByService(k)) }},
		{"EachTaskByService", f.services, func(k string) int {
			n := 0
			for range s.EachTaskByService(k) {
				n++
			}
			return n
		}},
		{"TasksBySlot", f.services, func(k string) int { return len(s.TasksBySlot(k, 7)) }},
		{"Task", f.tasks, func(k string) int {
			if s.Task(k) == nil {
				return 0
			}
			return 1
		}},
	}
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			total, i := 0, 0
			for b.Loop() {
				total += bb.run(bb.keys[i%len(bb.keys)])
				i++
			}
			if total == 0 {
				b.Fatal("empty results")
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(total), "ns/task")
		})
	}
}

// BenchmarkApplyCreateTasks applies proposals of 1,000 task creations whose
// specs equal their service's (the orchestrator's batch) on 100,000 tasks:
// decode, spec sharing, indexing. Each iteration deletes its tasks again,
// untimed, so the store keeps its size.
func BenchmarkApplyCreateTasks(b *testing.B) {
	f := benchFixture(b, 10000, 100, 100000)
	s := restored(b, f.assigned)
	r := &splitmix{9}
	const n = 1000
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		creates := make([]*api.StoreAction, n)
		deletes := make([]*api.StoreAction, n)
		for i := range creates {
			svc := s.Service(f.services[i%len(f.services)])
			tk := task(randomID(r), svc.Id, uint64(5000+i), "", pending)
			tk.Spec = proto.Clone(svc.Spec.Task).(*api.TaskSpec)
			tk.ServiceName = svc.Spec.Name
			creates[i] = aCreate(tk)
			deletes[i] = aDelete(KindTask, tk.Id, 0)
		}
		data := enc(b, 1, creates...)
		b.StartTimer()
		if res, err := s.Apply(s.AppliedIndex()+1, data, nil); err != nil || res != nil {
			b.Fatal(res, err)
		}
		b.StopTimer()
		mustApply(b, s, 2, deletes...)
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/task")
}

// BenchmarkApplyKV decodes and applies proposals of one KV update each, as
// every manager does for the raft benchmark's writes: 256 keys of 16-byte
// values, each written again and again, with one watcher (the managers
// always have some).
func BenchmarkApplyKV(b *testing.B) {
	const keys = 256
	s, _ := newSyncStore()
	s.Watch(func([]Event) {})
	value := []byte("abcdefghijklmnop")
	for i := range keys {
		mustApply(b, s, 1, aCreate(&api.KV{Key: fmt.Sprintf("key-%04d", i), Value: value}))
	}
	// Pre-encode the updates: key i%keys, based on the version its last
	// write got (the index of that proposal).
	data := make([][]byte, b.N)
	next := s.AppliedIndex() + 1
	version := make([]uint64, keys)
	for i := range keys {
		version[i] = s.KV(fmt.Sprintf("key-%04d", i)).Meta.Version
	}
	for i := range b.N {
		k := i % keys
		data[i] = enc(b, 1000+int64(i), aUpdate(&api.KV{Key: fmt.Sprintf("key-%04d", k), Value: value,
			Meta: &api.Meta{Version: version[k]}}))
		version[k] = next + uint64(i)
	}
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if res, err := s.Apply(next+uint64(i), data[i], nil); err != nil || res != nil {
			b.Fatal(res, err)
		}
	}
}

// BenchmarkUpdateKV is the leader's whole store path of one KV write:
// Update reads the key, records the write, encodes and proposes it, and a
// synchronous loopback applies it.
func BenchmarkUpdateKV(b *testing.B) {
	const keys = 256
	s, _ := newSyncStore()
	s.Watch(func([]Event) {})
	names := make([]string, keys)
	for i := range names {
		names[i] = fmt.Sprintf("key-%04d", i)
	}
	const value = "abcdefghijklmnop"
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		key := names[i%keys]
		s.Update(func(tx *Tx) error {
			kv := &api.KV{Key: key, Value: []byte(value)}
			cur := tx.KV(key)
			if cur == nil {
				return tx.Create(kv)
			}
			kv.Meta = &api.Meta{Version: cur.Meta.Version}
			return tx.Update(kv)
		}, func(err error) {
			if err != nil {
				b.Fatal(err)
			}
		})
	}
}
