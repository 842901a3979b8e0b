package schedbench

import (
	"strings"
	"testing"
)

// TestRunBenchmark runs every variant on a small cluster: everything is
// placed, as evenly as the variant promises, and the figures add up.
func TestRunBenchmark(t *testing.T) {
	for _, v := range Variants {
		r, err := RunBenchmark(60, 5, v)
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		if r.Assigned != 300 || r.Tasks != 300 || r.Stats.Assigned != 300 || r.Stats.Batches == 0 {
			t.Fatalf("%s: %+v", v, r)
		}
		if r.Elapsed <= 0 || r.TasksPerSecond <= 0 || r.Allocs == 0 {
			t.Fatalf("%s: figures missing: %+v", v, r)
		}
	}
}

func TestPrepareRefuses(t *testing.T) {
	if _, err := Prepare(0, 1, Plain, nil); err == nil {
		t.Fatal("zero nodes accepted")
	}
	if _, err := Prepare(1, 1, "zigzag", nil); err == nil || !strings.Contains(err.Error(), "zigzag") {
		t.Fatalf("unknown variant: %v", err)
	}
}
