package scenarios

import (
	"fmt"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmsim/swarmsim/metrics"
	"github.com/swarmsim/swarmsim/sim"
	"github.com/swarmsim/swarmsim/sim/cluster"
)

// DefaultMetricsInterval is how often, in virtual time, a run with
// Options.Metrics samples its metrics.
const DefaultMetricsInterval = time.Second

// MetricsCollectors are the collectors of w's cluster: every machine's
// engine (resolved at each collect, so restarts and added machines are
// followed, and removed ones leave), and the simulator's own counters.
// wall, when not nil, adds the wall-clock metrics (swarm_sim_wall_seconds
// and swarm_sim_virtual_wall_ratio, counted from this call), the only ones
// that differ between two runs of one seed.
//
// Collecting reads the engines directly: do it between kernel events, on
// the goroutine running the simulation.
func (w *SimWorld) MetricsCollectors(wall func() time.Time) []metrics.Collector {
	var start time.Time
	if wall != nil {
		start = wall()
	}
	return []metrics.Collector{
		metrics.NewNodesCollector(w.nodeSources()),
		metrics.NewSimCollector(func() metrics.SimStats { return w.simStats(wall, start) }),
	}
}

// MetricsRegistry is a Prometheus registry of MetricsCollectors.
func (w *SimWorld) MetricsRegistry(wall func() time.Time) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	for _, c := range w.MetricsCollectors(wall) {
		reg.MustRegister(c)
	}
	return reg
}

// SampleMetrics samples w's metrics (MetricsCollectors, read directly
// rather than through a registry: a large cluster has hundreds of
// thousands of series) now and then every interval of virtual time, as
// kernel events, until stop is called; take a last sample at the end with
// Sampler.Sample(w.Now()). The sampler's events are part of the run: they
// change its trace hash and event count (not what the cluster does), so
// sample only when samples are wanted.
func (w *SimWorld) SampleMetrics(interval time.Duration, wall func() time.Time) (s *metrics.Sampler, stop func()) {
	s = metrics.NewCollectorSampler(sim.Epoch, w.MetricsCollectors(wall)...)
	stop = s.Every(interval, w.k.Now, func(d time.Duration, f func()) func() {
		id := w.k.Schedule(d, sim.KindTimer, f)
		return func() { w.k.Cancel(id) }
	})
	return s, stop
}

// simMetrics is a run's sampling for Options.Metrics.
type simMetrics struct {
	sampler *metrics.Sampler
	stop    func()
	out     io.Writer
}

// startMetrics starts sampling when opt.Metrics is set, and does nothing
// otherwise (the determinism test compares runs without samples). It runs
// before the file's setup, so that the samples start at virtual time 0.
func (w *SimWorld) startMetrics(opt Options) {
	if opt.Metrics == nil {
		return
	}
	wall := opt.Wall
	if wall == nil {
		wall = time.Now
	}
	every := opt.MetricsInterval
	if every <= 0 {
		every = DefaultMetricsInterval
	}
	s, stop := w.SampleMetrics(every, wall)
	w.metrics = &simMetrics{sampler: s, stop: stop, out: opt.Metrics}
}

// finishMetrics takes the last sample, at the run's end, and writes every
// sample to Options.Metrics as OpenMetrics text.
func (w *SimWorld) finishMetrics() error {
	m := w.metrics
	if m == nil {
		return nil
	}
	w.metrics = nil
	m.stop()
	if err := m.sampler.Err(); err != nil {
		return err
	}
	if err := m.sampler.Sample(w.Now()); err != nil {
		return err
	}
	if err := m.sampler.WriteOpenMetrics(m.out); err != nil {
		return fmt.Errorf("writing the metrics: %w", err)
	}
	return nil
}

// nodeSources lists a Source per machine that has not left the cluster,
// each reading the machine's engine of the moment.
func (w *SimWorld) nodeSources() func() []metrics.NodeSource {
	var cache []metrics.NodeSource // by machine, in the order machines were added
	return func() []metrics.NodeSource {
		ms := w.c.Machines()
		for i := len(cache); i < len(ms); i++ {
			m := ms[i]
			cache = append(cache, metrics.NodeSource{Node: m.Name, Source: metrics.SourceFunc(func() (metrics.Snapshot, error) {
				return metrics.FromNode(m.Engine), nil
			})})
		}
		out := make([]metrics.NodeSource, 0, len(ms))
		for i, m := range ms {
			if m.Status != cluster.NodeRemoved {
				out = append(out, cache[i])
			}
		}
		return out
	}
}

func (w *SimWorld) simStats(wall func() time.Time, start time.Time) metrics.SimStats {
	k, nw := w.k, w.c.Net
	s := metrics.SimStats{
		Events:        k.Processed(),
		PendingEvents: k.Pending(),
		Virtual:       k.Now(),
		Network:       metrics.NetworkStats{Sent: nw.Sent, Delivered: nw.Delivered, Dropped: nw.Dropped, Duplicated: nw.Duplicated},
	}
	if wall != nil {
		s.Wall = wall().Sub(start)
	}
	for _, m := range w.c.Machines() {
		if m.Status == cluster.NodeRemoved {
			continue
		}
		s.Machines = append(s.Machines, metrics.MachineStats{
			Node:              m.Name,
			DiskSyncs:         m.Disk.Syncs,
			RunningContainers: m.Executor.NumRunning(),
			// A conversion, so that a field added to sim.ExecutorStats
			// fails the build here until metrics exports it.
			Containers: metrics.ContainerStats(m.Executor.Stats),
		})
	}
	return s
}
