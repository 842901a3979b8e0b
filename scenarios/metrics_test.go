package scenarios

import (
	"bufio"
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/swarmsim/swarmsim/metrics"
	"github.com/swarmsim/swarmsim/sim"
)

// metricsScenario is small but moves every subsystem: an election, a
// service scheduled onto workers, a leader crash and a restart.
const metricsScenario = `
name: metrics
duration: 40s
cluster:
  managers: 3
  workers:
    - count: 3
      resources: {cpus: 4, memory: 8GiB}
  raft: {tick: 100ms, snapshot_every: 50}
  dispatcher: {heartbeat: 1s}
executor: {start: 100ms..300ms}
services:
  - name: web
    image: web:1
    replicas: 6
    resources: {cpus: 0.5, memory: 256MiB}
    constraints: [node.role==worker]
steps:
  - expect: {service: web, running: 6, within: 20s}
  - at: 10s
    crash: leader
  - expect: {leader: elected, within: 10s}
  - at: 20s
    restart: all
  - expect: {managers: 3, within: 10s}
  - at: 30s
    expect: {service: web, running: 6, within: 10s}
`

// fakeWall is a wall clock that moves 10ms each time it is read, so that
// the wall metrics are there and the same in every run.
func fakeWall() func() time.Time {
	t := time.Unix(0, 0)
	return func() time.Time {
		t = t.Add(10 * time.Millisecond)
		return t
	}
}

func runWithMetrics(t *testing.T, opt Options) (*Result, string) {
	t.Helper()
	sc, err := Parse("metrics.yaml", []byte(metricsScenario))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	opt.Metrics = &out
	res, err := RunSimulation(sc, opt)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Passed {
		t.Fatalf("the scenario failed: %s", res.Failure)
	}
	return res, out.String()
}

// TestRunMetrics: what `swarmsim run --metrics FILE` writes (RunSimulation
// with Options.Metrics) is OpenMetrics that the strict reader accepts,
// with time series over the run's virtual time that show what happened.
func TestRunMetrics(t *testing.T) {
	res, text := runWithMetrics(t, Options{Wall: fakeWall()})
	if !strings.HasSuffix(text, "\n# EOF\n") || strings.Count(text, "# EOF") != 1 {
		t.Fatalf("the text does not end with one # EOF")
	}
	rec, err := metrics.ReadOpenMetrics(strings.NewReader(text), sim.Epoch)
	if err != nil {
		t.Fatalf("not valid OpenMetrics: %v", err)
	}

	// Samples every virtual second from 0, and one at the end.
	virt := rec.Series("swarm_sim_virtual_seconds", nil)
	if len(virt) < 30 || virt[0].T != 0 || virt[1].T != time.Second || virt[len(virt)-1].T != res.Virtual.Truncate(time.Millisecond) {
		t.Fatalf("virtual time sampled at %v, run ended at %s", virt, res.Virtual)
	}
	for _, p := range virt {
		if p.V != p.T.Seconds() {
			t.Fatalf("swarm_sim_virtual_seconds %v at %s", p.V, p.T)
		}
	}
	for _, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if f := strings.Fields(line); len(f) != 3 {
			t.Fatalf("sample without a timestamp: %q", line)
		}
	}
	events := rec.Series("swarm_sim_events_total", nil)
	if last := events[len(events)-1].V; last != float64(res.Events) {
		t.Errorf("swarm_sim_events_total ends at %v, the run processed %d", last, res.Events)
	}

	// One leader at a time, and the crash shows.
	leaders := rec.Sum("swarm_raft_leader", nil)
	if at := valueAt(leaders, 5*time.Second); at != 1 {
		t.Errorf("%v leaders at 5s", at)
	}
	if at := valueAt(leaders, 9*time.Second); at != 1 {
		t.Errorf("%v leaders at 9s", at)
	}
	down := false
	for _, s := range rec.Match("swarm_node_up", nil) {
		if valueAt(s.Points, 15*time.Second) == 0 {
			down = true
			if last(s.Points) != 1 {
				t.Errorf("%s did not come back up", s.Labels["node"])
			}
		}
	}
	if !down {
		t.Errorf("no node was down at 15s, after the leader crashed at 10s")
	}
	if changes := rec.Sum("swarm_raft_leader_changes_total", nil); last(changes) < 2 {
		t.Errorf("leader changes %v: the crash made no new leader", changes)
	}

	// The subsystems' work shows up over time (counters restart from 0
	// with a restarted node, so look at their peaks).
	for _, name := range []string{
		"swarm_raft_proposals_total", "swarm_scheduler_decisions_total", "swarm_dispatcher_heartbeats_total",
		"swarm_orchestrator_reconcile_passes_total", "swarm_orchestrator_task_transitions_total",
		"swarm_agent_tasks_started_total", "swarm_sim_network_messages_delivered_total",
		"swarm_scheduler_decision_latency_seconds_count", "swarm_store_proposal_actions_count",
	} {
		if peak(rec.Sum(name, nil)) == 0 {
			t.Errorf("%s stays 0 over the run", name)
		}
	}
	if objs := last(rec.Sum("swarm_store_objects", map[string]string{"kind": "node", "node": "m1"})); objs != 6 {
		t.Errorf("m1's store holds %v nodes at the end, want 6", objs)
	}
	if r := rec.Series("swarm_sim_virtual_wall_ratio", nil); len(r) == 0 || last(r) <= 0 {
		t.Errorf("no virtual/wall ratio: %v", r)
	}
}

func valueAt(ps []metrics.Point, t time.Duration) float64 {
	i, found := slices.BinarySearchFunc(ps, t, func(p metrics.Point, t time.Duration) int { return int(p.T - t) })
	if !found {
		return -1
	}
	return ps[i].V
}

func peak(ps []metrics.Point) float64 {
	m := 0.0
	for _, p := range ps {
		m = max(m, p.V)
	}
	return m
}

func last(ps []metrics.Point) float64 {
	if len(ps) == 0 {
		return 0
	}
	return ps[len(ps)-1].V
}

// TestMetricsSameSeed: two runs of one seed write the same samples (given
// the same wall clock: the wall metrics are the only ones that depend on
// it).
func TestMetricsSameSeed(t *testing.T) {
	_, a := runWithMetrics(t, Options{Wall: fakeWall()})
	_, b := runWithMetrics(t, Options{Wall: fakeWall()})
	if a != b {
		t.Fatal("one seed twice wrote different metrics")
	}
}

// TestMetricsDoNotPerturbTheRun: sampling adds its own events (so the
// trace hash differs, and the determinism test runs without it) but
// changes nothing the cluster does: the trace of a sampled run, without
// the sampler's events, is the trace of a run without samples.
func TestMetricsDoNotPerturbTheRun(t *testing.T) {
	sc, err := Parse("metrics.yaml", []byte(metricsScenario))
	if err != nil {
		t.Fatal(err)
	}
	var plain, sampled bytes.Buffer
	a, err := RunSimulation(sc, Options{Trace: &plain})
	if err != nil {
		t.Fatal(err)
	}
	var samples bytes.Buffer
	b, err := RunSimulation(sc, Options{Trace: &sampled, Metrics: &samples, MetricsInterval: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if a.Virtual != b.Virtual || a.Passed != b.Passed {
		t.Fatalf("with samples the run ended at %s (passed %v), without at %s (passed %v)", b.Virtual, b.Passed, a.Virtual, a.Passed)
	}
	// The sampler's events are kernel timers outside any node, at
	// multiples of the interval.
	isSample := func(line string) bool {
		f := strings.Fields(line)
		if len(f) != 4 || f[1] != "-" || f[2] != sim.KindTimer.String() {
			return false
		}
		d, err := time.ParseDuration(strings.TrimSuffix(f[0], "s") + "s")
		return err == nil && d%(500*time.Millisecond) == 0
	}
	pl, sl := lines(plain.String()), lines(sampled.String())
	i, skipped := 0, 0
	for _, line := range sl {
		if i < len(pl) && line == pl[i] {
			i++
			continue
		}
		if !isSample(line) {
			t.Fatalf("the sampled run differs at line %d of the plain trace: %q, plain has %q", i+1, line, at(pl, i))
		}
		skipped++
	}
	if i != len(pl) {
		t.Fatalf("the sampled run lacks the plain trace from line %d: %q", i+1, pl[i])
	}
	if want := int(b.Events - a.Events); skipped != want || skipped < int(b.Virtual/(500*time.Millisecond)) {
		t.Fatalf("%d sampler events skipped; the sampled run has %d events more, over %s", skipped, want, b.Virtual)
	}
}

func lines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

func at(ls []string, i int) string {
	if i < len(ls) {
		return ls[i]
	}
	return fmt.Sprintf("(end, %d lines)", len(ls))
}

// TestSimRegistryLint: a simulated cluster's registry, mid-run, passes the
// lint of `promtool check metrics` (metrics/ lints every metric on fake
// stats; this checks the label values real runs produce too).
func TestSimRegistryLint(t *testing.T) {
	sc, err := Parse("metrics.yaml", []byte(metricsScenario))
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewSimWorld(sc, sc.Seed, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.RunUntil(15*time.Second, nil)
	fams, err := w.MetricsRegistry(fakeWall()).Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(fams).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	if len(fams) < 100 {
		t.Errorf("only %d families gathered", len(fams))
	}
}
