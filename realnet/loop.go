package realnet

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swarmsim/swarmsim/engine/env"
)

// ErrLoopStopped: the loop stopped before the function could run.
var ErrLoopStopped = errors.New("realnet: loop stopped")

// Loop is a node's event loop on the wall clock: env.Loop and env.Clock.
// Post may be called from any goroutine; functions run one at a time, in
// the order they were posted, on the loop's goroutine.
//
// The queue is unbounded because engine code posts from the loop itself
// and must never block; what comes from outside (the network) is bounded
// before it is posted (see Transport).
type Loop struct {
	mu      sync.Mutex
	queue   []func()
	spare   []func()
	wake    chan struct{}
	stopped bool
	done    chan struct{}

	ran     atomic.Uint64 // functions run, for liveness checks
	backlog atomic.Int64
	skew    atomic.Int64 // nanoseconds Now runs ahead of the machine's clock
}

var (
	_ env.Loop  = (*Loop)(nil)
	_ env.Clock = (*Loop)(nil)
)

// NewLoop starts a loop on a new goroutine.
func NewLoop() *Loop {
	l := &Loop{wake: make(chan struct{}, 1), done: make(chan struct{})}
	go l.run()
	return l
}

// Post queues f. After Stop, f is dropped.
func (l *Loop) Post(f func()) {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return
	}
	l.queue = append(l.queue, f)
	l.mu.Unlock()
	l.backlog.Add(1)
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *Loop) run() {
	defer close(l.done)
	for {
		l.mu.Lock()
		for len(l.queue) == 0 && !l.stopped {
			l.mu.Unlock()
			<-l.wake
			l.mu.Lock()
		}
		if l.stopped {
			l.queue = nil
			l.mu.Unlock()
			return
		}
		batch := l.queue
		l.queue = l.spare[:0]
		l.mu.Unlock()
		for i, f := range batch {
			batch[i] = nil
			if l.isStopped() {
				return
			}
			f()
			l.ran.Add(1)
			l.backlog.Add(-1)
		}
		l.mu.Lock()
		l.spare = batch[:0]
		l.mu.Unlock()
	}
}

func (l *Loop) isStopped() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stopped
}

// Stop ends the loop after the function running now; queued functions are
// dropped. It returns once the loop's goroutine has exited, unless called
// from the loop itself.
func (l *Loop) Stop() {
	l.mu.Lock()
	already := l.stopped
	l.stopped = true
	l.mu.Unlock()
	if !already {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

// Done is closed once the loop's goroutine has exited.
func (l *Loop) Done() <-chan struct{} { return l.done }

// Do runs f on the loop and waits for it to return, or for ctx to end.
// It must not be called from the loop.
func (l *Loop) Do(ctx context.Context, f func()) error {
	ran := make(chan struct{})
	l.Post(func() {
		f()
		close(ran)
	})
	select {
	case <-ran:
		return nil
	case <-l.done:
		return ErrLoopStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Call runs f on the loop, which answers through done, and waits for that
// answer or for ctx to end. done may be called later from the loop (an
// asynchronous engine call); only its first call counts. If ctx ends
// first, the answer is dropped when it comes.
func Call[T any](ctx context.Context, l *Loop, f func(done func(T, error))) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	l.Post(func() {
		var once bool
		f(func(v T, err error) {
			if once {
				return
			}
			once = true
			ch <- result{v, err}
		})
	})
	var zero T
	select {
	case r := <-ch:
		return r.v, r.err
	case <-l.done:
		return zero, ErrLoopStopped
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// Ran counts the functions the loop has run: a health check sees it grow.
func (l *Loop) Ran() uint64 { return l.ran.Load() }

// Backlog is the number of functions posted and not yet run.
func (l *Loop) Backlog() int64 { return l.backlog.Load() }

// Now is the wall clock, moved by the skew SetSkew set.
func (l *Loop) Now() time.Time { return time.Now().Add(time.Duration(l.skew.Load())) }

// SetSkew makes Now run d ahead of the machine's wall clock (behind when
// negative), as a machine whose clock is set wrong: for fault-injection
// tests. Monotonic, and so every timer and timeout, does not move. Safe
// to call from any goroutine.
func (l *Loop) SetSkew(d time.Duration) { l.skew.Store(int64(d)) }

// monoStart anchors Monotonic: time.Since measures with the monotonic
// reading time.Now took here, whatever the wall clock does since.
var monoStart = time.Now()

// Monotonic is the time since the process started, on the monotonic clock.
func (l *Loop) Monotonic() time.Duration { return time.Since(monoStart) }

// AfterFunc runs f on the loop once d has passed.
func (l *Loop) AfterFunc(d time.Duration, f func()) env.Timer {
	t := &loopTimer{}
	t.t = time.AfterFunc(d, func() {
		l.Post(func() {
			// A Stop that ran on the loop after the timer fired but
			// before this function ran still cancels it: engine code
			// relies on a stopped timer never calling back.
			if t.state.CompareAndSwap(timerPending, timerFired) {
				f()
			}
		})
	})
	return t
}

const (
	timerPending int32 = iota
	timerFired
	timerStopped
)

type loopTimer struct {
	t     *time.Timer
	state atomic.Int32
}

// Stop implements env.Timer: it reports whether f was kept from running.
func (t *loopTimer) Stop() bool {
	t.t.Stop()
	return t.state.CompareAndSwap(timerPending, timerStopped)
}
