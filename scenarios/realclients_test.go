package scenarios

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/swarmsim/swarmsim/engine/raft"
	"github.com/swarmsim/swarmsim/realnet"
	"github.com/swarmsim/swarmsim/realnet/rpc"
)

// fakeKV is one manager of a fake key space shared by every manager.
type fakeKV struct {
	mu   *sync.Mutex
	data map[string]string
	// frozen, when set, is what this manager's reads see: a copy nobody
	// writes to (a stale follower).
	frozen map[string]string
	// every ambiguousEvery'th change is made but answered Unavailable, and
	// every refuseEvery'th refused with FailedPrecondition unmade.
	ambiguousEvery, refuseEvery, n int
	// ambiguous and refused count the changes answered so.
	ambiguous, refused int
}

func (f *fakeKV) KVGet(_ context.Context, in *rpc.KVGetRequest, _ ...grpc.CallOption) (*rpc.KVValue, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.frozen != nil {
		return &rpc.KVValue{Value: f.frozen[in.GetKey()]}, nil
	}
	return &rpc.KVValue{Value: f.data[in.GetKey()]}, nil
}

// change makes a change under the manager's failure modes.
func (f *fakeKV) change(apply func()) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	if f.refuseEvery > 0 && f.n%f.refuseEvery == 0 {
		f.refused++
		return status.Error(codes.FailedPrecondition, "not a manager")
	}
	apply()
	if f.ambiguousEvery > 0 && f.n%f.ambiguousEvery == 0 {
		f.ambiguous++
		return status.Error(codes.Unavailable, "leadership lost (the change may or may not have been made)")
	}
	return nil
}

func (f *fakeKV) KVPut(_ context.Context, in *rpc.KVPutRequest, _ ...grpc.CallOption) (*rpc.Empty, error) {
	return &rpc.Empty{}, f.change(func() { f.data[in.GetKey()] = in.GetValue() })
}

func (f *fakeKV) KVCAS(_ context.Context, in *rpc.KVCASRequest, _ ...grpc.CallOption) (*rpc.KVCASResponse, error) {
	swapped := false
	err := f.change(func() {
		if f.data[in.GetKey()] == in.GetOld() {
			f.data[in.GetKey()], swapped = in.GetValue(), true
		}
	})
	return &rpc.KVCASResponse{Swapped: swapped}, err
}

// runFakeClients runs real-mode clients against the fake managers until
// enough(ops) holds, then stops them and returns their verdict.
func runFakeClients(t *testing.T, mgrs map[string]*fakeKV, enough func([]ClientOp) bool) (notes []string, broken string, ops []ClientOp) {
	t.Helper()
	start := time.Now()
	names := []string{"m1", "m2", "m3"}
	cs := newRealClients(Clients{Count: 3, Rate: Rate{Ops: 3000, Per: time.Second}, Keys: 2}, 1,
		func() time.Duration { return time.Since(start) },
		func() []string { return names },
		func(name string) kvAPI { return mgrs[name] })
	cs.start()
	deadline := time.Now().Add(time.Minute)
	for {
		cs.mu.Lock()
		ok := enough(cs.ops)
		cs.mu.Unlock()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			cs.stop(false)
			t.Fatal("the clients' history never reached what the test needs")
		}
		time.Sleep(5 * time.Millisecond)
	}
	notes, broken = cs.stop(true)
	return notes, broken, cs.ops
}

func newFakeManagers() map[string]*fakeKV {
	mu, data := &sync.Mutex{}, map[string]string{}
	out := map[string]*fakeKV{}
	for _, n := range []string{"m1", "m2", "m3"} {
		out[n] = &fakeKV{mu: mu, data: data}
	}
	return out
}

func count(ops []ClientOp, f func(ClientOp) bool) int {
	n := 0
	for _, op := range ops {
		if f(op) {
			n++
		}
	}
	return n
}

func TestRealClientsLinearizable(t *testing.T) {
	mgrs := newFakeManagers()
	notes, broken, ops := runFakeClients(t, mgrs, func(ops []ClientOp) bool { return len(ops) >= 300 })
	if broken != "" {
		t.Fatalf("a linearizable key space was found not linearizable: %s", broken)
	}
	if !strings.HasPrefix(notes[0], "clients: ") {
		t.Fatalf("notes = %q", notes)
	}
	for _, k := range []OpKind{OpRead, OpWrite, OpCAS} {
		if count(ops, func(op ClientOp) bool { return op.Kind == k && !op.Unknown }) == 0 {
			t.Errorf("no %s was answered in %d operations", k, len(ops))
		}
	}
}

// A follower that serves reads from its own stale copy breaks
// linearizability as soon as one of its reads misses a write that had
// finished before the read began.
func TestRealClientsStaleReads(t *testing.T) {
	mgrs := newFakeManagers()
	mgrs["m2"].frozen = map[string]string{}
	stale := func(ops []ClientOp) bool {
		// Client 1 calls m2 (it moves on only after an error, and m2
		// answers everything).
		for _, r := range ops {
			if r.Client != 1 || r.Kind != OpRead || r.Done == 0 || r.Unknown {
				continue
			}
			for _, w := range ops {
				if w.Kind == OpWrite && w.Key == r.Key && w.Done != 0 && !w.Unknown && w.Done < r.Call {
					return true
				}
			}
		}
		return false
	}
	_, broken, ops := runFakeClients(t, mgrs, stale)
	if broken == "" {
		t.Fatalf("stale reads went unnoticed in %d operations", len(ops))
	}
}

// Changes answered Unavailable were made; those refused were not: the
// history stays linearizable only if the first stay open and the second
// are dropped.
func TestRealClientsAmbiguousAnswers(t *testing.T) {
	mgrs := newFakeManagers()
	for _, m := range mgrs {
		m.ambiguousEvery, m.refuseEvery = 3, 5
	}
	enough := func(ops []ClientOp) bool {
		// Reads that may see an ambiguous change, after a few of each.
		m := mgrs["m1"]
		m.mu.Lock()
		defer m.mu.Unlock()
		var ambiguous, refused int
		for _, f := range mgrs {
			ambiguous += f.ambiguous
			refused += f.refused
		}
		return len(ops) >= 400 && ambiguous >= 5 && refused >= 5
	}
	notes, broken, _ := runFakeClients(t, mgrs, enough)
	if broken != "" {
		t.Fatalf("made-but-unanswered and refused changes were misjudged: %s", broken)
	}
	if !strings.Contains(notes[0], "with unknown outcome") {
		t.Fatalf("notes = %q", notes)
	}
}

func TestNotApplied(t *testing.T) {
	for code, want := range map[codes.Code]bool{
		codes.FailedPrecondition: true, codes.InvalidArgument: true, codes.Aborted: true,
		codes.Unavailable: false, codes.DeadlineExceeded: false, codes.Canceled: false, codes.Unknown: false,
	} {
		if got := notApplied(status.Error(code, "x")); got != want {
			t.Errorf("notApplied(%v) = %v, want %v", code, got, want)
		}
	}
	if notApplied(context.DeadlineExceeded) {
		t.Error("a bare deadline counted as not applied")
	}
	// What swarmd answers for a change whose outcome the engine does not
	// know must keep it open; a manager that is not one refuses it unmade.
	for _, err := range []error{raft.ErrLeadershipLost, raft.ErrTimeout, raft.ErrStopped, &raft.NotLeaderError{}} {
		if notApplied(realnet.GRPCError(err)) {
			t.Errorf("swarmd's answer to %v (%v) counted as not applied", err, realnet.GRPCError(err))
		}
	}
	if !notApplied(realnet.GRPCError(realnet.ErrNotManager)) {
		t.Error("a node that is no manager: counted as maybe applied")
	}
}
