package metrics

import (
	"fmt"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Sampler gathers a registry at chosen times and keeps every sample in a
// Recording, so that a report can plot any metric over a run. In the
// simulator the times are virtual: Every schedules the samples as kernel
// events, so they fall at the same virtual instants in every run of a
// seed, and the run's registry is read between events, when no node is
// running.
//
// A Sampler is not safe for concurrent use.
type Sampler struct {
	g       prometheus.Gatherer
	direct  []Collector
	fams    map[*family]*recFamily
	rec     *Recording
	samples int
	last    time.Duration
	err     error
}

// NewSampler samples g into a recording whose time 0 is start (the
// instant written for T=0 in the OpenMetrics file: sim.Epoch for a
// simulation).
func NewSampler(g prometheus.Gatherer, start time.Time) *Sampler {
	return &Sampler{g: g, rec: NewRecording(start)}
}

// NewCollectorSampler samples this package's collectors as a registry of
// them would gather them, but reads their numbers straight into the
// recording, without building, checking and sorting Prometheus metrics:
// a simulation of 10,000 nodes has hundreds of thousands of series to
// sample every virtual second.
func NewCollectorSampler(start time.Time, cs ...Collector) *Sampler {
	return &Sampler{direct: cs, fams: map[*family]*recFamily{}, rec: NewRecording(start)}
}

// Sample gathers the registry and records it at time at (since the
// start), cut to the millisecond: the exposition format's timestamps have
// no finer resolution. A sample in the same millisecond as the previous
// one replaces its values (a run that ends just after a periodic sample
// records its final state), and an earlier time is an error.
func (s *Sampler) Sample(at time.Duration) error {
	at = at.Truncate(time.Millisecond)
	if s.samples > 0 && at < s.last {
		return fmt.Errorf("metrics: sample at %s is before the previous one, at %s", at, s.last)
	}
	if s.g != nil {
		fams, err := s.g.Gather()
		if err != nil {
			return fmt.Errorf("metrics: gathering at %s: %w", at, err)
		}
		if err := s.rec.add(at, fams, true); err != nil {
			return fmt.Errorf("metrics: recording at %s: %w", at, err)
		}
	} else {
		s.rec.seq++
		r := &recorder{rec: s.rec, fams: s.fams, at: at, seq: s.rec.seq, replace: true}
		for _, c := range s.direct {
			c.collectTo(r)
		}
		if r.err != nil {
			return fmt.Errorf("metrics: sampling at %s: %w", at, r.err)
		}
	}
	if s.samples == 0 || at > s.last {
		s.samples++
	}
	s.last = at
	return nil
}

// Every samples now and then every interval after, scheduling each sample
// with schedule (which runs f after d and returns a function cancelling
// it), until the returned stop is called. now reads the current time since
// the start. In the simulator schedule is the kernel's Schedule, so the
// samples are events in virtual time: they change the run's trace hash,
// and are only scheduled when samples are wanted. The first error is kept
// (Err) and sampling goes on.
func (s *Sampler) Every(interval time.Duration, now func() time.Duration, schedule func(d time.Duration, f func()) (cancel func())) (stop func()) {
	interval = max(interval, time.Millisecond)
	var cancel func()
	stopped := false
	var tick func()
	tick = func() {
		if stopped {
			return
		}
		if err := s.Sample(now()); err != nil && s.err == nil {
			s.err = err
		}
		cancel = schedule(interval, tick)
	}
	tick()
	return func() {
		stopped = true
		if cancel != nil {
			cancel()
		}
	}
}

// Err is the first error of a sample Every took.
func (s *Sampler) Err() error { return s.err }

// Samples is how many samples were taken.
func (s *Sampler) Samples() int { return s.samples }

// Recording holds every sample taken.
func (s *Sampler) Recording() *Recording { return s.rec }

// Series returns one series' points over the samples taken, or nil: see
// Recording.Series. For example, the scheduler's decisions on m1:
//
//	s.Series("swarm_scheduler_decisions_total", map[string]string{"node": "m1", "result": "placed"})
func (s *Sampler) Series(name string, labels map[string]string) []Point {
	return s.rec.Series(name, labels)
}

// WriteOpenMetrics writes every sample taken as OpenMetrics text (see
// Recording.WriteOpenMetrics).
func (s *Sampler) WriteOpenMetrics(w io.Writer) error { return s.rec.WriteOpenMetrics(w) }
