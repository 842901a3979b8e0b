package sim

import (
	"math/rand/v2"
	"testing"
)

// TestRandMatchesMathRand pins the streams: Rand computes its draws from
// an inline generator, and they must be the draws rand.Rand makes from
// the same seed, so traces recorded before stay valid.
func TestRandMatchesMathRand(t *testing.T) {
	k := NewKernel(42)
	for _, name := range []string{"m1/raft", "w17/agent", ""} {
		a := splitmix(k.seed ^ HashString(name))
		b := splitmix(a ^ 0x9e3779b97f4a7c15)
		want := rand.New(rand.NewPCG(a, b))
		got := k.NewRand(name)
		for i := range 1000 {
			switch i % 3 {
			case 0:
				if g, w := got.Float64(), want.Float64(); g != w {
					t.Fatalf("%q draw %d: Float64 %v, want %v", name, i, g, w)
				}
			case 1:
				if g, w := got.Uint64(), want.Uint64(); g != w {
					t.Fatalf("%q draw %d: Uint64 %v, want %v", name, i, g, w)
				}
			case 2:
				n := int64(i*7919 + 1)
				if g, w := got.Int63n(n), want.Int64N(n); g != w {
					t.Fatalf("%q draw %d: Int63n(%d) %v, want %v", name, i, n, g, w)
				}
			}
		}
		var p [13]byte
		got.Read(p[:])
		if w := want.Uint64(); p[0] != byte(w) || p[7] != byte(w>>56) {
			t.Fatalf("%q: Read does not draw from the same stream", name)
		}
	}
}
