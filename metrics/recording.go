package metrics

import (
	"bufio"
	"bytes"
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
	seq   uint64 // samples added
}

// recFamily is one metric family: its metadata and its metrics by label
// set.
type recFamily struct {
	name, help string // name as Gather gives it: a counter's ends in _total
	typ        dto.MetricType
	metrics    map[string]*recMetric // by appendLabelKey of their labels
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
	seq    uint64 // the sample that added the last point
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
	r.seq++
	var key []byte
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
			key = appendLabelKey(key[:0], labels)
			if err := f.put(key, func() []labelPair { return labels }, bounds, at, r.seq, replace, row...); err != nil {
				return err
			}
		}
	}
	return nil
}

// put appends one point to the metric whose label key is key; labels
// gives its labels, sorted by name, when the metric is new. seq names the
// sample: one sample holds at most one point of a metric.
func (f *recFamily) put(key []byte, labels func() []labelPair, bounds []float64, at time.Duration, seq uint64, replace bool, row ...float64) error {
	m := f.metrics[string(key)]
	if m == nil {
		m = &recMetric{labels: labels(), bounds: slices.Clone(bounds), cols: make([][]float64, len(row))}
		f.metrics[string(key)] = m
	}
	if !slices.Equal(m.bounds, bounds) {
		return fmt.Errorf("metric %s%s: buckets or quantiles changed from %v to %v", f.name, fmtLabels(m.labels), m.bounds, bounds)
	}
	n := len(m.times)
	if n > 0 && m.seq == seq {
		return fmt.Errorf("metric %s%s: twice in one sample", f.name, fmtLabels(m.labels))
	}
	m.seq = seq
	if replace && n > 0 && at == m.times[n-1] {
		for i, v := range row {
			m.cols[i][n-1] = v
		}
		return nil
	}
	if n > 0 && at <= m.times[n-1] {
		return fmt.Errorf("metric %s%s: sample at %s does not come after %s", f.name, fmtLabels(m.labels), at, m.times[n-1])
	}
	m.times = append(m.times, at)
	for i, v := range row {
		m.cols[i] = append(m.cols[i], v)
	}
	return nil
}

// appendLabelKey appends the key that identifies a label set sorted by
// name.
func appendLabelKey(b []byte, labels []labelPair) []byte {
	for _, l := range labels {
		b = appendLabel(b, l.name, l.value)
	}
	return b
}

func appendLabel(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, 0)
	b = append(b, value...)
	return append(b, 0)
}

// recorder records at one time what direct collectors emit: the
// Sampler's way around building Prometheus metrics.
type recorder struct {
	rec     *Recording
	fams    map[*family]*recFamily // kept by the Sampler across samples
	at      time.Duration
	seq     uint64
	replace bool
	key     []byte
	err     error
}

func (r *recorder) note(err error) {
	if err != nil && r.err == nil {
		r.err = err
	}
}

func (r *recorder) family(f *family) *recFamily {
	if rf := r.fams[f]; rf != nil {
		return rf
	}
	typ := [...]dto.MetricType{kindCounter: dto.MetricType_COUNTER, kindGauge: dto.MetricType_GAUGE,
		kindHistogram: dto.MetricType_HISTOGRAM, kindSummary: dto.MetricType_SUMMARY}[f.kind]
	rf := r.rec.fams[f.name]
	if rf == nil {
		rf = &recFamily{name: f.name, help: f.help, typ: typ, metrics: map[string]*recMetric{}}
		r.rec.fams[f.name] = rf
	} else if rf.typ != typ {
		r.note(fmt.Errorf("metric %s: type %s, was %s", f.name, typ, rf.typ))
		return nil
	}
	r.fams[f] = rf
	return rf
}

// point records one point of f for the label values l1, l2.
func (r *recorder) point(f *family, l1, l2 string, bounds []float64, row ...float64) {
	rf := r.family(f)
	if rf == nil {
		return
	}
	value := func(i int) string {
		if i == 0 {
			return l1
		}
		return l2
	}
	r.key = r.key[:0]
	for _, i := range f.sorted {
		r.key = appendLabel(r.key, f.labels[i], value(i))
	}
	labels := func() []labelPair {
		out := make([]labelPair, len(f.sorted))
		for j, i := range f.sorted {
			out[j] = labelPair{f.labels[i], value(i)}
		}
		return out
	}
	r.note(rf.put(r.key, labels, bounds, r.at, r.seq, r.replace, row...))
}

func (r *recorder) value(f *family, v float64, l1, l2 string) { r.point(f, l1, l2, nil, v) }

func (r *recorder) histogram(f *family, count uint64, sum float64, bounds []float64, cumulative []uint64, l1 string) {
	row := make([]float64, colFirst+len(bounds))
	row[colCount], row[colSum] = float64(count), sum
	for i, c := range cumulative {
		row[colFirst+i] = float64(c)
	}
	r.point(f, l1, "", bounds, row...)
}

func (r *recorder) summary(f *family, count uint64, sum float64, l1 string) {
	r.point(f, l1, "", nil, float64(count), sum)
}

func (r *recorder) fail(f *family, err error) { r.note(fmt.Errorf("metric %s: %w", f.name, err)) }

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
		// One label set at a time, so that a family of 10,000 nodes is
		// never all built as dto metrics at once: the first call writes
		// the family's metadata, the others only their samples.
		out := io.Writer(bw)
		var pool []*dto.Metric // a counter's or gauge's points, reused label set after label set
		for j, m := range f.sorted() {
			labels := make([]*dto.LabelPair, len(m.labels))
			for i, l := range m.labels {
				labels[i] = &dto.LabelPair{Name: proto.String(l.name), Value: proto.String(l.value)}
			}
			mf.Metric = mf.Metric[:0]
			for i, t := range m.times {
				ts := r.start.Add(t).UnixMilli()
				if i < len(pool) && m.reuse(pool[i], f.typ, labels, ts, i) {
					mf.Metric = append(mf.Metric, pool[i])
					continue
				}
				dm := m.point(f.typ, labels, ts, i)
				if i >= len(pool) {
					pool = append(pool, dm)
				}
				mf.Metric = append(mf.Metric, dm)
			}
			if j == 1 {
				out = &commentDropper{w: bw, lineStart: true}
			}
			if _, err := expfmt.MetricFamilyToOpenMetrics(out, mf); err != nil {
				return fmt.Errorf("metric %s: %w", name, err)
			}
		}
	}
	if _, err := expfmt.FinalizeOpenMetrics(bw); err != nil {
		return err
	}
	return bw.Flush()
}

// commentDropper passes on every line that does not start with '#': the
// samples of a family whose metadata was written already.
type commentDropper struct {
	w         io.Writer
	lineStart bool // the next byte starts a line
	dropping  bool // the current line is dropped
}

func (d *commentDropper) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if d.lineStart {
			d.dropping = p[0] == '#'
			d.lineStart = false
		}
		end := bytes.IndexByte(p, '\n') + 1
		if end == 0 {
			end = len(p)
		} else {
			d.lineStart = true
		}
		if !d.dropping {
			if _, err := d.w.Write(p[:end]); err != nil {
				return 0, err
			}
		}
		p = p[end:]
	}
	return n, nil
}

// reuse makes dm, a point of a metric of the same family, the i-th point
// of m, if it is a counter or gauge: writing a family of 10,000 nodes then
// allocates its points once, not once per node.
func (m *recMetric) reuse(dm *dto.Metric, typ dto.MetricType, labels []*dto.LabelPair, tsMs int64, i int) bool {
	switch typ {
	case dto.MetricType_COUNTER:
		*dm.Counter.Value = m.cols[0][i]
	case dto.MetricType_GAUGE:
		*dm.Gauge.Value = m.cols[0][i]
	default:
		return false
	}
	dm.Label = labels
	*dm.TimestampMs = tsMs
	return true
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
