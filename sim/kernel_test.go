package sim

import (
	"bytes"
	crand "crypto/rand"
	"math/big"
	"strings"
	"testing"
	"time"
)

func TestKernelOrdersByTimeThenSequence(t *testing.T) {
	k := NewKernel(1)
	var got []string
	add := func(d time.Duration, s string) { k.Schedule(d, KindStep, func() { got = append(got, s) }) }
	add(3*time.Millisecond, "c")
	add(1*time.Millisecond, "a1")
	add(2*time.Millisecond, "b")
	add(1*time.Millisecond, "a2")
	add(0, "zero")
	for k.Step() {
	}
	want := "zero a1 a2 b c"
	if s := strings.Join(got, " "); s != want {
		t.Fatalf("order = %q, want %q", s, want)
	}
	if k.Now() != 3*time.Millisecond {
		t.Fatalf("now = %v, want 3ms", k.Now())
	}
}

func TestKernelCancel(t *testing.T) {
	k := NewKernel(1)
	var got []int
	ids := make([]TimerID, 10)
	for i := range ids {
		ids[i] = k.Schedule(time.Duration(i)*time.Millisecond, KindTimer, func() { got = append(got, i) })
	}
	for _, i := range []int{0, 3, 9, 5} {
		if !k.Cancel(ids[i]) {
			t.Fatalf("Cancel(%d) = false, want true", i)
		}
		if k.Cancel(ids[i]) {
			t.Fatalf("second Cancel(%d) = true", i)
		}
	}
	if k.Cancel(0) {
		t.Fatal("Cancel(0) = true")
	}
	for k.Step() {
	}
	if want := []int{1, 2, 4, 6, 7, 8}; !equalInts(got, want) {
		t.Fatalf("fired %v, want %v", got, want)
	}
	// A stale ID must not cancel the event that reuses its slot.
	fired := false
	id := k.Schedule(time.Millisecond, KindTimer, func() {})
	k.Step()
	k.Schedule(time.Millisecond, KindTimer, func() { fired = true })
	if k.Cancel(id) {
		t.Fatal("stale Cancel succeeded")
	}
	k.Step()
	if !fired {
		t.Fatal("event cancelled through a stale ID")
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestCrashDropsPendingEvents(t *testing.T) {
	k := NewKernel(1)
	n := k.AddNode("m1")
	fired := 0
	n.AfterFunc(time.Second, func() { fired++ })
	n.Post(func() { fired++ })
	n.Crash()
	n.Start()
	n.AfterFunc(2*time.Second, func() { fired += 10 })
	for k.Step() {
	}
	if fired != 10 {
		t.Fatalf("fired = %d, want only the event after restart (10)", fired)
	}
}

func TestClockSkew(t *testing.T) {
	k := NewKernel(1)
	n := k.AddNode("m1")
	n.SetSkew(2 * time.Second)
	if got := n.Now().Sub(Epoch); got != 2*time.Second {
		t.Fatalf("skewed now = %v, want 2s", got)
	}
}

func TestNamedStreamsIndependent(t *testing.T) {
	a := NewKernel(7)
	b := NewKernel(7)
	b.AddNode("extra") // another node must not shift m1's draws
	ra := a.AddNode("m1").Rand("raft")
	rb := b.AddNode("m1").Rand("raft")
	for i := 0; i < 100; i++ {
		if x, y := ra.Int63n(1e9), rb.Int63n(1e9); x != y {
			t.Fatalf("draw %d: %d != %d", i, x, y)
		}
	}
	if NewKernel(7).NewRand("x").Uint64() == NewKernel(8).NewRand("x").Uint64() {
		t.Fatal("different seeds gave the same first draw")
	}
}

// raft/v3 draws election timeouts with rand.Int(rand.Reader, n): while a
// kernel is active that must be the kernel's seeded stream.
func TestActivateSeedsCryptoRand(t *testing.T) {
	draw := func(seed uint64) []int64 {
		k := NewKernel(seed)
		n := k.AddNode("m1")
		var out []int64
		restore := k.Activate()
		defer restore()
		for i := 0; i < 5; i++ {
			n.Post(func() {
				v, err := crand.Int(crand.Reader, big.NewInt(1_000_000))
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, v.Int64())
			})
		}
		for k.Step() {
		}
		return out
	}
	a, b, c := draw(1), draw(1), draw(2)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed, draw %d: %d != %d", i, a[i], b[i])
		}
	}
	same := true
	for i := range a {
		same = same && a[i] == c[i]
	}
	if same {
		t.Fatal("different seeds gave identical crypto/rand draws")
	}
	if crand.Reader == nil {
		t.Fatal("crypto/rand.Reader not restored")
	}
}

func TestTraceDoesNotChangeHash(t *testing.T) {
	run := func(trace bool) (uint64, string) {
		k := NewKernel(3)
		n := k.AddNode("m1")
		var buf bytes.Buffer
		if trace {
			k.SetTrace(&buf)
		}
		for i := 0; i < 10; i++ {
			n.AfterFunc(time.Duration(i)*time.Millisecond, func() { k.Note("tick %d", i) })
		}
		for k.Step() {
		}
		return k.TraceHash(), buf.String()
	}
	h1, text := run(true)
	h2, _ := run(false)
	if h1 != h2 {
		t.Fatalf("tracing changed the hash: %x != %x", h1, h2)
	}
	if !strings.Contains(text, "m1 timer") || !strings.Contains(text, "tick 9") {
		t.Fatalf("trace lacks events:\n%s", text)
	}
}

// BenchmarkKernelTimers measures the kernel's raw event rate: each event
// re-arms itself, so the heap holds a steady population of timers.
func BenchmarkKernelTimers(b *testing.B) {
	for _, pending := range []int{1, 1000, 100000} {
		b.Run(itoa(pending), func(b *testing.B) {
			k := NewKernel(1)
			n := k.AddNode("m1")
			rnd := n.Rand("bench")
			var fn func()
			fn = func() { n.At(time.Duration(1+rnd.Int63n(1000))*time.Microsecond, KindTimer, 0, fn) }
			for i := 0; i < pending; i++ {
				n.At(time.Duration(rnd.Int63n(1000))*time.Microsecond, KindTimer, 0, fn)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				k.Step()
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

func itoa(n int) string {
	switch {
	case n >= 1000 && n%1000 == 0:
		return itoa(n/1000) + "k"
	default:
		return big.NewInt(int64(n)).String()
	}
}
