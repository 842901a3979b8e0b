package metrics

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// epoch stands for sim.Epoch (metrics does not import sim).
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// world is a tiny changing world: one manager whose counters the test
// moves, and a worker that goes down.
type world struct {
	m1, w1 Snapshot
	events uint64
	now    time.Duration
}

func newWorld() *world {
	return &world{m1: managerSnapshot(), w1: workerSnapshot()}
}

func (w *world) registry() *prometheus.Registry {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewNodesCollector(func() []NodeSource {
		return []NodeSource{
			{"m1", SourceFunc(func() (Snapshot, error) { return w.m1, nil })},
			{"w1", SourceFunc(func() (Snapshot, error) { return w.w1, nil })},
		}
	}))
	reg.MustRegister(NewSimCollector(func() SimStats { return SimStats{Events: w.events, Virtual: w.now} }))
	return reg
}

// step moves the world on by d.
func (w *world) step(d time.Duration) {
	w.now += d
	w.events += 100
	rs := *w.m1.Raft
	rs.Proposals += 10
	w.m1.Raft = &rs
	sch := *w.m1.Scheduler
	sch.Latency.Observe(4 * time.Millisecond)
	w.m1.Scheduler = &sch
	if w.w1.Up {
		a := *w.w1.Agent
		a.HeartbeatsSent++
		w.w1.Agent = &a
	}
}

func points(ps ...float64) []Point {
	var out []Point
	for i := 0; i+1 < len(ps); i += 2 {
		out = append(out, Point{time.Duration(ps[i] * float64(time.Second)), ps[i+1]})
	}
	return out
}

func expectSeries(t *testing.T, what string, got, want []Point) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: got %v, want %v", what, got, want)
	}
}

func TestSamplerSeries(t *testing.T) {
	w := newWorld()
	s := NewSampler(w.registry(), epoch)
	sample := func() {
		t.Helper()
		if err := s.Sample(w.now); err != nil {
			t.Fatal(err)
		}
	}
	sample()
	w.step(time.Second)
	sample()
	w.step(1500 * time.Millisecond)
	w.w1 = Snapshot{} // the worker goes down
	sample()
	w.now += 400 * time.Microsecond // the same millisecond: replaces the last sample
	w.events += 3
	sample()
	if s.Samples() != 3 {
		t.Fatalf("%d samples, want 3", s.Samples())
	}

	m1 := map[string]string{"node": "m1"}
	expectSeries(t, "counter", s.Series("swarm_raft_proposals_total", m1), points(0, 101, 1, 111, 2.5, 121))
	expectSeries(t, "gauge", s.Series("swarm_sim_virtual_seconds", nil), points(0, 0, 1, 1, 2.5, 2.5004))
	expectSeries(t, "replaced", s.Series("swarm_sim_events_total", nil), points(0, 0, 1, 100, 2.5, 203))
	if err := s.Sample(time.Second); err == nil {
		t.Error("a sample back in time was taken")
	}
	expectSeries(t, "bucket", s.Series("swarm_scheduler_decision_latency_seconds_bucket", map[string]string{"node": "m1", "le": "0.005"}),
		points(0, 2, 1, 3, 2.5, 4))
	expectSeries(t, "bucket by another spelling", s.Series("swarm_scheduler_decision_latency_seconds_bucket", map[string]string{"node": "m1", "le": "5e-3"}),
		points(0, 2, 1, 3, 2.5, 4))
	expectSeries(t, "+Inf bucket", s.Series("swarm_scheduler_decision_latency_seconds_bucket", map[string]string{"node": "m1", "le": "+Inf"}),
		points(0, 4, 1, 5, 2.5, 6))
	expectSeries(t, "count", s.Series("swarm_scheduler_decision_latency_seconds_count", m1), points(0, 4, 1, 5, 2.5, 6))
	expectSeries(t, "summary sum", s.Series("swarm_store_proposal_actions_sum", m1), points(0, 270, 1, 270, 2.5, 270))
	expectSeries(t, "a node that went down", s.Series("swarm_agent_heartbeats_sent_total", map[string]string{"node": "w1"}),
		points(0, 42, 1, 43))
	expectSeries(t, "up", s.Series("swarm_node_up", map[string]string{"node": "w1"}), points(0, 1, 1, 1, 2.5, 0))
	expectSeries(t, "sum over nodes", s.Recording().Sum("swarm_agent_heartbeats_sent_total", nil), points(0, 102, 1, 103, 2.5, 60))
	if got := s.Series("swarm_raft_proposals_total", nil); got != nil {
		t.Errorf("labels must match exactly: got %v", got)
	}
	if got := s.Series("swarm_nothing", nil); got != nil {
		t.Errorf("an unknown name gave %v", got)
	}
	ms := s.Recording().Match("swarm_raft_messages_sent_total", m1)
	if len(ms) != 2 || ms[0].Labels["type"] != "MsgApp" || ms[1].Labels["type"] != "MsgHeartbeat" {
		t.Errorf("Match gave %v", ms)
	}
	names := s.Recording().Names()
	for _, n := range []string{"swarm_raft_proposals_total", "swarm_scheduler_decision_latency_seconds_bucket", "swarm_store_proposal_actions_count"} {
		if !slices.Contains(names, n) {
			t.Errorf("Names lacks %s", n)
		}
	}
}

// fakeKernel runs scheduled functions in time order, like sim.Kernel.
type fakeKernel struct {
	now   time.Duration
	queue []fakeEvent
	seq   int
}

type fakeEvent struct {
	at        time.Duration
	seq       int
	f         func()
	cancelled *bool
}

func (k *fakeKernel) schedule(d time.Duration, f func()) func() {
	k.seq++
	c := new(bool)
	k.queue = append(k.queue, fakeEvent{k.now + d, k.seq, f, c})
	return func() { *c = true }
}

func (k *fakeKernel) runUntil(t time.Duration) {
	for {
		slices.SortFunc(k.queue, func(a, b fakeEvent) int {
			if a.at != b.at {
				return int(a.at - b.at)
			}
			return a.seq - b.seq
		})
		if len(k.queue) == 0 || k.queue[0].at > t {
			break
		}
		e := k.queue[0]
		k.queue = k.queue[1:]
		k.now = e.at
		if !*e.cancelled {
			e.f()
		}
	}
	k.now = t
}

func TestSamplerEvery(t *testing.T) {
	w := newWorld()
	k := &fakeKernel{}
	s := NewSampler(w.registry(), epoch)
	stop := s.Every(time.Second, func() time.Duration { return k.now }, k.schedule)
	k.runUntil(3500 * time.Millisecond)
	stop()
	k.runUntil(10 * time.Second)
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	var times []time.Duration
	for _, p := range s.Series("swarm_node_up", map[string]string{"node": "m1"}) {
		times = append(times, p.T)
	}
	want := []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second}
	if !slices.Equal(times, want) {
		t.Fatalf("sampled at %v, want %v (and nothing after stop)", times, want)
	}
}

// TestWriteOpenMetrics checks the text of a small recording line by line.
func TestWriteOpenMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	var v float64
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "swarm_test_sent_bytes_total", Help: "Bytes \"sent\"\nsomewhere."},
		func() float64 { return v }))
	s := NewSampler(reg, epoch)
	for _, at := range []time.Duration{0, 1500 * time.Millisecond} {
		v += 10
		if err := s.Sample(at); err != nil {
			t.Fatal(err)
		}
	}
	var b bytes.Buffer
	if err := s.WriteOpenMetrics(&b); err != nil {
		t.Fatal(err)
	}
	want := `# HELP swarm_test_sent_bytes Bytes \"sent\"\nsomewhere.
# TYPE swarm_test_sent_bytes counter
# UNIT swarm_test_sent_bytes bytes
swarm_test_sent_bytes_total 10.0 1.7672256e+09
swarm_test_sent_bytes_total 20.0 1.7672256015e+09
# EOF
`
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
}

// TestOpenMetricsRoundTrip: what WriteOpenMetrics writes, ReadOpenMetrics
// reads back into the same series, and writes again byte for byte.
func TestOpenMetricsRoundTrip(t *testing.T) {
	w := newWorld()
	s := NewSampler(w.registry(), epoch)
	for range 4 {
		if err := s.Sample(w.now); err != nil {
			t.Fatal(err)
		}
		w.step(250 * time.Millisecond)
	}
	var first bytes.Buffer
	if err := s.WriteOpenMetrics(&first); err != nil {
		t.Fatal(err)
	}
	rec, err := ReadOpenMetrics(bytes.NewReader(first.Bytes()), epoch)
	if err != nil {
		t.Fatalf("reading back: %v\n%s", err, first.String())
	}
	var second bytes.Buffer
	if err := rec.WriteOpenMetrics(&second); err != nil {
		t.Fatal(err)
	}
	if first.String() != second.String() {
		t.Fatalf("round trip changed the text:\n%s\n---\n%s", first.String(), second.String())
	}
	if !slices.Equal(rec.Names(), s.Recording().Names()) {
		t.Fatalf("names %v, want %v", rec.Names(), s.Recording().Names())
	}
	for _, name := range rec.Names() {
		a, b := s.Recording().Match(name, nil), rec.Match(name, nil)
		if len(a) != len(b) {
			t.Fatalf("%s: %d series read back, want %d", name, len(b), len(a))
		}
		for i := range a {
			if !slices.Equal(a[i].Points, b[i].Points) {
				t.Errorf("%s%v: read back %v, want %v", name, a[i].Labels, b[i].Points, a[i].Points)
			}
		}
	}
	if n := strings.Count(first.String(), "# EOF"); n != 1 || !strings.HasSuffix(first.String(), "\n# EOF\n") {
		t.Errorf("%d # EOF lines, or not last", n)
	}
}

// TestDirectMatchesRegistry: a Sampler reading this package's collectors
// directly records what one gathering a registry of them records.
func TestDirectMatchesRegistry(t *testing.T) {
	w := newWorld()
	nodes := NewNodesCollector(func() []NodeSource {
		return []NodeSource{
			{"m1", SourceFunc(func() (Snapshot, error) { return w.m1, nil })},
			{"w1", SourceFunc(func() (Snapshot, error) { return w.w1, nil })},
			{"w2", fixed(Snapshot{})},
		}
	})
	simc := NewSimCollector(func() SimStats {
		s := fullSimStats()
		s.Events, s.Virtual = w.events, w.now
		return s
	})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(nodes, simc)
	viaRegistry := NewSampler(reg, epoch)
	direct := NewCollectorSampler(epoch, nodes, simc)
	for i := range 5 {
		for _, s := range []*Sampler{viaRegistry, direct} {
			if err := s.Sample(w.now); err != nil {
				t.Fatal(err)
			}
		}
		w.step(700 * time.Millisecond)
		if i == 2 {
			w.w1 = Snapshot{}
		}
	}
	var a, b bytes.Buffer
	if err := viaRegistry.WriteOpenMetrics(&a); err != nil {
		t.Fatal(err)
	}
	if err := direct.WriteOpenMetrics(&b); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		al, bl := strings.Split(a.String(), "\n"), strings.Split(b.String(), "\n")
		for i := range min(len(al), len(bl)) {
			if al[i] != bl[i] {
				t.Fatalf("line %d: registry %q, direct %q", i+1, al[i], bl[i])
			}
		}
		t.Fatalf("registry wrote %d lines, direct %d", len(al), len(bl))
	}
	if _, err := ReadOpenMetrics(&b, epoch); err != nil {
		t.Fatal(err)
	}
}

// TestDirectDuplicate: two collectors exporting the same series fail the
// sample, as they fail a registry's gather.
func TestDirectDuplicate(t *testing.T) {
	s := NewCollectorSampler(epoch, NewNodeCollector("m1", fixed(workerSnapshot())), NewNodeCollector("m1", fixed(workerSnapshot())))
	if err := s.Sample(0); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("sampling a series twice gave %v", err)
	}
}
