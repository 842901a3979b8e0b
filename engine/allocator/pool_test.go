package allocator

import (
	"testing"

	"pgregory.net/rapid"
)

func TestPoolOrder(t *testing.T) {
	p := newPool(8, 2, 7) // hands out 2..6
	var got []int
	for i := 0; i < 5; i++ {
		got = append(got, p.alloc())
	}
	if want := []int{2, 3, 4, 5, 6}; !equalInts(got, want) {
		t.Fatalf("first sweep %v, want %v", got, want)
	}
	if p.alloc() != -1 || p.free() != 0 {
		t.Fatal("a full pool handed out an integer")
	}
	// Freed integers come back oldest first.
	p.release(4)
	p.release(2)
	if a, b := p.alloc(), p.alloc(); a != 4 || b != 2 {
		t.Fatalf("reuse order %d, %d; want 4, 2", a, b)
	}
	// Reserved integers outside [lo, hi) do not count against it.
	if !p.reserve(0) || p.reserve(0) || p.reserve(8) || p.reserve(-1) {
		t.Fatal("reserve of 0 once, and never out of the space")
	}
	if p.free() != 0 {
		t.Fatalf("free %d", p.free())
	}
}

func TestPoolReserveAheadOfCursor(t *testing.T) {
	p := newPool(16, 0, 16)
	p.reserve(1)
	p.reserve(3)
	var got []int
	for i := 0; i < 3; i++ {
		got = append(got, p.alloc())
	}
	if want := []int{0, 2, 4}; !equalInts(got, want) {
		t.Fatalf("allocated %v, want %v (skipping reserved ones)", got, want)
	}
	// Released above the cursor: the sweep finds it, no queue entry.
	p.reserve(10)
	p.release(10)
	if len(p.freed) != 0 {
		t.Fatalf("freed queue %v", p.freed)
	}
}

// The pool's one rule, under random operations: an integer is never held
// twice, and alloc fails only when [lo, hi) is full.
func TestPoolProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		size := rapid.IntRange(1, 300).Draw(t, "size")
		lo := rapid.IntRange(0, size-1).Draw(t, "lo")
		hi := rapid.IntRange(lo+1, size).Draw(t, "hi")
		p := newPool(size, lo, hi)
		held := map[int]bool{}
		live := 0 // held in [lo, hi)
		n := rapid.IntRange(0, 2000).Draw(t, "ops")
		for range n {
			switch rapid.IntRange(0, 2).Draw(t, "op") {
			case 0:
				i := p.alloc()
				if i < 0 {
					if live != hi-lo {
						t.Fatalf("alloc failed with %d of %d held", live, hi-lo)
					}
					continue
				}
				if i < lo || i >= hi {
					t.Fatalf("alloc gave %d outside [%d, %d)", i, lo, hi)
				}
				if held[i] {
					t.Fatalf("alloc gave %d twice", i)
				}
				held[i] = true
				live++
			case 1:
				i := rapid.IntRange(-1, size).Draw(t, "reserve")
				ok := p.reserve(i)
				want := i >= 0 && i < size && !held[i]
				if ok != want {
					t.Fatalf("reserve(%d) = %v, want %v", i, ok, want)
				}
				if ok {
					held[i] = true
					if i >= lo && i < hi {
						live++
					}
				}
			case 2:
				i := rapid.IntRange(-1, size).Draw(t, "release")
				ok := p.release(i)
				if ok != held[i] {
					t.Fatalf("release(%d) = %v, held %v", i, ok, held[i])
				}
				if ok {
					delete(held, i)
					if i >= lo && i < hi {
						live--
					}
				}
			}
			if p.free() != hi-lo-live || p.inUse != len(held) {
				t.Fatalf("free %d inUse %d; model %d, %d", p.free(), p.inUse, hi-lo-live, len(held))
			}
			if len(p.freed)-p.head > 2*(hi-lo)+64 {
				t.Fatalf("freed queue grew to %d", len(p.freed)-p.head)
			}
		}
	})
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

func BenchmarkPoolAllocRelease(b *testing.B) {
	b.ReportAllocs()
	p := newPool(1<<20, 2, 1<<20-1)
	for i := 0; i < 1<<19; i++ {
		p.alloc()
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		x := p.alloc()
		p.release(x)
	}
}
