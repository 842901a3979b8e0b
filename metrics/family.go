package metrics

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector is a collector of this package: besides Collect, which builds
// Prometheus metrics for a registry, it can hand its numbers straight to a
// Sampler made with NewCollectorSampler. Both ways run the same code, so
// they export the same numbers (TestDirectMatchesRegistry); the direct one
// skips building, checking and sorting hundreds of thousands of Prometheus
// metrics at every sample of a large simulation.
type Collector interface {
	prometheus.Collector
	collectTo(e emitter)
}

// kind is a family's metric type.
type kind uint8

const (
	kindCounter kind = iota
	kindGauge
	kindHistogram
	kindSummary
)

// family is one exported metric family: name, help, type and label names.
// Families have at most two labels, so that emitting one needs no slice.
type family struct {
	name, help string
	kind       kind
	labels     []string
	desc       *prometheus.Desc
	// sorted lists the indexes of labels in name order: a recording keys
	// its series by labels sorted by name, as a registry's gather orders
	// them.
	sorted []int
}

func newFamily(name, help string, k kind, labels ...string) *family {
	if len(labels) > 2 {
		panic("metrics: " + name + " has more than two labels")
	}
	f := &family{name: name, help: help, kind: k, labels: labels,
		desc: prometheus.NewDesc(name, help, labels, nil)}
	for i := range labels {
		f.sorted = append(f.sorted, i)
	}
	slices.SortFunc(f.sorted, func(a, b int) int {
		switch {
		case labels[a] < labels[b]:
			return -1
		case labels[a] > labels[b]:
			return 1
		}
		return 0
	})
	return f
}

// emitter receives the numbers a collector reads. l1 and l2 are the
// values of the family's labels, in the family's order; those the family
// does not have are ignored.
type emitter interface {
	value(f *family, v float64, l1, l2 string)
	// histogram takes cumulative counts for bounds (without +Inf, which
	// is count).
	histogram(f *family, count uint64, sum float64, bounds []float64, cumulative []uint64, l1 string)
	summary(f *family, count uint64, sum float64, l1 string)
	// fail reports that a collector could not read what f describes.
	fail(f *family, err error)
}

// promEmitter turns the numbers into Prometheus const metrics.
type promEmitter struct{ ch chan<- prometheus.Metric }

func (e promEmitter) value(f *family, v float64, l1, l2 string) {
	typ := prometheus.GaugeValue
	if f.kind == kindCounter {
		typ = prometheus.CounterValue
	}
	var m prometheus.Metric
	switch len(f.labels) {
	case 0:
		m = prometheus.MustNewConstMetric(f.desc, typ, v)
	case 1:
		m = prometheus.MustNewConstMetric(f.desc, typ, v, l1)
	default:
		m = prometheus.MustNewConstMetric(f.desc, typ, v, l1, l2)
	}
	e.ch <- m
}

func (e promEmitter) histogram(f *family, count uint64, sum float64, bounds []float64, cumulative []uint64, l1 string) {
	buckets := make(map[float64]uint64, len(bounds))
	for i, b := range bounds {
		buckets[b] = cumulative[i]
	}
	e.ch <- prometheus.MustNewConstHistogram(f.desc, count, sum, buckets, labelValues(f, l1)...)
}

func (e promEmitter) summary(f *family, count uint64, sum float64, l1 string) {
	e.ch <- prometheus.MustNewConstSummary(f.desc, count, sum, nil, labelValues(f, l1)...)
}

func (e promEmitter) fail(f *family, err error) {
	e.ch <- prometheus.NewInvalidMetric(f.desc, err)
}

func labelValues(f *family, l1 string) []string {
	if len(f.labels) == 0 {
		return nil
	}
	return []string{l1}
}

func describe(ch chan<- *prometheus.Desc, fams []*family) {
	for _, f := range fams {
		ch <- f.desc
	}
}
