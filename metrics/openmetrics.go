package metrics

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// ReadOpenMetrics reads back what WriteOpenMetrics wrote: OpenMetrics
// text whose samples all carry timestamps. Time 0 of the recording is
// start (sim.Epoch for a simulation's samples).
//
// It is strict, so tests can use it to check that an exposition is valid:
// one # EOF line, last; each family's metadata once, before its samples;
// families and label sets not interleaved; sample names that fit the
// family's type; timestamps that increase within a series; histograms with
// increasing bounds, cumulative counts, a +Inf bucket equal to _count, and
// a _sum. It reads the types counter, gauge, histogram, summary and
// unknown, and no exemplars; _created samples are checked and dropped.
func ReadOpenMetrics(r io.Reader, start time.Time) (*Recording, error) {
	p := &omParser{rec: NewRecording(start), done: map[string]bool{}}
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if err != nil && err != io.EOF {
			return nil, err
		}
		if line == "" && err == io.EOF {
			break
		}
		p.line++
		text, hadLF := strings.CutSuffix(line, "\n")
		if p.eof {
			return nil, p.errf("text after # EOF")
		}
		if perr := p.parseLine(text); perr != nil {
			return nil, perr
		}
		if !hadLF && !p.eof {
			return nil, p.errf("the last line does not end with a line feed")
		}
		if err == io.EOF {
			break
		}
	}
	if !p.eof {
		return nil, errNoEOF
	}
	return p.rec, nil
}

// errNoEOF is returned by ReadOpenMetrics for text that does not end with
// "# EOF": a file cut short.
var errNoEOF = errors.New("openmetrics: no # EOF line at the end")

// omParser reads one exposition line by line.
type omParser struct {
	rec  *Recording
	line int
	eof  bool

	fam  *omFamily
	done map[string]bool // families finished: they may not appear again

	// The histogram or summary point being assembled from its lines.
	pend *omPoint
	key  []byte
}

// omFamily is the family whose lines are being read.
type omFamily struct {
	name      string // as in the TYPE line: a counter's without _total
	typ       string
	help      string
	unit      string
	meta      map[string]bool // HELP, TYPE, UNIT seen
	sampled   bool
	lastKey   string // label set of the latest sample (without le or quantile)
	hasKey    bool
	doneKeys  map[string]bool
	recFamily *recFamily // made by recordFamily
}

type omPoint struct {
	key              string
	labels           []labelPair
	ms               int64
	buckets          []struct{ bound, count float64 }
	count, sum       float64
	hasCount, hasSum bool
}

func (p *omParser) errf(format string, args ...any) error {
	return fmt.Errorf("openmetrics line %d: %s", p.line, fmt.Sprintf(format, args...))
}

func (p *omParser) parseLine(text string) error {
	if text == "" {
		return p.errf("empty line")
	}
	if text[0] == '#' {
		return p.parseComment(text)
	}
	return p.parseSample(text)
}

func (p *omParser) parseComment(text string) error {
	if text == "# EOF" {
		if err := p.finishFamily(); err != nil {
			return err
		}
		p.eof = true
		return nil
	}
	rest, ok := strings.CutPrefix(text, "# ")
	if !ok {
		return p.errf("comment %q is not HELP, TYPE, UNIT or EOF", text)
	}
	kind, rest, _ := strings.Cut(rest, " ")
	if kind != "HELP" && kind != "TYPE" && kind != "UNIT" {
		return p.errf("comment %q is not HELP, TYPE, UNIT or EOF", text)
	}
	name, arg, ok := strings.Cut(rest, " ")
	if kind == "HELP" && !ok {
		name, arg, ok = rest, "", true // an empty help
	}
	if !ok || !validName(name) {
		return p.errf("malformed %s line", kind)
	}
	if p.fam == nil || p.fam.name != name {
		if err := p.startFamily(name); err != nil {
			return err
		}
	}
	f := p.fam
	if f.sampled {
		return p.errf("%s line for %s after its samples", kind, name)
	}
	if f.meta[kind] {
		return p.errf("second %s line for %s", kind, name)
	}
	f.meta[kind] = true
	switch kind {
	case "HELP":
		h, err := unescape(arg, false)
		if err != nil {
			return p.errf("help of %s: %v", name, err)
		}
		f.help = h
	case "TYPE":
		switch arg {
		case "counter", "gauge", "histogram", "summary", "unknown":
			f.typ = arg
		default:
			return p.errf("type %q of %s is not read (counter, gauge, histogram, summary, unknown)", arg, name)
		}
	case "UNIT":
		if arg == "" || !strings.HasSuffix(name, "_"+arg) {
			return p.errf("unit %q is not a suffix of %s", arg, name)
		}
		f.unit = arg
	}
	return nil
}

func (p *omParser) startFamily(name string) error {
	if err := p.finishFamily(); err != nil {
		return err
	}
	if p.done[name] {
		return p.errf("family %s appears twice", name)
	}
	p.fam = &omFamily{name: name, typ: "unknown", meta: map[string]bool{}, doneKeys: map[string]bool{}}
	return nil
}

// finishFamily closes the current family, flushing its last point.
func (p *omParser) finishFamily() error {
	if err := p.flush(); err != nil {
		return err
	}
	if p.fam != nil {
		p.done[p.fam.name] = true
		p.fam = nil
	}
	return nil
}

// suffixes are the sample name suffixes each type allows.
var suffixes = map[string][]string{
	"counter":   {"_total", "_created"},
	"gauge":     {""},
	"unknown":   {""},
	"histogram": {"_bucket", "_count", "_sum", "_created"},
	"summary":   {"", "_count", "_sum", "_created"},
}

func (p *omParser) parseSample(text string) error {
	name, labels, value, ms, err := p.splitSample(text)
	if err != nil {
		return err
	}
	f := p.fam
	suffix, ok := "", false
	if f != nil {
		suffix, ok = sampleSuffix(f, name)
	}
	if !ok {
		// A sample that is not the current family's starts a family with
		// no metadata, of type unknown.
		if err := p.startFamily(name); err != nil {
			return err
		}
		f, suffix = p.fam, ""
	}
	f.sampled = true

	// Split off the label that names a bucket or a quantile.
	var extra string
	switch {
	case f.typ == "histogram" && suffix == "_bucket":
		extra = "le"
	case f.typ == "summary" && suffix == "":
		extra = "quantile"
	}
	var bound float64
	if extra != "" {
		i := slices.IndexFunc(labels, func(l labelPair) bool { return l.name == extra })
		if i < 0 {
			return p.errf("%s has no %s label", name, extra)
		}
		if bound, err = strconv.ParseFloat(labels[i].value, 64); err != nil || math.IsNaN(bound) {
			return p.errf("%s label %q of %s is not a number", extra, labels[i].value, name)
		}
		labels = slices.Delete(slices.Clone(labels), i, i+1)
	} else if slices.ContainsFunc(labels, func(l labelPair) bool {
		return (f.typ == "histogram" && l.name == "le") || (f.typ == "summary" && l.name == "quantile")
	}) {
		return p.errf("%s carries a reserved label", name)
	}
	key := string(appendLabelKey(nil, labels))
	if !f.hasKey || key != f.lastKey {
		if f.doneKeys[key] {
			return p.errf("series %s%s is interleaved with another", f.name, fmtLabels(labels))
		}
		if f.hasKey {
			f.doneKeys[f.lastKey] = true
		}
		f.lastKey, f.hasKey = key, true
	}

	if suffix == "_created" {
		return p.flushIfOther(key, ms) // checked for form, not kept
	}
	switch f.typ {
	case "counter", "gauge", "unknown":
		if f.typ == "counter" && (value < 0 || math.IsNaN(value)) {
			return p.errf("counter %s is %v", name, value)
		}
		return p.add(labels, nil, ms, []float64{value})
	}
	// A histogram or summary point spans several lines.
	if err := p.flushIfOther(key, ms); err != nil {
		return err
	}
	if p.pend == nil {
		p.pend = &omPoint{key: key, labels: labels, ms: ms}
	}
	pt := p.pend
	switch suffix {
	case "_count":
		if pt.hasCount {
			return p.errf("second %s in one point", name)
		}
		if value < 0 || value != math.Trunc(value) {
			return p.errf("%s is %v, not a count", name, value)
		}
		pt.count, pt.hasCount = value, true
	case "_sum":
		if pt.hasSum {
			return p.errf("second %s in one point", name)
		}
		pt.sum, pt.hasSum = value, true
	default: // a bucket or a quantile
		if pt.hasCount || pt.hasSum {
			return p.errf("%s after the point's _count or _sum", name)
		}
		if n := len(pt.buckets); n > 0 && bound <= pt.buckets[n-1].bound {
			return p.errf("%s: %s=%v does not increase", name, extra, bound)
		}
		if extra == "le" {
			if value < 0 || value != math.Trunc(value) {
				return p.errf("bucket %s is %v, not a count", name, value)
			}
			if n := len(pt.buckets); n > 0 && value < pt.buckets[n-1].count {
				return p.errf("bucket counts of %s are not cumulative", name)
			}
		}
		pt.buckets = append(pt.buckets, struct{ bound, count float64 }{bound, value})
	}
	return nil
}

// flushIfOther ends the pending point when a line belongs to another one.
func (p *omParser) flushIfOther(key string, ms int64) error {
	if p.pend != nil && (p.pend.key != key || p.pend.ms != ms) {
		return p.flush()
	}
	return nil
}

// flush records the pending histogram or summary point after checking it
// is whole.
func (p *omParser) flush() error {
	pt := p.pend
	if pt == nil {
		return nil
	}
	p.pend = nil
	f := p.fam
	if !pt.hasCount || !pt.hasSum {
		return p.errf("a point of %s%s lacks its _count or _sum", f.name, fmtLabels(pt.labels))
	}
	row := []float64{pt.count, pt.sum}
	var bounds []float64
	if f.typ == "histogram" {
		n := len(pt.buckets)
		if n == 0 || !math.IsInf(pt.buckets[n-1].bound, +1) {
			return p.errf("a point of %s%s has no +Inf bucket", f.name, fmtLabels(pt.labels))
		}
		if pt.buckets[n-1].count != pt.count {
			return p.errf("a point of %s%s: +Inf bucket %v differs from _count %v", f.name, fmtLabels(pt.labels), pt.buckets[n-1].count, pt.count)
		}
		pt.buckets = pt.buckets[:n-1]
	}
	for _, b := range pt.buckets {
		bounds = append(bounds, b.bound)
		row = append(row, b.count)
	}
	return p.add(pt.labels, bounds, pt.ms, row)
}

func (p *omParser) add(labels []labelPair, bounds []float64, ms int64, row []float64) error {
	rf, err := p.recordFamily()
	if err != nil {
		return err
	}
	at := time.UnixMilli(ms).Sub(p.rec.start)
	p.key = appendLabelKey(p.key[:0], labels)
	p.rec.seq++ // each line's point is a sample of its own: the reader checks times instead
	if err := rf.put(p.key, func() []labelPair { return labels }, bounds, at, p.rec.seq, false, row...); err != nil {
		return p.errf("%v", err)
	}
	return nil
}

// recordFamily is the Recording's family for the current one, made when
// its first point is recorded: a family with no points is left out, as a
// registry leaves it out of a gather.
func (p *omParser) recordFamily() (*recFamily, error) {
	f := p.fam
	if f.recFamily != nil {
		return f.recFamily, nil
	}
	name := f.name
	if f.typ == "counter" {
		name += "_total"
	}
	if p.rec.fams[name] != nil {
		return nil, p.errf("family %s appears twice", name)
	}
	typ := map[string]dto.MetricType{
		"counter": dto.MetricType_COUNTER, "gauge": dto.MetricType_GAUGE, "unknown": dto.MetricType_UNTYPED,
		"histogram": dto.MetricType_HISTOGRAM, "summary": dto.MetricType_SUMMARY,
	}[f.typ]
	f.recFamily = &recFamily{name: name, help: f.help, typ: typ, metrics: map[string]*recMetric{}}
	p.rec.fams[name] = f.recFamily
	return f.recFamily, nil
}

// sampleSuffix reports whether name is a sample of family f, and with
// which suffix.
func sampleSuffix(f *omFamily, name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, f.name)
	if !ok {
		return "", false
	}
	if slices.Contains(suffixes[f.typ], rest) {
		return rest, true
	}
	return "", false
}

// splitSample parses `name{labels} value timestamp`.
func (p *omParser) splitSample(text string) (name string, labels []labelPair, value float64, ms int64, err error) {
	i := 0
	for i < len(text) && text[i] != '{' && text[i] != ' ' {
		i++
	}
	name = text[:i]
	if !validName(name) {
		return "", nil, 0, 0, p.errf("bad metric name %q", name)
	}
	rest := text[i:]
	if strings.HasPrefix(rest, "{") {
		labels, rest, err = p.parseLabels(rest[1:])
		if err != nil {
			return "", nil, 0, 0, err
		}
	}
	rest, ok := strings.CutPrefix(rest, " ")
	if !ok {
		return "", nil, 0, 0, p.errf("no space before the value of %s", name)
	}
	fields := strings.Split(rest, " ")
	if len(fields) > 2 {
		return "", nil, 0, 0, p.errf("%s: exemplars and extra fields are not read", name)
	}
	if value, err = parseNumber(fields[0]); err != nil {
		return "", nil, 0, 0, p.errf("value of %s: %v", name, err)
	}
	if len(fields) < 2 {
		return "", nil, 0, 0, p.errf("%s has no timestamp", name)
	}
	ts, err := parseNumber(fields[1])
	if err != nil || math.IsNaN(ts) || math.IsInf(ts, 0) || math.Abs(ts) > 1e15 {
		return "", nil, 0, 0, p.errf("bad timestamp %q of %s", fields[1], name)
	}
	return name, labels, value, int64(math.Round(ts * 1000)), nil
}

func (p *omParser) parseLabels(s string) ([]labelPair, string, error) {
	var out []labelPair
	if rest, ok := strings.CutPrefix(s, "}"); ok {
		return out, rest, nil
	}
	for {
		eq := strings.IndexByte(s, '=')
		if eq < 0 || !validLabelName(s[:eq]) {
			return nil, "", p.errf("bad label in %q", s)
		}
		name := s[:eq]
		s = s[eq+1:]
		if !strings.HasPrefix(s, `"`) {
			return nil, "", p.errf("label %s: value not quoted", name)
		}
		end := closingQuote(s)
		if end < 0 {
			return nil, "", p.errf("label %s: unterminated value", name)
		}
		v, err := unescape(s[1:end], true)
		if err != nil {
			return nil, "", p.errf("label %s: %v", name, err)
		}
		if slices.ContainsFunc(out, func(l labelPair) bool { return l.name == name }) {
			return nil, "", p.errf("label %s twice", name)
		}
		out = append(out, labelPair{name, v})
		s = s[end+1:]
		switch {
		case strings.HasPrefix(s, ","):
			s = s[1:]
		case strings.HasPrefix(s, "}"):
			slices.SortFunc(out, func(a, b labelPair) int { return strings.Compare(a.name, b.name) })
			return out, s[1:], nil
		default:
			return nil, "", p.errf("label %s: expected , or }", name)
		}
	}
}

// closingQuote returns the index of the quote that ends the quoted string
// s starts with, or -1.
func closingQuote(s string) int {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}

// unescape undoes the exposition's escapes: \\, \n and (in label values
// and help) \".
func unescape(s string, label bool) (string, error) {
	if !strings.ContainsRune(s, '\\') {
		if label && strings.ContainsAny(s, "\"\n") {
			return "", errors.New("unescaped quote or line feed")
		}
		return s, nil
	}
	var b bytes.Buffer
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			if label && c == '"' {
				return "", errors.New("unescaped quote")
			}
			b.WriteByte(c)
			continue
		}
		i++
		if i == len(s) {
			return "", errors.New("trailing backslash")
		}
		switch s[i] {
		case '\\':
			b.WriteByte('\\')
		case 'n':
			b.WriteByte('\n')
		case '"':
			b.WriteByte('"')
		default:
			return "", fmt.Errorf("unknown escape \\%c", s[i])
		}
	}
	return b.String(), nil
}

// parseNumber reads an exposition number: decimal or exponent notation,
// NaN, +Inf, -Inf.
func parseNumber(s string) (float64, error) {
	switch s {
	case "NaN":
		return math.NaN(), nil
	case "+Inf":
		return math.Inf(+1), nil
	case "-Inf":
		return math.Inf(-1), nil
	}
	if s == "" || strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= '0' && r <= '9' || r == '.' || r == 'e' || r == 'E' || r == '+' || r == '-')
	}) {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return strconv.ParseFloat(s, 64)
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if !(c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func validLabelName(s string) bool {
	return validName(s) && !strings.Contains(s, ":")
}
