package scenarios

import (
	"fmt"
	"math"
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// This file walks YAML nodes by hand, not with yaml's struct decoding, so
// that every error has the line and key path of the value at fault, unknown
// keys are caught at any depth, and scalars keep their units.

// Limits that keep hostile or broken input cheap: anchors and aliases can
// make a small file expand into a huge tree.
const (
	maxFileBytes = 4 << 20
	nodeBudget   = 1 << 20 // YAML nodes visited per file, aliases expanded
	workBudget   = 1 << 22 // node names tried against patterns per file
	maxMergeDep  = 32      // nested merge keys (<<)
)

const (
	tagNull  = "!!null"
	tagBool  = "!!bool"
	tagStr   = "!!str"
	tagInt   = "!!int"
	tagFloat = "!!float"
	tagTime  = "!!timestamp"
	tagMerge = "!!merge"
)

// errorf records an error about node n at key path.
func (p *parser) errorf(n *yaml.Node, path, format string, args ...any) {
	e := &Error{File: p.file, Path: oneLine(path), Msg: oneLine(fmt.Sprintf(format, args...))}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	p.errs = append(p.errs, e)
}

// node follows aliases and charges n to the budget. It returns nil when n is
// nil or the budget is spent (reported once).
func (p *parser) node(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n == nil {
		return nil
	}
	if p.budget <= 0 {
		if !p.overBudget {
			p.overBudget = true
			p.errorf(n, "", "too many YAML nodes once aliases are expanded (at most %d)", nodeBudget)
		}
		return nil
	}
	p.budget--
	return n
}

// oneLine escapes control characters, so that one error is one line
// whatever the file holds.
func oneLine(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

var plainKeyRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// join makes a child key path. Keys that are not plain words are quoted, so
// a path stays readable whatever a misspelt key holds.
func join(path, key string) string {
	if !plainKeyRE.MatchString(key) {
		key = strconv.Quote(key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// describe names what n is, for "want X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		switch n.ShortTag() {
		case tagNull:
			return "nothing"
		case tagBool:
			return "the boolean " + v
		case tagInt:
			return "the integer " + v
		case tagFloat:
			return "the number " + v
		case tagStr:
			return strconv.Quote(v)
		}
		return n.ShortTag() + " " + strconv.Quote(v)
	}
	return "an unknown YAML node"
}

// wrongType records a type error, or a missing value for null.
func (p *parser) wrongType(n *yaml.Node, path, want string) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == tagNull {
		p.errorf(n, path, "no value; want %s (or leave the key out)", want)
		return
	}
	p.errorf(n, path, "want %s, got %s", want, describe(n))
}

// mapping is a checked YAML mapping: keys are scalars, none repeats, none is
// unknown. Merge keys (<<) are expanded, the mapping's own keys winning.
type mapping struct {
	p     *parser
	n     *yaml.Node
	path  string
	keys  []string // present allowed keys, in file order
	key   map[string]*yaml.Node
	val   map[string]*yaml.Node
	bad   int // unknown keys seen
	inMrg bool
}

// mapping checks that n is a mapping with keys from allowed. It returns nil
// (after recording why) when n is not a mapping.
func (p *parser) mapping(n *yaml.Node, path string, allowed ...string) *mapping {
	n = p.node(n)
	if n == nil {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		p.wrongType(n, path, "a mapping")
		return nil
	}
	m := &mapping{p: p, n: n, path: path, key: map[string]*yaml.Node{}, val: map[string]*yaml.Node{}}
	m.collect(n, allowed, 0)
	return m
}

func (m *mapping) collect(n *yaml.Node, allowed []string, depth int) {
	p := m.p
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.AliasNode {
			k = p.node(k)
			if k == nil {
				return
			}
		}
		if k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == tagMerge {
			merges = append(merges, v)
			continue
		}
		if k.Kind != yaml.ScalarNode || k.ShortTag() == tagNull {
			p.errorf(k, m.path, "a key must be a plain word, got %s", describe(k))
			m.bad++
			continue
		}
		name := k.Value
		if prev, dup := m.key[name]; dup {
			if depth == 0 {
				p.errorf(k, join(m.path, name), "repeated key (first at line %d)", prev.Line)
			}
			continue // merged keys never override the mapping's own
		}
		if !slices.Contains(allowed, name) {
			if depth == 0 {
				msg := "unknown key"
				if s := suggest(name, allowed); s != "" {
					msg += fmt.Sprintf(" (did you mean %s?)", s)
				}
				p.errorf(k, join(m.path, name), "%s", msg)
				m.bad++
			}
			// A merged mapping may hold keys for other places; ignore them.
			continue
		}
		m.keys = append(m.keys, name)
		m.key[name] = k
		m.val[name] = v
	}
	for _, v := range merges {
		if depth >= maxMergeDep {
			p.errorf(v, m.path, "merge keys (<<) nested too deeply")
			return
		}
		v = p.node(v)
		if v == nil {
			return
		}
		switch v.Kind {
		case yaml.MappingNode:
			m.collect(v, allowed, depth+1)
		case yaml.SequenceNode:
			for _, e := range v.Content {
				e = p.node(e)
				if e == nil {
					return
				}
				if e.Kind != yaml.MappingNode {
					p.errorf(e, m.path, "merge key (<<) wants mappings, got %s", describe(e))
					continue
				}
				m.collect(e, allowed, depth+1)
			}
		default:
			p.errorf(v, m.path, "merge key (<<) wants a mapping, got %s", describe(v))
		}
	}
}

// has reports whether key k is present.
func (m *mapping) has(k string) bool { _, ok := m.val[k]; return ok }

// get returns the value of k, or nil when absent.
func (m *mapping) get(k string) *yaml.Node {
	v, ok := m.val[k]
	if !ok {
		return nil
	}
	return m.p.node(v)
}

// at is the path of key k.
func (m *mapping) at(k string) string { return join(m.path, k) }

// require records an error for each of keys that is missing.
func (m *mapping) require(keys ...string) bool {
	ok := true
	for _, k := range keys {
		if !m.has(k) {
			m.p.errorf(m.n, m.path, "missing key %s", k)
			ok = false
		}
	}
	return ok
}

// suggest returns the allowed key closest to a misspelt one, or "".
func suggest(got string, allowed []string) string {
	best, bestD := "", 3
	if len(got) <= 3 {
		bestD = 2
	}
	for _, a := range allowed {
		if d := editDistance(got, a, bestD); d < bestD {
			best, bestD = a, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b, or limit when it is
// at least limit.
func editDistance(a, b string, limit int) int {
	if len(a) > 64 || len(b) > 64 {
		return limit
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		low := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			low = min(low, cur[j])
		}
		if low >= limit {
			return limit
		}
		prev, cur = cur, prev
	}
	return min(prev[len(b)], limit)
}

// seq checks that n is a list and returns its items, aliases resolved.
func (p *parser) seq(n *yaml.Node, path string) ([]*yaml.Node, bool) {
	n = p.node(n)
	if n == nil {
		return nil, false
	}
	if n.Kind != yaml.SequenceNode {
		p.wrongType(n, path, "a list")
		return nil, false
	}
	out := make([]*yaml.Node, 0, len(n.Content))
	for _, e := range n.Content {
		e = p.node(e)
		if e == nil {
			return nil, false
		}
		out = append(out, e)
	}
	return out, true
}

// scalar checks that n is a scalar whose tag is one of tags.
func (p *parser) scalar(n *yaml.Node, path, want string, tags ...string) bool {
	if n == nil {
		return false
	}
	if n.Kind != yaml.ScalarNode || !slices.Contains(tags, n.ShortTag()) {
		p.wrongType(n, path, want)
		return false
	}
	return true
}

// text reads a free-form string. Numbers count as text (labels like
// `version: 2`); booleans and nothing do not.
func (p *parser) text(n *yaml.Node, path string) (string, bool) {
	if !p.scalar(n, path, "a string", tagStr, tagInt, tagFloat, tagTime) {
		return "", false
	}
	return n.Value, true
}

// nonEmpty reads a non-empty string without spaces: an image, a label.
func (p *parser) word(n *yaml.Node, path, what string) (string, bool) {
	s, ok := p.text(n, path)
	if !ok {
		return "", false
	}
	if s == "" || strings.ContainsFunc(s, isSpaceOrControl) {
		p.errorf(n, path, "bad %s %q: want a non-empty string without spaces", what, s)
		return "", false
	}
	return s, true
}

func isSpaceOrControl(r rune) bool { return r <= ' ' || r == 0x7f }

var nameRE = regexp.MustCompile(`^[a-z0-9-]+$`)

// name reads a name: [a-z0-9-]+.
func (p *parser) name(n *yaml.Node, path, what string) (string, bool) {
	s, ok := p.text(n, path)
	if !ok {
		return "", false
	}
	if !nameRE.MatchString(s) {
		p.errorf(n, path, "bad %s %q: want lowercase letters, digits and - only", what, s)
		return "", false
	}
	if len(s) > maxServiceNameLen {
		p.errorf(n, path, "%s %q is longer than %d characters", what, s, maxServiceNameLen)
		return "", false
	}
	return s, true
}

// integer reads an integer in [lo, hi].
func (p *parser) integer(n *yaml.Node, path string, lo, hi int64) (int64, bool) {
	if n == nil {
		return 0, false
	}
	if !p.scalar(n, path, "an integer", tagInt) {
		return 0, false
	}
	var v int64
	if err := n.Decode(&v); err != nil {
		p.errorf(n, path, "integer %s is out of range (%d to %d)", n.Value, lo, hi)
		return 0, false
	}
	switch {
	case v < 0 && lo == 0:
		p.errorf(n, path, "%d is negative", v)
		return 0, false
	case v < lo:
		p.errorf(n, path, "%d is below the minimum, %d", v, lo)
		return 0, false
	case v > hi:
		p.errorf(n, path, "%d is above the maximum, %d", v, hi)
		return 0, false
	}
	return v, true
}

// count reads an int in [lo, hi].
func (p *parser) count(n *yaml.Node, path string, lo, hi int) (int, bool) {
	v, ok := p.integer(n, path, int64(lo), int64(hi))
	return int(v), ok
}

// number reads a finite number (integer or not).
func (p *parser) number(n *yaml.Node, path string) (float64, bool) {
	if n == nil {
		return 0, false
	}
	if !p.scalar(n, path, "a number", tagInt, tagFloat) {
		return 0, false
	}
	var v float64
	if err := n.Decode(&v); err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		p.errorf(n, path, "want a finite number, got %s", describe(n))
		return 0, false
	}
	return v, true
}

// boolean reads true or false.
func (p *parser) boolean(n *yaml.Node, path string) (bool, bool) {
	if n == nil {
		return false, false
	}
	if !p.scalar(n, path, "true or false", tagBool) {
		return false, false
	}
	var v bool
	if err := n.Decode(&v); err != nil {
		p.wrongType(n, path, "true or false")
		return false, false
	}
	return v, true
}

// trueOnly reads a key whose only meaningful value is true
// (`rotate_root_ca: true`, `converged: true`).
func (p *parser) trueOnly(n *yaml.Node, path string) bool {
	v, ok := p.boolean(n, path)
	if ok && !v {
		p.errorf(n, path, "only true is meaningful here; leave the key out instead")
		return false
	}
	return ok
}

// parseDuration parses Go's duration syntax, which a file uses for every time.
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		if _, ferr := strconv.ParseFloat(s, 64); ferr == nil {
			return 0, fmt.Errorf("duration %q needs a unit, like %ss or %sms", s, s, s)
		}
		return 0, fmt.Errorf("bad duration %q: want a number and a unit (ns, us, ms, s, m, h), like 1m30s", s)
	}
	return d, nil
}

// durationText reads the text of a duration: a string, or a bare 0.
func (p *parser) durationText(n *yaml.Node, path string) (string, bool) {
	if n == nil {
		return "", false
	}
	if !p.scalar(n, path, "a duration like 5s", tagStr, tagInt, tagFloat) {
		return "", false
	}
	return n.Value, true
}

// duration reads a duration that is not negative.
func (p *parser) duration(n *yaml.Node, path string) (time.Duration, bool) {
	d, ok := p.signedDuration(n, path)
	if ok && d < 0 {
		p.errorf(n, path, "duration %s is negative", n.Value)
		return 0, false
	}
	return d, ok
}

// signedDuration reads a duration that may be negative (clock_skew.by).
func (p *parser) signedDuration(n *yaml.Node, path string) (time.Duration, bool) {
	s, ok := p.durationText(n, path)
	if !ok {
		return 0, false
	}
	d, err := parseDuration(s)
	if err != nil {
		p.errorf(n, path, "%v", err)
		return 0, false
	}
	return d, true
}

// positiveDuration reads a duration above zero.
func (p *parser) positiveDuration(n *yaml.Node, path string) (time.Duration, bool) {
	d, ok := p.duration(n, path)
	if ok && d == 0 {
		p.errorf(n, path, "duration must be above zero")
		return 0, false
	}
	return d, ok
}

// durationRange reads "2ms" or "1ms..5ms".
func (p *parser) durationRange(n *yaml.Node, path string) (Range, bool) {
	s, ok := p.durationText(n, path)
	if !ok {
		return Range{}, false
	}
	lo, hi, isRange := strings.Cut(s, "..")
	if !isRange {
		d, err := parseDuration(s)
		if err == nil && d < 0 {
			err = fmt.Errorf("duration %s is negative", s)
		}
		if err != nil {
			p.errorf(n, path, "%v", err)
			return Range{}, false
		}
		return Fixed(d), true
	}
	var r Range
	for i, part := range []string{lo, hi} {
		d, err := parseDuration(part)
		if err == nil && d < 0 {
			err = fmt.Errorf("duration %s is negative", strings.TrimSpace(part))
		}
		if err != nil {
			p.errorf(n, path, "range %q: %v", s, err)
			return Range{}, false
		}
		if i == 0 {
			r.Min = d
		} else {
			r.Max = d
		}
	}
	if r.Min > r.Max {
		p.errorf(n, path, "range %q: minimum is above maximum", s)
		return Range{}, false
	}
	return r, true
}

var percentRE = regexp.MustCompile(`^([0-9]+(\.[0-9]*)?|\.[0-9]+)\s*%$`)

// percent reads a percentage, "0.1%", as a fraction (0.001). A bare 0 is
// allowed; other bare numbers are not, since 5 could mean 5% or 500%.
func (p *parser) percent(n *yaml.Node, path string) (float64, bool) {
	if n == nil {
		return 0, false
	}
	if !p.scalar(n, path, "a percentage like 5%", tagStr, tagInt, tagFloat) {
		return 0, false
	}
	s := strings.TrimSpace(n.Value)
	if n.ShortTag() != tagStr {
		if v, err := strconv.ParseFloat(s, 64); err == nil && v == 0 {
			return 0, true
		}
		p.errorf(n, path, "write a percentage with %%, like %s%%", s)
		return 0, false
	}
	m := percentRE.FindStringSubmatch(s)
	if m == nil {
		p.errorf(n, path, "bad percentage %q: want a number from 0 to 100 and %%, like 0.5%%", s)
		return 0, false
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil || v > 100 {
		p.errorf(n, path, "percentage %s is out of range (0%% to 100%%)", s)
		return 0, false
	}
	return v / 100, true
}

// ratio reads a fraction in [0, 1]: a number or a percentage.
func (p *parser) ratio(n *yaml.Node, path string) (float64, bool) {
	if n == nil {
		return 0, false
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == tagStr {
		return p.percent(n, path)
	}
	v, ok := p.number(n, path)
	if ok && (v < 0 || v > 1) {
		p.errorf(n, path, "%s is out of range (0 to 1, or 0%% to 100%%)", n.Value)
		return 0, false
	}
	return v, ok
}

var bytesRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?$`)

var byteUnits = map[string]int64{
	"": 1, "B": 1,
	"KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
}

const maxBytes = 1 << 50 // 1PiB: far above any node, far below overflow

// byteSize reads a byte count: 1073741824, 512MiB, 1.5GB.
func (p *parser) byteSize(n *yaml.Node, path string) (int64, bool) {
	if n == nil {
		return 0, false
	}
	if !p.scalar(n, path, "a size like 512MiB", tagStr, tagInt, tagFloat) {
		return 0, false
	}
	s := strings.TrimSpace(n.Value)
	m := bytesRE.FindStringSubmatch(s)
	if m == nil {
		p.errorf(n, path, "bad size %q: want a number and a unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), like 512MiB", s)
		return 0, false
	}
	v, ok := new(big.Rat).SetString(m[1])
	if !ok {
		p.errorf(n, path, "bad size %q", s)
		return 0, false
	}
	v.Mul(v, new(big.Rat).SetInt64(byteUnits[m[2]]))
	if !v.IsInt() {
		p.errorf(n, path, "size %q is not a whole number of bytes", s)
		return 0, false
	}
	if v.Cmp(new(big.Rat).SetInt64(maxBytes)) > 0 {
		p.errorf(n, path, "size %q is too large (at most 1PiB)", s)
		return 0, false
	}
	return v.Num().Int64(), true
}

var labelKeyRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// labels reads a mapping of label keys to values.
func (p *parser) labels(n *yaml.Node, path string) (map[string]string, bool) {
	n = p.node(n)
	if n == nil {
		return nil, false
	}
	if n.Kind != yaml.MappingNode {
		p.wrongType(n, path, "a mapping of labels")
		return nil, false
	}
	out := map[string]string{}
	ok := true
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := p.node(n.Content[i]), p.node(n.Content[i+1])
		if k == nil || v == nil {
			return nil, false
		}
		if k.Kind != yaml.ScalarNode || !labelKeyRE.MatchString(k.Value) {
			p.errorf(k, path, "bad label key %s: want letters, digits, ., _ and -", describe(k))
			ok = false
			continue
		}
		kp := join(path, k.Value)
		if _, dup := out[k.Value]; dup {
			p.errorf(k, kp, "repeated label")
			ok = false
			continue
		}
		val, vok := p.word(v, kp, "label value")
		if !vok {
			ok = false
			continue
		}
		out[k.Value] = val
	}
	return out, ok
}

// words reads a list of strings without spaces (images).
func (p *parser) words(n *yaml.Node, path, what string) ([]string, bool) {
	items, ok := p.seq(n, path)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(items))
	for i, e := range items {
		s, ok2 := p.word(e, index(path, i), what)
		if !ok2 {
			ok = false
			continue
		}
		out = append(out, s)
	}
	return out, ok
}
