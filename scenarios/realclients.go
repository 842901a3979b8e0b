package scenarios

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/swarmsim/swarmsim/realnet/rpc"
)

// kvAPI is the part of a manager's control API the clients call
// (rpc.ControlClient has it).
type kvAPI interface {
	KVGet(ctx context.Context, in *rpc.KVGetRequest, opts ...grpc.CallOption) (*rpc.KVValue, error)
	KVPut(ctx context.Context, in *rpc.KVPutRequest, opts ...grpc.CallOption) (*rpc.Empty, error)
	KVCAS(ctx context.Context, in *rpc.KVCASRequest, opts ...grpc.CallOption) (*rpc.KVCASResponse, error)
}

// realClients are the file's clients in real mode: one goroutine each,
// one operation at a time on one manager's control API, moving to the
// next manager when an operation fails; together they keep the file's
// rate. They draw their operations as the simulator's clients do, and
// their history, timed on the monotonic clock from before each call is
// sent to after its answer came, is checked the same way when they stop.
type realClients struct {
	cfg      Clients
	interval time.Duration // between one client's operations
	now      func() time.Duration
	// managers lists the managers up now, in a stable order; api is one
	// manager's control API.
	managers func() []string
	api      func(name string) kvAPI
	seed     uint64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu  sync.Mutex
	ops []ClientOp

	stopOnce sync.Once
	notes    []string
	broken   string
}

func newRealClients(cfg Clients, seed uint64, now func() time.Duration, managers func() []string, api func(string) kvAPI) *realClients {
	ctx, cancel := context.WithCancel(context.Background())
	return &realClients{
		cfg: cfg, interval: cfg.Rate.Interval() * time.Duration(cfg.Count),
		now: now, managers: managers, api: api, seed: seed, ctx: ctx, cancel: cancel,
	}
}

// start starts every client, their first operations spread over one
// interval.
func (cs *realClients) start() {
	for id := range cs.cfg.Count {
		offset := time.Duration(int64(cs.interval) * int64(id) / int64(max(cs.cfg.Count, 1)))
		r := seeded{rand.New(rand.NewPCG(cs.seed, 0x636c69656e74+uint64(id)))}
		cs.wg.Go(func() { cs.run(id, r, offset) })
	}
}

// sleep waits d, or until the clients stop; it reports whether they go on.
func (cs *realClients) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-cs.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (cs *realClients) run(id int, r seeded, offset time.Duration) {
	target, seq := id, 0
	if !cs.sleep(offset) {
		return
	}
	for {
		started := cs.now()
		if mgrs := cs.managers(); len(mgrs) > 0 {
			name := mgrs[target%len(mgrs)]
			seq++
			if !cs.do(cs.api(name), id, seq, r) {
				target++
			}
		}
		if cs.ctx.Err() != nil || !cs.sleep(max(cs.interval-(cs.now()-started), 0)) {
			return
		}
	}
}

// do runs one operation on api and records it; it reports whether the
// operation was answered.
func (cs *realClients) do(api kvAPI, id, seq int, r seeded) bool {
	cs.mu.Lock()
	op := drawOp(r, cs.cfg.Keys, id, seq, cs.ops)
	op.Call = cs.now()
	idx := len(cs.ops)
	cs.ops = append(cs.ops, op)
	cs.mu.Unlock()

	ctx, cancel := context.WithTimeout(cs.ctx, clientTimeout)
	var (
		value string
		ok    bool
		err   error
	)
	switch op.Kind {
	case OpRead:
		var v *rpc.KVValue
		if v, err = api.KVGet(ctx, &rpc.KVGetRequest{Key: op.Key}); err == nil {
			value = v.GetValue()
		}
	case OpWrite:
		_, err = api.KVPut(ctx, &rpc.KVPutRequest{Key: op.Key, Value: op.Value})
	case OpCAS:
		var v *rpc.KVCASResponse
		if v, err = api.KVCAS(ctx, &rpc.KVCASRequest{Key: op.Key, Old: op.Old, Value: op.Value}); err == nil {
			ok = v.GetSwapped()
		}
	}
	cancel()
	done := cs.now()

	cs.mu.Lock()
	defer cs.mu.Unlock()
	o := &cs.ops[idx]
	o.Done = done
	switch {
	case err == nil:
		if o.Kind == OpRead {
			o.Value = value
		}
		o.OK = ok
	case o.Kind == OpRead || !notApplied(err):
		// A read says nothing; a change may or may not have been made,
		// and stays open forever.
		o.Unknown = true
	default:
		// Definitely not made: drop it from the history.
		o.Unknown, o.Kind = true, OpRead
	}
	return err == nil
}

// notApplied reports whether a failed change is known not to have been
// made: the manager refused it before proposing it (not a manager, a bad
// request) or it lost every race it retried. A timeout, a cancelled call,
// a lost connection or a lost leadership (Unavailable) may have been
// applied.
func notApplied(err error) bool {
	switch status.Code(err) {
	case codes.InvalidArgument, codes.NotFound, codes.FailedPrecondition,
		codes.PermissionDenied, codes.Unauthenticated, codes.Aborted:
		return true
	}
	return false
}

// stop stops the clients, waits for their calls (cancelled ones become
// unknown) and checks the history once; later calls return the same.
func (cs *realClients) stop(linearizable bool) (notes []string, broken string) {
	cs.stopOnce.Do(func() {
		cs.cancel()
		cs.wg.Wait()
		cs.notes, cs.broken = checkHistory(cs.ops, linearizable)
	})
	return cs.notes, cs.broken
}
