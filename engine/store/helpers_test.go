package store

import (
	"errors"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/env"
)

// epoch is the fake clock's start: tests never read the wall clock.
var epoch = time.Unix(1767225600, 0) // 2026-01-01T00:00:00Z

// tb is what test helpers need; both *testing.T and *rapid.T have it.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time                            { return c.now }
func (c *fakeClock) Monotonic() time.Duration                  { return c.now.Sub(time.Time{}) }
func (c *fakeClock) AfterFunc(time.Duration, func()) env.Timer { panic("store never sets timers") }
func (c *fakeClock) advance(d time.Duration)                   { c.now = c.now.Add(d) }

// fakeLoop queues posted functions until run.
type fakeLoop struct{ q []func() }

func (l *fakeLoop) Post(f func()) { l.q = append(l.q, f) }
func (l *fakeLoop) run() {
	for len(l.q) > 0 {
		f := l.q[0]
		l.q = l.q[1:]
		f()
	}
}

// newSyncStore returns a store that applies its proposals synchronously.
func newSyncStore() (*Store, *fakeClock) {
	clk := &fakeClock{now: epoch}
	s := New(clk)
	s.SetProposer(NewSyncLoopback(s))
	return s, clk
}

// update runs one transaction on a synchronous store and returns done's
// error.
func update(t tb, s *Store, fn func(tx *Tx) error) error {
	t.Helper()
	called := 0
	var got error
	s.Update(fn, func(err error) { called++; got = err })
	if called != 1 {
		t.Fatalf("done called %d times, want 1 (synchronous proposer)", called)
	}
	return got
}

func mustUpdate(t tb, s *Store, fn func(tx *Tx) error) {
	t.Helper()
	if err := update(t, s, fn); err != nil {
		t.Fatalf("update: %v", err)
	}
}

func node(id, name string) *api.Node {
	return &api.Node{Id: id, Spec: &api.NodeSpec{Name: name}}
}

func service(id, name string) *api.Service {
	return &api.Service{Id: id, Spec: &api.ServiceSpec{
		Name: name,
		Task: &api.TaskSpec{Container: &api.ContainerSpec{Image: "img:" + name, Labels: map[string]string{"b": "2", "a": "1", "c": "3"}}},
	}}
}

func task(id, svc string, slot uint64, nodeID string, st api.TaskState) *api.Task {
	return &api.Task{Id: id, ServiceId: svc, Slot: slot, NodeId: nodeID,
		Status: &api.TaskStatus{State: st}, DesiredState: api.TaskState_TASK_STATE_RUNNING}
}

// withVersion returns a shallow copy of o with meta.version v.
func withVersion[T Object](o T, v uint64) T {
	c := proto.Clone(o).(T)
	setMeta(c, &api.Meta{Version: v})
	return c
}

func aCreate(o Object) *api.StoreAction { return newAction(api.StoreAction_CREATE, o) }
func aUpdate(o Object) *api.StoreAction { return newAction(api.StoreAction_UPDATE, o) }
func aDelete(k Kind, id string, v uint64) *api.StoreAction {
	return newAction(api.StoreAction_DELETE, tombstone(k, id, v))
}
func aStatus(id string, st api.TaskState, ts int64) *api.StoreAction {
	return &api.StoreAction{Kind: api.StoreAction_UPDATE, Target: &api.StoreAction_TaskStatus{
		TaskStatus: &api.TaskStatusUpdate{TaskId: id, Status: &api.TaskStatus{State: st, Timestamp: ts}}}}
}
func aAssign(id, nodeID string, v uint64) *api.StoreAction {
	return &api.StoreAction{Kind: api.StoreAction_UPDATE, Target: &api.StoreAction_TaskAssignment{
		TaskAssignment: &api.TaskAssignment{TaskId: id, NodeId: nodeID, ExpectedVersion: v}}}
}

// enc encodes a proposal as Update would.
func enc(t tb, ts int64, actions ...*api.StoreAction) []byte {
	t.Helper()
	data, err := marshalOptions.Marshal(&api.Proposal{Timestamp: ts, Actions: actions})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// apply applies one proposal at the next index and returns its result as an
// error (nil: applied).
func apply(t tb, s *Store, ts int64, actions ...*api.StoreAction) error {
	t.Helper()
	res, err := s.Apply(s.AppliedIndex()+1, enc(t, ts, actions...), nil)
	if err != nil {
		t.Fatalf("Apply: decode error %v", err)
	}
	if res == nil {
		return nil
	}
	e, ok := res.(error)
	if !ok {
		t.Fatalf("Apply result %T, want error or nil", res)
	}
	return e
}

func mustApply(t tb, s *Store, ts int64, actions ...*api.StoreAction) {
	t.Helper()
	if err := apply(t, s, ts, actions...); err != nil {
		t.Fatalf("apply: %v", err)
	}
}

func snapshot(t tb, s *Store) []byte {
	t.Helper()
	data, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func ids[T Object](objs []T) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = ID(o)
	}
	return out
}

func wantErr(t tb, got, want error) {
	t.Helper()
	switch {
	case want == nil && got != nil:
		t.Fatalf("got error %v, want none", got)
	case want != nil && !errors.Is(got, want):
		t.Fatalf("got error %v, want %v", got, want)
	}
}
