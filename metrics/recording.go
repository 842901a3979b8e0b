package metrics

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"
)

// Point is one sample of one time series.
type Point struct {
	T time.Duration // time since the recording's start (millisecond resolution)
	V float64
}

// Series is one time series: a sample name, its labels and its points in
// time order.
type Series struct {
	Name   string
	Labels map[string]string
	Points []Point
}

// Recording holds the samples of a set of metric families over time: what
// a Sampler gathers, or what ReadOpenMetrics reads back from a file. Every
// sample line of the exposition format is a series of its own, named as
// in the exposition: a counter by its _total name, a histogram by its
// _bucket (with le), _sum and _count names.
//
// A Recording is not safe for concurrent use.
type Recording struct {
	start time.Time
	fams  map[string]*recFamily
}

// recFamily is one metric family: its metadata and its metrics by label
// set.
type recFamily struct {
	name, help string // name as Gather gives it: a counter's ends in _total
	typ        dto.MetricType
	metrics    map[string]*recMetric // by labelKey
}

// recMetric is one label set's points, stored by column: a counter, gauge
// or untyped metric has one column (its value); a histogram has its count,
// its sum, then one cumulative count per bucket bound (+Inf is the count);
// a summary has its count, its sum, then one value per quantile.
type recMetric struct {
	labels []labelPair // sorted by name
	bounds []float64   // histogram upper bounds without +Inf, or summary quantiles
	times  []time.Duration
	cols   [][]float64
}

type labelPair struct{ name, value string }

const (
	colCount = 0 // histograms and summaries
	colSum   = 1
	colFirst = 2 // first bucket or quantile
)

// NewRecording returns an empty recording whose time 0 is start: file
// timestamps are start plus a point's T.
func NewRecording(start time.Time) *Recording {
	return &Recording{start: start, fams: map[string]*recFamily{}}
}

// Start is the instant a point's T counts from.
func (r *Recording) Start() time.Time { return r.start }

// Add records the families gathered at time at (since the start). at is
// cut to the millisecond, the resolution of the exposition format, and
// must come after every earlier time of each series it adds to.
func (r *Recording) Add(at time.Duration, fams []*dto.MetricFamily) error {
	return r.add(at, fams, false)
}

// add records fams at at; with replace, a series whose last point is at
// at gets its values replaced instead of an error.
func (r *Recording) add(at time.Duration, fams []*dto.MetricFamily, replace bool) error {
	at = at.Truncate(time.Millisecond)
	for _, mf := range fams {
		f := r.fams[mf.GetName()]
		if f == nil {
			f = &recFamily{name: mf.GetName(), help: mf.GetHelp(), typ: mf.GetType(), metrics: map[string]*recMetric{}}
			r.fams[f.name] = f
		} else if f.typ != mf.GetType() {
			return fmt.Errorf("metric %s: type %s, was %s", f.name, mf.GetType(), f.typ)
		}
		for _, m := range mf.GetMetric() {
			labels := make([]labelPair, len(m.GetLabel()))
			for i, lp := range m.GetLabel() {
				labels[i] = labelPair{lp.GetName(), lp.GetValue()}
			}
			slices.SortFunc(labels, func(a, b labelPair) int { return strings.Compare(a.name, b.name) })
			var bounds, row []float64
			switch f.typ {
			case dto.MetricType_COUNTER:
				row = []float64{m.GetCounter().GetValue()}
			case dto.MetricType_GAUGE:
				row = []float64{m.GetGauge().GetValue()}
			case dto.MetricType_UNTYPED:
				row = []float64{m.GetUntyped().GetValue()}
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				row = []float64{float64(h.GetSampleCount()), h.GetSampleSum()}
				for _, b := range h.GetBucket() {
					if math.IsInf(b.GetUpperBound(), +1) {
						continue // it is the count
					}
					bounds = append(bounds, b.GetUpperBound())
					row = append(row, float64(b.GetCumulativeCount()))
				}
			case dto.MetricType_SUMMARY:
				s := m.GetSummary()
				row = []float64{float64(s.GetSampleCount()), s.GetSampleSum()}
				for _, q := range s.GetQuantile() {
					bounds = append(bounds, q.GetQuantile())
					row = append(row, q.GetValue())
				}
			default:
				return fmt.Errorf("metric %s: type %s cannot be recorded", f.name, f.typ)
			}
			if err := f.add(labels, bounds, at, row, replace); err != nil {
				return err
			}
		}
	}
	return nil
}

// add appends one point to the metric of labels.
func (f *recFamily) add(labels []labelPair, bounds []float64, at time.Duration, row []float64, replace bool) error {
	key := labelKey(labels)
	m := f.metrics[key]
	if m == nil {
		m = &recMetric{labels: labels, bounds: bounds, cols: make([][]float64, len(row))}
		f.metrics[key] = m
	}
	if !slices.Equal(m.bounds, bounds) {
		return fmt.Errorf("metric %s%s: buckets or quantiles changed from %v to %v", f.name, fmtLabels(labels), m.bounds, bounds)
	}
	if n := len(m.times); replace && n > 0 && at == m.times[n-1] {
		for i, v := range row {
			m.cols[i][n-1] = v
		}
		return nil
	}
	if n := len(m.times); n > 0 && at <= m.times[n-1] {
		return fmt.Errorf("metric %s%s: sample at %s does not come after %s", f.name, fmtLabels(labels), at, m.times[n-1])
	}
	m.times = append(m.times, at)
	for i, v := range row {
		m.cols[i] = append(m.cols[i], v)
	}
	return nil
}

// labelKey identifies a sorted label set.
func labelKey(labels []labelPair) string {
	var b strings.Builder
	for _, l := range labels {
		b.WriteString(l.name)
		b.WriteByte(0)
		b.WriteString(l.value)
		b.WriteByte(0)
	}
	return b.String()
}

func fmtLabels(labels []labelPair) string {
	parts := make([]string, len(labels))
	for i, l := range labels {
		parts[i] = fmt.Sprintf("%s=%q", l.name, l.value)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// ---- queries

// Names lists the sample names that have series, sorted: counters by their
// _total name, histograms by their _bucket, _count and _sum names,
// summaries by their own name (quantiles), _count and _sum.
func (r *Recording) Names() []string {
	var out []string
	for _, f := range r.fams {
		switch f.typ {
		case dto.MetricType_HISTOGRAM:
			out = append(out, f.name+"_bucket", f.name+"_count", f.name+"_sum")
		case dto.MetricType_SUMMARY:
			out = append(out, f.name, f.name+"_count", f.name+"_sum")
		default:
			out = append(out, f.name)
		}
	}
	slices.Sort(out)
	return out
}

// Series returns the points of the series called name whose labels are
// exactly labels (le for a histogram's buckets, quantile for a summary's
// quantiles), or nil. The slice is the caller's.
func (r *Recording) Series(name string, labels map[string]string) []Point {
	for _, s := range r.match(name, labels, true) {
		return s.Points
	}
	return nil
}

// Match returns every series called name whose labels include match (nil
// matches all), sorted by labels: the series of every node, say.
func (r *Recording) Match(name string, match map[string]string) []Series {
	return r.match(name, match, false)
}

// Sum adds up, at each time any of them has a point, the series called
// name whose labels include match: a cluster-wide total over nodes.
func (r *Recording) Sum(name string, match map[string]string) []Point {
	sum := map[time.Duration]float64{}
	for _, s := range r.match(name, match, false) {
		for _, p := range s.Points {
			sum[p.T] += p.V
		}
	}
	out := make([]Point, 0, len(sum))
	for _, t := range slices.Sorted(maps.Keys(sum)) {
		out = append(out, Point{t, sum[t]})
	}
	return out
}

// column is one series inside a family: a metric and one of its columns,
// with the extra label (le or quantile) that names the column.
type column struct {
	m     *recMetric
	col   int
	extra labelPair // empty name: none
}

func (r *Recording) match(name string, want map[string]string, exact bool) []Series {
	var cols []column
	if f := r.fams[name]; f != nil && f.typ != dto.MetricType_HISTOGRAM {
		for _, m := range f.sorted() {
			if f.typ != dto.MetricType_SUMMARY {
				cols = append(cols, column{m: m})
				continue
			}
			for i, q := range m.bounds {
				cols = append(cols, column{m, colFirst + i, labelPair{"quantile", formatFloat(q)}})
			}
		}
	} else if base, suffix, ok := cutSuffix(name); ok {
		f := r.fams[base]
		if f == nil || (f.typ != dto.MetricType_HISTOGRAM && f.typ != dto.MetricType_SUMMARY) ||
			(suffix == "_bucket" && f.typ != dto.MetricType_HISTOGRAM) {
			return nil
		}
		for _, m := range f.sorted() {
			switch suffix {
			case "_count":
				cols = append(cols, column{m: m, col: colCount})
			case "_sum":
				cols = append(cols, column{m: m, col: colSum})
			case "_bucket":
				for i, b := range m.bounds {
					cols = append(cols, column{m, colFirst + i, labelPair{"le", formatFloat(b)}})
				}
				cols = append(cols, column{m, colCount, labelPair{"le", "+Inf"}})
			}
		}
	}
	var out []Series
	for _, c := range cols {
		labels := make(map[string]string, len(c.m.labels)+1)
		for _, l := range c.m.labels {
			labels[l.name] = l.value
		}
		if c.extra.name != "" {
			labels[c.extra.name] = c.extra.value
		}
		if !matches(labels, want, exact) {
			continue
		}
		pts := make([]Point, len(c.m.times))
		for i, t := range c.m.times {
			pts[i] = Point{t, c.m.cols[c.col][i]}
		}
		out = append(out, Series{Name: name, Labels: labels, Points: pts})
	}
	return out
}

func matches(labels, want map[string]string, exact bool) bool {
	if exact && len(labels) != len(want) {
		return false
	}
	for k, v := range want {
		if got, ok := labels[k]; !ok || got != v {
			if k == "le" || k == "quantile" {
				// 0.5 and 0.50 name one bound
				a, errA := strconv.ParseFloat(got, 64)
				b, errB := strconv.ParseFloat(v, 64)
				if ok && errA == nil && errB == nil && a == b {
					continue
				}
			}
			return false
		}
	}
	return true
}

func cutSuffix(name string) (base, suffix string, ok bool) {
	for _, s := range []string{"_bucket", "_count", "_sum"} {
		if b, found := strings.CutSuffix(name, s); found {
			return b, s, true
		}
	}
	return "", "", false
}

// sorted lists the family's metrics by label set.
func (f *recFamily) sorted() []*recMetric {
	keys := slices.Sorted(maps.Keys(f.metrics))
	out := make([]*recMetric, len(keys))
	for i, k := range keys {
		out[i] = f.metrics[k]
	}
	return out
}

// formatFloat writes a bound as the exposition format does.
func formatFloat(f float64) string {
	if math.IsInf(f, +1) {
		return "+Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// ---- OpenMetrics

// WriteOpenMetrics writes every point as OpenMetrics text: each family
// once (HELP, TYPE, UNIT for _seconds and _bytes), then each of its label
// sets' points in time order with timestamps (Start plus T, in seconds
// since the Unix epoch with millisecond resolution), then "# EOF".
func (r *Recording) WriteOpenMetrics(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for _, name := range slices.Sorted(maps.Keys(r.fams)) {
		f := r.fams[name]
		if len(f.metrics) == 0 {
			continue // OpenMetrics wants no family without samples
		}
		mf := &dto.MetricFamily{Name: proto.String(f.name), Type: f.typ.Enum()}
		if f.help != "" {
			mf.Help = proto.String(f.help)
		}
		if u := unitOf(f.name, f.typ); u != "" {
			mf.Unit = proto.String(u)
		}
		for _, m := range f.sorted() {
			labels := make([]*dto.LabelPair, len(m.labels))
			for i, l := range m.labels {
				labels[i] = &dto.LabelPair{Name: proto.String(l.name), Value: proto.String(l.value)}
			}
			for i, t := range m.times {
				mf.Metric = append(mf.Metric, m.point(f.typ, labels, r.start.Add(t).UnixMilli(), i))
			}
		}
		if _, err := expfmt.MetricFamilyToOpenMetrics(bw, mf); err != nil {
			return fmt.Errorf("metric %s: %w", name, err)
		}
	}
	if _, err := expfmt.FinalizeOpenMetrics(bw); err != nil {
		return err
	}
	return bw.Flush()
}

// point rebuilds the i-th point of m as a dto.Metric.
func (m *recMetric) point(typ dto.MetricType, labels []*dto.LabelPair, tsMs int64, i int) *dto.Metric {
	dm := &dto.Metric{Label: labels, TimestampMs: proto.Int64(tsMs)}
	switch typ {
	case dto.MetricType_COUNTER:
		dm.Counter = &dto.Counter{Value: proto.Float64(m.cols[0][i])}
	case dto.MetricType_GAUGE:
		dm.Gauge = &dto.Gauge{Value: proto.Float64(m.cols[0][i])}
	case dto.MetricType_UNTYPED:
		dm.Untyped = &dto.Untyped{Value: proto.Float64(m.cols[0][i])}
	case dto.MetricType_HISTOGRAM:
		h := &dto.Histogram{SampleCount: proto.Uint64(uint64(m.cols[colCount][i])), SampleSum: proto.Float64(m.cols[colSum][i])}
		for j, b := range m.bounds {
			h.Bucket = append(h.Bucket, &dto.Bucket{UpperBound: proto.Float64(b), CumulativeCount: proto.Uint64(uint64(m.cols[colFirst+j][i]))})
		}
		dm.Histogram = h
	case dto.MetricType_SUMMARY:
		s := &dto.Summary{SampleCount: proto.Uint64(uint64(m.cols[colCount][i])), SampleSum: proto.Float64(m.cols[colSum][i])}
		for j, q := range m.bounds {
			s.Quantile = append(s.Quantile, &dto.Quantile{Quantile: proto.Float64(q), Value: proto.Float64(m.cols[colFirst+j][i])})
		}
		dm.Summary = s
	}
	return dm
}

// unitOf is the OpenMetrics unit of a family named with a base unit
// suffix; OpenMetrics wants the unit to end the name (without _total).
func unitOf(name string, typ dto.MetricType) string {
	if typ == dto.MetricType_COUNTER {
		name = strings.TrimSuffix(name, "_total")
	}
	for _, u := range []string{"seconds", "bytes"} {
		if strings.HasSuffix(name, "_"+u) {
			return u
		}
	}
	return ""
}

// errNoEOF is returned by ReadOpenMetrics for text that does not end with
// "# EOF": a file cut short.
var errNoEOF = errors.New("openmetrics: no # EOF line at the end")
