package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// fullSimStats has every simulator metric non-empty.
func fullSimStats() SimStats {
	return SimStats{
		Events: 1234, PendingEvents: 56, Virtual: 90 * time.Second, Wall: 3 * time.Second,
		Network: NetworkStats{Sent: 100, Delivered: 90, Dropped: 12, Duplicated: 2},
		Machines: []MachineStats{
			{Node: "m1", DiskSyncs: 40, RunningContainers: 2, Containers: ContainerStats{Prepared: 3, Started: 3, Exited: 1}},
			{Node: "w1", DiskSyncs: 0, RunningContainers: 1, Containers: ContainerStats{Prepared: 1, Started: 1}},
		},
	}
}

// TestLint runs on everything this package exports the linter that
// `promtool check metrics` runs, and fails on any problem it finds. It
// first checks that the collect really exported every metric the
// collectors describe, so that none escapes the lint.
func TestLint(t *testing.T) {
	collectors := []prometheus.Collector{threeNodes(), NewSimCollector(fullSimStats)}
	fams := gather(t, collectors...)

	exported := map[string]bool{}
	for _, mf := range fams {
		exported[mf.GetName()] = true
		if !strings.HasPrefix(mf.GetName(), "swarm_") {
			t.Errorf("%s: every name starts with swarm_", mf.GetName())
		}
	}
	for _, c := range collectors {
		ch := make(chan *prometheus.Desc, 512)
		c.Describe(ch)
		close(ch)
		for d := range ch {
			// Desc has no name accessor; its String form quotes fqName.
			name := strings.SplitN(strings.SplitN(d.String(), `fqName: "`, 2)[1], `"`, 2)[0]
			if !exported[name] {
				t.Errorf("%s is described but the full snapshot did not export it: the lint cannot see it", name)
			}
		}
	}

	problems, err := promlint.NewWithMetricFamilies(fams).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	if len(exported) < 100 {
		t.Errorf("only %d metric families exported", len(exported))
	}
}

// TestLintCatches makes sure the lint above can fail: a badly named
// metric is reported.
func TestLintCatches(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "swarm_latency_milliseconds", Help: "bad"}))
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(fams).Lint()
	if err != nil || len(problems) == 0 {
		t.Fatalf("promlint found nothing in a counter without _total in milliseconds (%v)", err)
	}
}
