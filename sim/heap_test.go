package sim

import (
	"math"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// The heap runs events in (time, scheduling order), whatever the mix of
// equal times, events scheduled while others run, and cancellations: the
// order a seed's whole trace rests on.
func TestHeapOrderProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		k := NewKernel(1)
		type ev struct {
			at  time.Duration
			seq int
		}
		var ran []ev
		seq := 0
		var add func(d time.Duration) TimerID
		add = func(d time.Duration) TimerID {
			seq++
			e := ev{at: k.Now() + d, seq: seq}
			return k.Schedule(d, KindStep, func() {
				ran = append(ran, e)
				// An event may schedule more, as timers re-arm.
				if len(ran) < 400 && e.seq%3 == 0 {
					add(time.Duration(rapid.IntRange(0, 5).Draw(t, "again")) * time.Millisecond)
				}
			})
		}
		n := rapid.IntRange(0, 300).Draw(t, "n")
		var ids []TimerID
		for range n {
			// Few distinct times, so that many events tie.
			ids = append(ids, add(time.Duration(rapid.IntRange(0, 20).Draw(t, "at"))*time.Millisecond))
		}
		cancelled := map[int]bool{}
		for i, id := range ids {
			if rapid.IntRange(0, 9).Draw(t, "cancel") == 0 && k.Cancel(id) {
				cancelled[i+1] = true
			}
		}
		for k.Step() {
		}
		for i, e := range ran {
			if cancelled[e.seq] {
				t.Fatalf("event %d ran after it was cancelled", e.seq)
			}
			if i > 0 {
				p := ran[i-1]
				if e.at < p.at || e.at == p.at && e.seq < p.seq {
					t.Fatalf("event %d (at %v) ran after event %d (at %v)", e.seq, e.at, p.seq, p.at)
				}
			}
		}
		if want := seq - len(cancelled); len(ran) != want {
			t.Fatalf("%d events ran, want %d", len(ran), want)
		}
	})
}

// less, the heap's branch-free comparison, agrees with before.
func TestHeapLess(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		gen := rapid.Custom(func(t *rapid.T) heapItem {
			return heapItem{
				at:  rapid.OneOf(rapid.Int64Range(0, 3), rapid.Int64Range(0, math.MaxInt64)).Draw(t, "at"),
				key: rapid.OneOf(rapid.Uint64Range(0, 3), rapid.Uint64()).Draw(t, "key"),
			}
		})
		a, b := gen.Draw(t, "a"), gen.Draw(t, "b")
		if got, want := less(a, b) == 1, a.before(b); got != want {
			t.Fatalf("less(%+v, %+v) = %v, before says %v", a, b, got, want)
		}
	})
}

// A timer set further out than time goes waits at the end of time, after
// everything else, instead of wrapping around to before now.
func TestTimerBeyondTheEndOfTime(t *testing.T) {
	k := NewKernel(1)
	var got []string
	k.Schedule(time.Second, KindStep, func() {
		k.Schedule(math.MaxInt64, KindStep, func() { got = append(got, "never") })
		k.Schedule(time.Second, KindStep, func() { got = append(got, "soon") })
	})
	k.RunUntil(time.Hour, nil)
	if len(got) != 1 || got[0] != "soon" {
		t.Fatalf("ran %v by an hour, want [soon]", got)
	}
	if k.Pending() != 1 {
		t.Fatalf("%d events pending, want the one at the end of time", k.Pending())
	}
}
