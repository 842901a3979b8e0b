package store

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"
	"unsafe"

	"google.golang.org/protobuf/proto"

	"github.com/swarmsim/swarmsim/engine/api"
)

// A Tx's reads see its own writes, through every index.
func TestTxReadsOwnWrites(t *testing.T) {
	s := baseStore(t)
	mustUpdate(t, s, func(tx *Tx) error {
		steps := []struct {
			name  string
			write func() error
			check func() bool
		}{
			{"create task", func() error { return tx.Create(task("t0", "s2", 5, "n3", assigned)) },
				func() bool {
					return tx.Task("t0") != nil &&
						slices.Equal(ids(tx.TasksByService("s2")), []string{"t0", "t3"}) &&
						slices.Equal(ids(tx.TasksByNode("n3")), []string{"t0"}) &&
						slices.Equal(ids(tx.TasksBySlot("s2", 5)), []string{"t0"}) &&
						slices.Equal(ids(tx.Tasks()), []string{"t0", "t1", "t2", "t3"})
				}},
			{"assign", func() error { return tx.AssignTask("t1", "n1", 1) },
				func() bool {
					tk := tx.Task("t1")
					return tk.NodeId == "n1" && tk.Status.State == assigned && tk.Status.Timestamp == tx.Timestamp() &&
						slices.Equal(ids(tx.TasksByNode("n1")), []string{"t1", "t2", "t3"}) &&
						len(tx.TasksByNode("")) == 0 && s.Task("t1").NodeId == ""
				}},
			{"status", func() error {
				return tx.UpdateTaskStatus("t1", &api.TaskStatus{State: accepted, Timestamp: 5})
			}, func() bool { return tx.Task("t1").Status.State == accepted && tx.Task("t1").NodeId == "n1" }},
			{"delete", func() error { return tx.Delete(KindTask, "t2", 1) },
				func() bool {
					return tx.Task("t2") == nil && tx.Get(KindTask, "t2") == nil &&
						slices.Equal(ids(tx.TasksByService("s1")), []string{"t1"}) && s.Task("t2") != nil
				}},
			{"rename service", func() error { return tx.Update(withVersion(service("s1", "www"), 1)) },
				func() bool {
					return tx.ServiceByName("web") == nil && tx.ServiceByName("www").GetId() == "s1" &&
						tx.Service("s1").Spec.Name == "www" && s.ServiceByName("web") != nil
				}},
			{"take the freed name", func() error { return tx.Create(service("s3", "web")) },
				func() bool {
					return tx.ServiceByName("web").GetId() == "s3" &&
						slices.Equal(ids(tx.Services()), []string{"s1", "s2", "s3"})
				}},
			{"node names", func() error { return tx.Update(withVersion(node("n3", "w3"), 1)) },
				func() bool {
					return slices.Equal(ids(tx.NodesByName("w1")), []string{"n1"}) &&
						slices.Equal(ids(tx.NodesByName("w3")), []string{"n3"})
				}},
			{"other kinds", func() error {
				return errors.Join(
					tx.Create(&api.Network{Id: "net2", Spec: &api.NetworkSpec{Name: "n2"}}),
					tx.Create(&api.Secret{Id: "sec2", Spec: &api.SecretSpec{Name: "s2"}}),
					tx.Create(&api.Config{Id: "cfg2", Spec: &api.ConfigSpec{Name: "c2"}}),
					tx.Create(&api.Cluster{Id: "c1"}),
					tx.Delete(KindKV, "k", 0),
				)
			}, func() bool {
				return tx.NetworkByName("n2").GetId() == "net2" && tx.SecretByName("s2").GetId() == "sec2" &&
					tx.ConfigByName("c2").GetId() == "cfg2" && tx.Cluster("c1") != nil && tx.KV("k") == nil &&
					len(tx.Networks()) == 2 && len(tx.Secrets()) == 2 && len(tx.Configs()) == 2 &&
					len(tx.Clusters()) == 1 && len(tx.KVs()) == 0 && tx.Network("net1") != nil &&
					tx.Secret("sec1") != nil && tx.Config("cfg1") != nil && len(tx.Nodes()) == 3
			}},
		}
		for _, st := range steps {
			if err := st.write(); err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			if !st.check() {
				t.Fatalf("%s: the Tx does not see its write", st.name)
			}
		}
		return nil
	})
	// What the Tx saw is what got applied.
	if tk := s.Task("t1"); tk.NodeId != "n1" || tk.Status.State != accepted || tk.Meta.Version != 2 {
		t.Fatalf("t1 = %v", tk)
	}
	if s.Task("t2") != nil || s.ServiceByName("web").GetId() != "s3" || len(s.TasksByService("s2")) != 2 {
		t.Fatal("applied content differs from the Tx's view")
	}
	checkIndexes(t, s)
}

// Every write checks at once what Apply would check.
func TestTxErrors(t *testing.T) {
	tests := []struct {
		name string
		fn   func(tx *Tx) error
		want error
	}{
		{"create existing", func(tx *Tx) error { return tx.Create(task("t1", "s1", 1, "", pending)) }, ErrExist},
		{"create nil", func(tx *Tx) error { return tx.Create((*api.Task)(nil)) }, ErrInvalid},
		{"create untyped nil", func(tx *Tx) error { return tx.Create(nil) }, ErrInvalid},
		{"create without ID", func(tx *Tx) error { return tx.Create(&api.KV{}) }, ErrInvalid},
		{"create with taken name", func(tx *Tx) error { return tx.Create(service("s9", "db")) }, ErrNameConflict},
		{"create with name taken in the tx", func(tx *Tx) error {
			if err := tx.Create(service("s8", "x")); err != nil {
				return err
			}
			return tx.Create(service("s9", "x"))
		}, ErrNameConflict},
		{"create after delete in the tx", func(tx *Tx) error {
			if err := tx.Delete(KindService, "s2", 1); err != nil {
				return err
			}
			return tx.Create(service("s2", "db"))
		}, nil},
		{"update missing", func(tx *Tx) error { return tx.Update(service("s9", "x")) }, ErrNotExist},
		{"update deleted in the tx", func(tx *Tx) error {
			if err := tx.Delete(KindService, "s2", 0); err != nil {
				return err
			}
			return tx.Update(withVersion(service("s2", "db"), 1))
		}, ErrNotExist},
		{"update stale", func(tx *Tx) error { return tx.Update(service("s1", "web")) }, ErrSequenceConflict},
		{"update twice names the stored version", func(tx *Tx) error {
			if err := tx.Update(withVersion(service("s1", "a"), 1)); err != nil {
				return err
			}
			return tx.Update(withVersion(service("s1", "b"), 1))
		}, nil},
		{"update created names version 0", func(tx *Tx) error {
			if err := tx.Create(service("s9", "x")); err != nil {
				return err
			}
			return tx.Update(service("s9", "y"))
		}, nil},
		{"rename onto taken name", func(tx *Tx) error { return tx.Update(withVersion(service("s1", "db"), 1)) }, ErrNameConflict},
		{"task state backwards", func(tx *Tx) error {
			return tx.Update(withVersion(task("t2", "s1", 2, "n1", assigned), 1))
		}, ErrStatusRegression},
		{"delete missing", func(tx *Tx) error { return tx.Delete(KindNode, "n9", 0) }, ErrNotExist},
		{"delete stale", func(tx *Tx) error { return tx.Delete(KindNode, "n1", 3) }, ErrSequenceConflict},
		{"delete bad kind", func(tx *Tx) error { return tx.Delete(KindNone, "n1", 0) }, ErrInvalid},
		{"status backwards", func(tx *Tx) error {
			return tx.UpdateTaskStatus("t2", &api.TaskStatus{State: assigned})
		}, ErrStatusRegression},
		{"status older in the same state", func(tx *Tx) error {
			if err := tx.UpdateTaskStatus("t2", &api.TaskStatus{State: running, Timestamp: 10}); err != nil {
				return err
			}
			return tx.UpdateTaskStatus("t2", &api.TaskStatus{State: running, Timestamp: 9})
		}, ErrStatusRegression},
		{"status of missing task", func(tx *Tx) error {
			return tx.UpdateTaskStatus("t9", &api.TaskStatus{State: running})
		}, ErrNotExist},
		{"nil status", func(tx *Tx) error { return tx.UpdateTaskStatus("t2", nil) }, ErrInvalid},
		{"assign stale", func(tx *Tx) error { return tx.AssignTask("t1", "n1", 0) }, ErrSequenceConflict},
		{"assign assigned", func(tx *Tx) error { return tx.AssignTask("t3", "n1", 1) }, ErrNotPending},
		{"assign twice", func(tx *Tx) error {
			if err := tx.AssignTask("t1", "n1", 1); err != nil {
				return err
			}
			return tx.AssignTask("t1", "n3", 1)
		}, ErrNotPending},
		{"assign to removed node", func(tx *Tx) error { return tx.AssignTask("t1", "n2", 1) }, ErrNodeUnavailable},
		{"assign to missing node", func(tx *Tx) error { return tx.AssignTask("t1", "n9", 1) }, ErrNodeUnavailable},
		{"assign missing task", func(tx *Tx) error { return tx.AssignTask("t9", "n1", 0) }, ErrNotExist},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := baseStore(t)
			var got error
			p := &recordingProposer{}
			s.SetProposer(p)
			s.Update(func(tx *Tx) error {
				got = tc.fn(tx)
				return nil
			}, nil)
			wantErr(t, got, tc.want)
			// Whatever the Tx accepted applies cleanly on the unchanged store.
			for _, data := range p.props {
				res, err := s.Apply(s.AppliedIndex()+1, data, nil)
				if err != nil || res != nil {
					t.Fatalf("the Tx accepted a proposal Apply rejects: %v %v", res, err)
				}
			}
		})
	}
}

// recordingProposer keeps proposals and answers each at once with err.
type recordingProposer struct {
	props [][]byte
	err   error
}

func (p *recordingProposer) Propose(data []byte, done Proposal) {
	p.props = append(p.props, data)
	done.Done(nil, p.err)
}

func TestUpdateOutcome(t *testing.T) {
	errFn := errors.New("fn failed")
	errLeader := errors.New("leadership lost")
	tests := []struct {
		name      string
		proposer  *recordingProposer // nil: none set
		maxBytes  int
		fn        func(tx *Tx) error
		want      error
		proposals int
	}{
		{"empty transaction", &recordingProposer{}, 0, func(tx *Tx) error { return nil }, nil, 0},
		{"fn error", &recordingProposer{}, 0, func(tx *Tx) error {
			_ = tx.Create(node("n9", ""))
			return errFn
		}, errFn, 0},
		{"no proposer", nil, 0, func(tx *Tx) error { return tx.Create(node("n9", "")) }, ErrNoProposer, 0},
		{"too large", &recordingProposer{}, 10, func(tx *Tx) error { return tx.Create(node("n9", "a long name")) }, ErrProposalTooLarge, 0},
		{"proposer error", &recordingProposer{err: errLeader}, 0, func(tx *Tx) error { return tx.Create(node("n9", "")) }, errLeader, 1},
		{"proposed", &recordingProposer{}, 0, func(tx *Tx) error { return tx.Create(node("n9", "")) }, nil, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New(&fakeClock{now: epoch})
			if tc.proposer != nil {
				s.SetProposer(tc.proposer)
			}
			s.SetMaxProposalBytes(tc.maxBytes)
			calls := 0
			var got error
			s.Update(tc.fn, func(err error) { calls++; got = err })
			if calls != 1 {
				t.Fatalf("done called %d times", calls)
			}
			wantErr(t, got, tc.want)
			if tc.proposer != nil && len(tc.proposer.props) != tc.proposals {
				t.Fatalf("%d proposals, want %d", len(tc.proposer.props), tc.proposals)
			}
		})
	}
}

// Two writers read the same version; the second to apply loses with
// ErrSequenceConflict through its done, asynchronously.
func TestUpdateConcurrentConflict(t *testing.T) {
	s := baseStore(t)
	loop := &fakeLoop{}
	s.SetProposer(NewLoopback(s, loop))
	var results []error
	for _, name := range []string{"first", "second"} {
		s.Update(func(tx *Tx) error {
			svc := tx.Service("s1").ShallowCopy()
			svc.Spec = &api.ServiceSpec{Name: name}
			return tx.Update(svc)
		}, func(err error) { results = append(results, err) })
	}
	if len(results) != 0 {
		t.Fatal("done ran before the loop applied")
	}
	loop.run()
	if len(results) != 2 || results[0] != nil || !errors.Is(results[1], ErrSequenceConflict) {
		t.Fatalf("results %v, want [nil, sequence conflict]", results)
	}
	if s.Service("s1").Spec.Name != "first" {
		t.Fatal("the losing write applied")
	}
}

// Proposals carry the clock's time at Update; applying reads no clock.
func TestUpdateTimestamp(t *testing.T) {
	s, clk := newSyncStore()
	clk.advance(90 * time.Second)
	mustUpdate(t, s, func(tx *Tx) error { return tx.Create(node("n1", "")) })
	want := epoch.Add(90 * time.Second).UnixNano()
	if m := s.Node("n1").Meta; m.CreatedAt != want || m.UpdatedAt != want {
		t.Fatalf("meta %v, want times %d", m, want)
	}
}

// A Tx used after its function returned refuses writes.
func TestTxClosed(t *testing.T) {
	s, _ := newSyncStore()
	var kept *Tx
	mustUpdate(t, s, func(tx *Tx) error { kept = tx; return nil })
	for _, err := range []error{
		kept.Create(node("n1", "")),
		kept.Update(node("n1", "")),
		kept.Delete(KindNode, "n1", 0),
		kept.UpdateTaskStatus("t", &api.TaskStatus{}),
		kept.AssignTask("t", "n", 0),
	} {
		wantErr(t, err, ErrTxClosed)
	}
}

// The objects a writer hands in never become the stored ones: changing them
// afterwards changes nothing.
func TestStoredObjectsAreNotTheWritersOwn(t *testing.T) {
	s, _ := newSyncStore()
	n := node("n1", "a")
	mustUpdate(t, s, func(tx *Tx) error { return tx.Create(n) })
	n.Spec.Name = "changed"
	if got := s.Node("n1"); got == n || got.Spec.Name != "a" {
		t.Fatal("the store kept the writer's pointer")
	}
	if n.Meta != nil {
		t.Fatal("the store changed the writer's object")
	}
}

// A synchronous Loopback queues a proposal made from a done callback or a
// watcher instead of applying inside the current apply.
func TestSyncLoopbackDoesNotNest(t *testing.T) {
	s, _ := newSyncStore()
	depth, maxDepth := 0, 0
	s.Watch(func(evs []Event) {
		depth++
		maxDepth = max(maxDepth, depth)
		if evs[0].ID == "n1" {
			s.Update(func(tx *Tx) error { return tx.Create(node("n2", "")) }, nil)
		}
		depth--
	})
	var order []string
	s.Update(func(tx *Tx) error { return tx.Create(node("n1", "")) }, func(err error) {
		order = append(order, "n1 done")
		s.Update(func(tx *Tx) error { return tx.Create(node("n3", "")) }, func(error) { order = append(order, "n3 done") })
	})
	if maxDepth != 1 {
		t.Fatalf("applies nested %d deep", maxDepth)
	}
	if got := ids(s.Nodes()); !slices.Equal(got, []string{"n1", "n2", "n3"}) {
		t.Fatalf("nodes %v", got)
	}
	if !slices.Equal(order, []string{"n1 done", "n3 done"}) {
		t.Fatalf("done order %v", order)
	}
	if n2, n3 := s.Node("n2").Meta.Version, s.Node("n3").Meta.Version; n2 != 2 || n3 != 3 {
		t.Fatalf("versions n2=%d n3=%d, want 2 and 3", n2, n3)
	}
}

// Tx.Update of a task carries the whole object; UpdateTaskStatus and
// AssignTask carry a few bytes.
func TestCompactActionsAreSmall(t *testing.T) {
	s := baseStore(t)
	tk := s.Task("t1")
	full := tk.ShallowCopy()
	full.NodeId = "n1"
	full.Status = &api.TaskStatus{State: assigned}
	fullSize := proto.Size(newAction(api.StoreAction_UPDATE, full))
	compactSize := proto.Size(aAssign(tk.Id, "n1", tk.Meta.Version))
	if compactSize*2 > fullSize {
		t.Fatalf("assignment takes %d bytes, full update %d", compactSize, fullSize)
	}
}

// A Tx kept after a transaction that wrote refuses writes too, and reads
// the store without panicking (Update drops the transaction's state once
// it is encoded).
func TestTxClosedAfterWrite(t *testing.T) {
	s, _ := newSyncStore()
	var kept *Tx
	mustUpdate(t, s, func(tx *Tx) error {
		kept = tx
		return tx.Create(&api.KV{Key: "k", Value: []byte("v")})
	})
	wantErr(t, kept.Create(&api.KV{Key: "j"}), ErrTxClosed)
	wantErr(t, kept.Update(&api.KV{Key: "k"}), ErrTxClosed)
	if got := kept.KV("k").GetValue(); string(got) != "v" {
		t.Fatalf("read %q through a closed Tx", got)
	}
}

// The proposals Update hands over are what proto.Marshal gives for the
// recorded actions, whether they fit the update's inline buffer (one small
// KV write) or not (a large value, several writes, other kinds), and each
// keeps its bytes while later updates run.
func TestUpdateProposalBytes(t *testing.T) {
	s, clk := newSyncStore()
	p := &recordingProposer{}
	s.SetProposer(p)
	ts := clk.Now().UnixNano()
	big := bytes.Repeat([]byte("x"), 200)
	cases := [][]*api.StoreAction{
		{aCreate(&api.KV{Key: "k", Value: []byte("small")})},
		{aCreate(&api.KV{Key: "k", Value: big})},
		{aCreate(&api.KV{Key: "a", Value: []byte("1")}), aCreate(&api.KV{Key: "b", Value: []byte("2")})},
		{aCreate(node("n1", "one"))},
		{aCreate(&api.KV{Key: "k"}), aCreate(node("n2", "two"))},
	}
	var want [][]byte
	for _, actions := range cases {
		want = append(want, enc(t, ts, actions...))
		s.Update(func(tx *Tx) error {
			for _, a := range actions {
				if err := tx.Create(actionObject(a)); err != nil {
					return err
				}
			}
			return nil
		}, func(err error) {
			if err != nil {
				t.Fatal(err)
			}
		})
	}
	if len(p.props) != len(cases) {
		t.Fatalf("%d proposals, want %d", len(p.props), len(cases))
	}
	for i := range cases {
		if !bytes.Equal(p.props[i], want[i]) {
			t.Fatalf("proposal %d:\n got %x\nwant %x", i, p.props[i], want[i])
		}
	}
}

// A pendingUpdate, allocated by every Update, fills the 256-byte size
// class exactly: one field more and it takes 288.
func TestPendingUpdateSize(t *testing.T) {
	if n := unsafe.Sizeof(pendingUpdate{}); n > 256 {
		t.Fatalf("pendingUpdate is %d bytes, over the 256-byte size class", n)
	}
}
