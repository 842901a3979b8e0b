package realwrites

import (
	"context"
	"testing"
	"time"
)

// TestMeasure runs the smallest measurement: a real three-manager
// cluster, two steps, a few fsync samples. It checks what the figures are
// made of, never how fast anything was.
func TestMeasure(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three managers with logs on disk")
	}
	dir := t.TempDir()
	r, err := Measure(context.Background(), Config{
		Dir: dir, Clients: []int{1, 4}, Warmup: 100 * time.Millisecond, Duration: 400 * time.Millisecond, FsyncSamples: 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Fsync) != 20 || r.FsyncP50() <= 0 || r.FloorWritesPerSecond() <= 0 {
		t.Fatalf("fsync samples %v", r.Fsync)
	}
	if len(r.Steps) != 2 {
		t.Fatalf("%d steps", len(r.Steps))
	}
	for _, s := range r.Steps {
		if s.Writes == 0 || len(s.Latencies) != s.Writes || s.Elapsed < 400*time.Millisecond {
			t.Fatalf("step %+v", s)
		}
		// Every acknowledged write was fsynced on the leader: no batch
		// can carry a write that was not written.
		if s.LeaderFsyncs == 0 || s.LeaderFsyncTime <= 0 || s.CPU <= 0 {
			t.Fatalf("%d clients: %d writes, %d fsyncs on the leader taking %v, CPU %v", s.Clients, s.Writes, s.LeaderFsyncs, s.LeaderFsyncTime, s.CPU)
		}
		for i := 1; i < len(s.Latencies); i++ {
			if s.Latencies[i] < s.Latencies[i-1] {
				t.Fatal("latencies not sorted")
			}
		}
		t.Logf("%d clients: %d writes in %v (%.0f/s), %d leader fsyncs, p50 %v; fsync p50 %v",
			s.Clients, s.Writes, s.Elapsed, s.WritesPerSecond(), s.LeaderFsyncs, Quantile(s.Latencies, 0.5), r.FsyncP50())
	}
}

func TestQuantile(t *testing.T) {
	xs := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 5}, {0.99, 10}, {0.1, 1}, {0, 1}, {1, 10}} {
		if got := Quantile(xs, c.q); got != c.want {
			t.Errorf("Quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if Quantile(nil, 0.5) != 0 || Mean(nil) != 0 || Mean(xs) != 5 {
		t.Error("empty or mean")
	}
}
