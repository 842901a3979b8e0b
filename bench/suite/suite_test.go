package suite

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarmsim/swarmsim/bench/report"
)

// TestQuick runs every benchmark once at its smallest size, in this
// process, as CI does so that none rots: each writes a report whose JSON
// and Markdown agree, with its plots, and the index links them all.
func TestQuick(t *testing.T) {
	dir := t.TempDir()
	var log bytes.Buffer
	reports, err := Run([]string{"all"}, Options{
		Quick:    true,
		Progress: report.NewPlainProgress(&log),
		Command:  "swarmsim bench NAME --quick",
		OnReport: func(r *report.Report) error {
			_, err := r.Write(dir)
			return err
		},
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if len(reports) != len(Names) {
		t.Fatalf("%d reports", len(reports))
	}
	for _, r := range reports {
		if err := report.Verify(dir, r.Bench); err != nil {
			t.Error(err)
		}
		if len(r.Headline) == 0 || len(r.Notes) == 0 {
			t.Errorf("%s: no headline or notes", r.Bench)
		}
		for _, f := range r.Figures {
			if f.Value < 0 {
				t.Errorf("%s: negative figure %+v", r.Bench, f)
			}
		}
		md, _ := os.ReadFile(filepath.Join(dir, r.Bench+".md"))
		if !strings.Contains(string(md), "swarmsim bench "+r.Bench+" --quick") {
			t.Errorf("%s.md does not say how to regenerate it", r.Bench)
		}
	}
	// Figures the issue asks for are there.
	for _, want := range []struct{ bench, figure string }{
		{"raft", "wall_writes_per_second"}, {"raft", "commit_latency_p99"}, {"raft", "store_to_raw_ratio"},
		{"scheduler", "tasks_per_second"}, {"failover", "leader_failover_p99"}, {"failover", "worker_failover_max"},
		{"scale", "virtual_to_wall_ratio"}, {"scale", "events_per_second"}, {"scale", "heap_per_node_kib"},
		{"realwrites", "writes_per_second"}, {"realwrites", "floor_ratio"}, {"realwrites", "fsync_latency_p50"},
		{"realwrites", "commit_latency_p99"}, {"realwrites", "leader_fsync_mean"},
	} {
		found := false
		for _, r := range reports {
			if r.Bench == want.bench {
				_, found = r.Find(want.figure, nil)
			}
		}
		if !found {
			t.Errorf("%s: no %s figure", want.bench, want.figure)
		}
	}
	if !strings.Contains(log.String(), "100%") {
		t.Errorf("progress never reached 100%%:\n%s", log.String())
	}
}

func TestExpand(t *testing.T) {
	got, err := Expand([]string{"scale", "all", "raft"})
	if err != nil || strings.Join(got, ",") != "scale,raft,scheduler,failover,realwrites" {
		t.Fatalf("%v %v", got, err)
	}
	if _, err := Expand([]string{"raf"}); err == nil || !strings.Contains(err.Error(), "raft") {
		t.Fatalf("unknown name: %v", err)
	}
}

func TestThinSorted(t *testing.T) {
	xs := make([]time.Duration, 10001)
	for i := range xs {
		xs[i] = time.Duration(i)
	}
	got := thinSorted(xs, 1000)
	if len(got) != 1000 || got[0] != 0 || got[999] != 10000 || got[500] < 4900 || got[500] > 5100 {
		t.Fatalf("%d points: first %v, middle %v, last %v", len(got), got[0], got[500], got[len(got)-1])
	}
	if short := xs[:5]; len(thinSorted(short, 1000)) != 5 {
		t.Fatal("a short sample is kept whole")
	}
}
