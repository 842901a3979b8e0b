package scale

import (
	"testing"
	"time"
)

// TestRun simulates the smallest size for a short while: every worker
// runs its task, and the figures are there.
func TestRun(t *testing.T) {
	var fractions []float64
	r, err := Run(100, 3*time.Minute, 1, func(f float64) { fractions = append(fractions, f) })
	if err != nil {
		t.Fatal(err)
	}
	if r.Virtual != 3*time.Minute || r.Events == 0 || r.Wall <= 0 || r.PeakHeap == 0 || r.Converged <= 0 {
		t.Fatalf("%+v", r)
	}
	if len(fractions) == 0 || fractions[len(fractions)-1] != 1 {
		t.Fatalf("progress %v", fractions)
	}
}
