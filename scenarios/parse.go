package scenarios

import (
	"bytes"
	"cmp"
	"errors"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Error is one problem in a scenario file.
type Error struct {
	File   string
	Line   int // from 1; 0 when the problem is the whole file
	Column int
	Path   string // key path of the value at fault: "steps[2].crash"; "" for the document
	Msg    string
}

// Error is "leader.yaml:14: steps[2].crash: unknown node "m9" (cluster has m1..m3)".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// MaxErrors is the most errors one file reports.
const MaxErrors = 20

// Errors is every problem found in one file, in line order. Parse returns
// it (as *Errors) whenever a file is not a valid scenario.
type Errors struct {
	List    []*Error // at least one, at most MaxErrors
	Omitted int      // further errors not listed
}

// Error is one line per problem.
func (e *Errors) Error() string {
	var b strings.Builder
	for i, x := range e.List {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(x.Error())
	}
	if e.Omitted > 0 && len(e.List) > 0 {
		b.WriteString("\n" + e.List[0].File + ": and " + strconv.Itoa(e.Omitted) + " more errors")
	}
	return b.String()
}

// Unwrap gives the listed errors to errors.As.
func (e *Errors) Unwrap() []error {
	out := make([]error, len(e.List))
	for i, x := range e.List {
		out[i] = x
	}
	return out
}

// ParseFile reads and parses the scenario file at path; errors name path.
func ParseFile(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse parses and validates a scenario file. filename is only used in
// messages. It returns a complete Scenario, or an *Errors naming the file,
// line and key path of every problem (up to MaxErrors).
func Parse(filename string, data []byte) (*Scenario, error) {
	p := &parser{
		file:       filename,
		budget:     nodeBudget,
		work:       workBudget,
		present:    map[string]bool{},
		matched:    map[string]bool{},
		services:   map[string]Mode{},
		svcRemoved: map[string]bool{},
		secrets:    map[string]bool{},
		configs:    map[string]bool{},
		svcDefs:    map[string][]string{},
	}
	sc := p.document(data)
	if len(p.errs) > 0 {
		return nil, p.result()
	}
	return sc, nil
}

// parser holds what one file has declared so far, so that later parts can
// be checked against it, and the errors found.
type parser struct {
	file       string
	errs       []*Error
	budget     int // YAML nodes left to visit
	work       int // node names left to try against patterns
	overBudget bool

	sc       *Scenario
	defaults []string
	// Service defaults, grouped by key: "services.replicas=1" -> [web api].
	svcDefs     map[string][]string
	svcDefOrder []string
	svcPath     string // key path of the service being read, for grouping
	svcName     string

	// Nodes: m1..managers, w1..workers, then those steps added. present is
	// false for an added name after a step removed it by name.
	managers, workers int
	added             []string
	names             []string        // every node name ever, built when a pattern needs it
	matched           map[string]bool // pattern -> matches a node, until one is added
	present           map[string]bool
	lastGroup         *WorkerGroup
	nodesUnsure       bool // the cluster had errors: do not judge names

	services       map[string]Mode // every service declared so far
	svcRemoved     map[string]bool // removed by a step, so it may be created again
	servicesUnsure bool
	secrets        map[string]bool
	secretsUnsure  bool
	configs        map[string]bool
	configsUnsure  bool

	autolock, autolockEver, autolockUnsure bool
	durationOK                             bool
}

// result sorts, deduplicates and caps the errors.
func (p *parser) result() error {
	slices.SortStableFunc(p.errs, func(a, b *Error) int { return cmp.Compare(a.Line, b.Line) })
	p.errs = slices.CompactFunc(p.errs, func(a, b *Error) bool { return *a == *b })
	out := &Errors{List: p.errs}
	if len(out.List) > MaxErrors {
		out.Omitted = len(out.List) - MaxErrors
		out.List = out.List[:MaxErrors]
	}
	return out
}

// def records a default that applied at key path.
func (p *parser) def(path, value string) {
	if p.svcPath != "" {
		if rest, ok := strings.CutPrefix(path, p.svcPath+"."); ok {
			key := "services." + rest + "=" + value
			if _, seen := p.svcDefs[key]; !seen {
				p.svcDefOrder = append(p.svcDefOrder, key)
			}
			p.svcDefs[key] = append(p.svcDefs[key], p.svcName)
			return
		}
	}
	p.defaults = append(p.defaults, path+"="+value)
}

// field reads key of m into dst with read. When the key is absent it sets
// def, and records it as a default unless defText is "".
func field[T any](m *mapping, key string, dst *T, read func(*yaml.Node, string) (T, bool), def T, defText string) bool {
	if !m.has(key) {
		*dst = def
		if defText != "" {
			m.p.def(m.at(key), defText)
		}
		return true
	}
	v := m.get(key)
	if v == nil {
		return false
	}
	x, ok := read(v, m.at(key))
	if ok {
		*dst = x
	}
	return ok
}

// section returns the mapping under key of m, or an empty one when the key
// is absent. ok is false when the key is there but not a mapping.
func (p *parser) section(m *mapping, key string, allowed ...string) (*mapping, bool) {
	path := m.at(key)
	if !m.has(key) {
		return &mapping{p: p, n: m.n, path: path, key: map[string]*yaml.Node{}, val: map[string]*yaml.Node{}}, true
	}
	s := p.mapping(m.get(key), path, allowed...)
	if s == nil {
		return &mapping{p: p, n: m.n, path: path, key: map[string]*yaml.Node{}, val: map[string]*yaml.Node{}}, false
	}
	return s, true
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlParserErrors are the messages of yaml's parser (not its scanner).
// yaml v3 prints their line counting from 0 (and leaves out line 0), where
// scanner errors count from 1; TestParseErrors and testdata/bad/syntax.yaml
// pin this.
var yamlParserErrors = []string{
	"did not find expected <stream-start>",
	"did not find expected <document start>",
	"did not find expected node content",
	"did not find expected '-' indicator",
	"did not find expected key",
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"found undefined tag handle",
	"found duplicate %YAML directive",
	"found duplicate %TAG directive",
	"found incompatible YAML document",
}

// syntax records an error of the YAML parser.
func (p *parser) syntax(err error) {
	msg := err.Error()
	e := &Error{File: p.file, Msg: strings.TrimPrefix(msg, "yaml: ")}
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Msg = m[2]
	}
	if slices.Contains(yamlParserErrors, e.Msg) {
		e.Line++
	}
	e.Msg = "YAML: " + oneLine(e.Msg)
	p.errs = append(p.errs, e)
}

var topKeys = []string{
	"name", "about", "seed", "duration", "cluster", "network", "executor",
	"clients", "secrets", "configs", "services", "steps", "check",
}

func (p *parser) document(data []byte) *Scenario {
	if len(data) > maxFileBytes {
		p.errorf(nil, "", "file is too large (%d bytes; at most %d)", len(data), maxFileBytes)
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.errorf(nil, "", "file is empty: a scenario needs at least a name")
		} else {
			p.syntax(err)
		}
		return nil
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		p.errorf(&next, "", "a second YAML document: a file holds one scenario")
		return nil
	case !errors.Is(err, io.EOF):
		p.syntax(err)
		return nil
	}
	root := &doc
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			p.errorf(nil, "", "file is empty: a scenario needs at least a name")
			return nil
		}
		root = doc.Content[0]
	}
	m := p.mapping(root, "", topKeys...)
	if m == nil {
		return nil
	}
	sc := &Scenario{File: p.file}
	p.sc = sc
	if m.require("name") {
		sc.Name, _ = p.name(m.get("name"), "name", "scenario name")
	}
	if m.has("about") {
		sc.About, _ = p.text(m.get("about"), "about")
	}
	field(m, "seed", &sc.Seed, p.seed, DefaultSeed, "1")
	p.durationOK = field(m, "duration", &sc.Duration, p.positiveDuration, DefaultDuration, FormatDuration(DefaultDuration))
	sc.Cluster = p.cluster(m)
	sc.Network = p.network(m)
	sc.Executor = p.executor(m)
	sc.Clients = p.clients(m)
	sc.Secrets = p.blobs(m, "secrets", p.secrets, &p.secretsUnsure)
	for _, s := range p.blobs(m, "configs", p.configs, &p.configsUnsure) {
		sc.Configs = append(sc.Configs, Config(s))
	}
	sc.Services = p.serviceList(m)
	sc.Steps = p.steps(m)
	sc.Check = p.check(m)
	for _, k := range p.svcDefOrder {
		p.defaults = append(p.defaults, k+" ("+strings.Join(p.svcDefs[k], ", ")+")")
	}
	sc.Defaults = p.defaults
	return sc
}

// seed reads the seed: any unsigned 64-bit integer.
func (p *parser) seed(n *yaml.Node, path string) (uint64, bool) {
	if !p.scalar(n, path, "an integer", tagInt) {
		return 0, false
	}
	var u uint64
	if err := n.Decode(&u); err != nil {
		var i int64
		if n.Decode(&i) == nil && i < 0 {
			p.errorf(n, path, "seed %d is negative", i)
		} else {
			p.errorf(n, path, "seed %s is out of range (0 to 2^64-1)", n.Value)
		}
		return 0, false
	}
	return u, true
}

func (p *parser) cluster(top *mapping) Cluster {
	m, ok := p.section(top, "cluster", "managers", "workers", "raft", "dispatcher", "disk", "ca", "autolock", "task_history")
	if !ok {
		p.nodesUnsure = true
	}
	var c Cluster
	if !field(m, "managers", &c.Managers, p.counter(1, MaxManagers), DefaultManagers, "1") {
		p.nodesUnsure = true
	}
	if m.has("workers") {
		c.Workers = p.workerGroups(m.get("workers"), m.at("workers"))
	}
	p.managers, p.workers = c.Managers, c.WorkerCount()
	if len(c.Workers) > 0 {
		p.lastGroup = &c.Workers[len(c.Workers)-1]
	}

	r, _ := p.section(m, "raft", "tick", "election_ticks", "heartbeat_ticks", "snapshot_every")
	field(r, "tick", &c.Raft.Tick, p.positiveDuration, DefaultRaftTick, "1s")
	eOK := field(r, "election_ticks", &c.Raft.ElectionTicks, p.counter(2, 1000000), DefaultElectionTicks, "10")
	hOK := field(r, "heartbeat_ticks", &c.Raft.HeartbeatTicks, p.counter(1, 1000000), DefaultHeartbeatTicks, "1")
	if eOK && hOK && c.Raft.ElectionTicks <= c.Raft.HeartbeatTicks {
		n := r.n
		if r.has("election_ticks") {
			n = r.get("election_ticks")
		}
		p.errorf(n, r.at("election_ticks"), "%d must be above heartbeat_ticks (%d), as raft requires",
			c.Raft.ElectionTicks, c.Raft.HeartbeatTicks)
	}
	field(r, "snapshot_every", &c.Raft.SnapshotEvery, p.ucounter(1, 1<<40), DefaultSnapshotEvery, "10000")

	d, _ := p.section(m, "dispatcher", "heartbeat", "down_after")
	field(d, "heartbeat", &c.Dispatcher.Heartbeat, p.positiveDuration, DefaultHeartbeat, "5s")
	field(d, "down_after", &c.Dispatcher.DownAfter, p.counter(1, 1000), DefaultDownAfter, "3")

	disk, _ := p.section(m, "disk", "sync")
	field(disk, "sync", &c.Disk.Sync, p.durationRange, Fixed(DefaultDiskSync), "1ms")

	ca, _ := p.section(m, "ca", "cert_expiry")
	field(ca, "cert_expiry", &c.CA.CertExpiry, p.positiveDuration, DefaultCertExpiry, FormatDuration(DefaultCertExpiry))

	field(m, "autolock", &c.Autolock, p.onOff, false, "")
	p.autolock, p.autolockEver = c.Autolock, c.Autolock
	field(m, "task_history", &c.TaskHistory, p.counter(0, 1000), DefaultTaskHistory, "5")
	return c
}

// counter returns a reader of ints in [lo, hi].
func (p *parser) counter(lo, hi int) func(*yaml.Node, string) (int, bool) {
	return func(n *yaml.Node, path string) (int, bool) { return p.count(n, path, lo, hi) }
}

func (p *parser) ucounter(lo, hi int64) func(*yaml.Node, string) (uint64, bool) {
	return func(n *yaml.Node, path string) (uint64, bool) {
		v, ok := p.integer(n, path, lo, hi)
		return uint64(v), ok
	}
}

// workerGroups reads cluster.workers: a list of groups, or a bare count as
// one group of the default shape.
func (p *parser) workerGroups(n *yaml.Node, path string) []WorkerGroup {
	n = p.node(n)
	if n == nil {
		p.nodesUnsure = true
		return nil
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == tagInt {
		c, ok := p.count(n, path, 0, MaxWorkers)
		if !ok {
			p.nodesUnsure = true
			return nil
		}
		if c == 0 {
			return nil
		}
		p.def(path+".resources", Resources{DefaultNanoCPUs, DefaultMemoryBytes}.String())
		return []WorkerGroup{{Count: c, Resources: Resources{DefaultNanoCPUs, DefaultMemoryBytes}, Line: n.Line}}
	}
	if n.Kind != yaml.SequenceNode {
		p.wrongType(n, path, "a list of worker groups, or a count")
		p.nodesUnsure = true
		return nil
	}
	items, ok := p.seq(n, path)
	if !ok {
		p.nodesUnsure = true
		return nil
	}
	var groups []WorkerGroup
	total := 0
	for i, e := range items {
		gp := index(path, i)
		g := p.mapping(e, gp, "count", "resources", "labels")
		if g == nil {
			p.nodesUnsure = true
			continue
		}
		wg := WorkerGroup{Line: e.Line}
		if g.require("count") {
			if c, ok := p.count(g.get("count"), g.at("count"), 1, MaxWorkers); ok {
				wg.Count = c
			} else {
				p.nodesUnsure = true
			}
		} else {
			p.nodesUnsure = true
		}
		total += wg.Count
		if total > MaxWorkers {
			p.errorf(g.get("count"), g.at("count"), "more than %d workers in all", MaxWorkers)
			p.nodesUnsure = true
			return groups
		}
		def := Resources{DefaultNanoCPUs, DefaultMemoryBytes}
		wg.Resources, _ = p.resources(g, def, true, true)
		if g.has("labels") {
			wg.Labels, _ = p.labels(g.get("labels"), g.at("labels"))
		}
		groups = append(groups, wg)
	}
	return groups
}

// resources reads the resources key of m; absent fields take def's values,
// recorded as defaults when record. Nodes need both above zero.
func (p *parser) resources(m *mapping, def Resources, record, node bool) (Resources, bool) {
	r, ok := p.section(m, "resources", "cpus", "memory")
	if !ok {
		return def, false
	}
	out := def
	cpuText, memText := "", ""
	if record {
		cpuText = strconv.FormatFloat(def.CPUs(), 'f', -1, 64)
		memText = FormatBytes(def.MemoryBytes)
	}
	ok = field(r, "cpus", &out.NanoCPUs, p.cpus(node), def.NanoCPUs, cpuText)
	ok = field(r, "memory", &out.MemoryBytes, p.memory(node), def.MemoryBytes, memText) && ok
	return out, ok
}

// cpus returns a reader of CPU counts (fractions allowed) as nano-CPUs.
func (p *parser) cpus(node bool) func(*yaml.Node, string) (int64, bool) {
	return func(n *yaml.Node, path string) (int64, bool) {
		v, ok := p.number(n, path)
		if !ok {
			return 0, false
		}
		if v < 0 || v > 1<<20 || node && v == 0 {
			lo := "0"
			if node {
				lo = "above 0"
			}
			p.errorf(n, path, "cpus %s is out of range (%s to %d)", n.Value, lo, 1<<20)
			return 0, false
		}
		nano := int64(v*1e9 + 0.5)
		if node && nano == 0 {
			p.errorf(n, path, "cpus %s is below one nano-CPU", n.Value)
			return 0, false
		}
		return nano, true
	}
}

func (p *parser) memory(node bool) func(*yaml.Node, string) (int64, bool) {
	return func(n *yaml.Node, path string) (int64, bool) {
		v, ok := p.byteSize(n, path)
		if ok && node && v == 0 {
			p.errorf(n, path, "a node needs some memory")
			return 0, false
		}
		return v, ok
	}
}

func (p *parser) network(top *mapping) LinkModel {
	m, _ := p.section(top, "network", "latency", "loss", "duplicate", "reorder")
	var l LinkModel
	field(m, "latency", &l.Latency, p.durationRange, Fixed(DefaultLatency), "1ms")
	field(m, "loss", &l.Loss, p.percent, 0, "0%")
	field(m, "duplicate", &l.Duplicate, p.percent, 0, "0%")
	field(m, "reorder", &l.Reorder, p.boolean, false, "false")
	return l
}

func (p *parser) executor(top *mapping) Executor {
	m, _ := p.section(top, "executor", "start", "fail", "fail_images", "unhealthy_images", "exits")
	var e Executor
	field(m, "start", &e.Start, p.durationRange, Fixed(DefaultExecutorStart), "1s")
	field(m, "fail", &e.Fail, p.percent, 0, "0%")
	if m.has("fail_images") {
		e.FailImages, _ = p.words(m.get("fail_images"), m.at("fail_images"), "image")
	}
	if m.has("unhealthy_images") {
		e.UnhealthyImages, _ = p.words(m.get("unhealthy_images"), m.at("unhealthy_images"), "image")
	}
	if m.has("exits") {
		items, _ := p.seq(m.get("exits"), m.at("exits"))
		for i, it := range items {
			x := p.mapping(it, index(m.at("exits"), i), "image", "after", "code")
			if x == nil || !x.require("image", "after") {
				continue
			}
			var ex Exit
			ex.Image, _ = p.word(x.get("image"), x.at("image"), "image")
			ex.After, _ = p.durationRange(x.get("after"), x.at("after"))
			field(x, "code", &ex.Code, p.counter(0, 255), 0, "")
			e.Exits = append(e.Exits, ex)
		}
	}
	return e
}

func (p *parser) clients(top *mapping) *Clients {
	if !top.has("clients") {
		return nil
	}
	m, ok := p.section(top, "clients", "count", "rate", "keys")
	if !ok {
		return nil
	}
	c := &Clients{}
	field(m, "count", &c.Count, p.counter(1, 10000), 1, "1")
	if m.require("rate") {
		c.Rate, _ = p.rate(m.get("rate"), m.at("rate"))
	}
	field(m, "keys", &c.Keys, p.counter(1, 1000000), DefaultClientKeys, strconv.Itoa(DefaultClientKeys))
	return c
}

var rateRE = regexp.MustCompile(`^([0-9]+)\s*/\s*([0-9.]*)\s*([a-zµ]+)$`)

// rate reads "50/s" or "3/100ms".
func (p *parser) rate(n *yaml.Node, path string) (Rate, bool) {
	s, ok := p.text(n, path)
	if !ok {
		return Rate{}, false
	}
	m := rateRE.FindStringSubmatch(strings.TrimSpace(s))
	bad := func(why string) (Rate, bool) {
		p.errorf(n, path, "bad rate %q: %s", s, why)
		return Rate{}, false
	}
	if m == nil {
		return bad("want operations per time, like 50/s or 5/100ms")
	}
	ops, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || ops < 1 || ops > 1e9 {
		return bad("want 1 to 1000000000 operations")
	}
	num := m[2]
	if num == "" {
		num = "1"
	}
	per, err := parseDuration(num + m[3])
	if err != nil || per <= 0 {
		return bad("the time after / must be above zero with a unit, like s or 100ms")
	}
	if per > 24*time.Hour {
		return bad("the time after / must be at most 24h")
	}
	r := Rate{Ops: ops, Per: per}
	if r.Interval() <= 0 {
		return bad("more than one operation per nanosecond")
	}
	return r, true
}

// blobs reads secrets or configs: an ordered mapping of name to data.
func (p *parser) blobs(top *mapping, key string, known map[string]bool, unsure *bool) []Secret {
	if !top.has(key) {
		return nil
	}
	n := top.get(key)
	if n == nil {
		return nil
	}
	path := top.at(key)
	if n.Kind != yaml.MappingNode {
		p.wrongType(n, path, "a mapping of names to data")
		*unsure = true
		return nil
	}
	var out []Secret
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := p.node(n.Content[i]), p.node(n.Content[i+1])
		if k == nil || v == nil {
			*unsure = true
			return out
		}
		name, ok := p.name(k, path, strings.TrimSuffix(key, "s")+" name")
		if !ok {
			*unsure = true
			continue
		}
		kp := join(path, name)
		if known[name] {
			p.errorf(k, kp, "repeated %s", strings.TrimSuffix(key, "s"))
			continue
		}
		known[name] = true
		data, ok := p.text(v, kp)
		if !ok {
			continue
		}
		out = append(out, Secret{Name: name, Data: data})
	}
	return out
}

var invariantNames = func() []string {
	var out []string
	for _, i := range AllInvariants() {
		out = append(out, string(i))
	}
	return out
}()

func (p *parser) check(top *mapping) []Invariant {
	if !top.has("check") {
		p.def("check", "all")
		return AllInvariants()
	}
	items, ok := p.seq(top.get("check"), "check")
	if !ok {
		return nil
	}
	out := []Invariant{}
	for i, it := range items {
		path := index("check", i)
		s, ok := p.text(it, path)
		if !ok {
			continue
		}
		inv := Invariant(s)
		switch {
		case !slices.Contains(invariantNames, s):
			msg := "unknown invariant " + strconv.Quote(s)
			if sug := suggest(s, invariantNames); sug != "" {
				msg += " (did you mean " + sug + "?)"
			} else {
				msg += " (want one of " + strings.Join(invariantNames, ", ") + ")"
			}
			p.errorf(it, path, "%s", msg)
		case slices.Contains(out, inv):
			p.errorf(it, path, "%s is listed twice", s)
		default:
			out = append(out, inv)
		}
	}
	return out
}

func (p *parser) serviceList(top *mapping) []Service {
	if !top.has("services") {
		return nil
	}
	items, ok := p.seq(top.get("services"), "services")
	if !ok {
		p.servicesUnsure = true
		return nil
	}
	var out []Service
	for i, it := range items {
		if s, ok := p.service(it, index("services", i)); ok {
			out = append(out, s)
		}
	}
	return out
}

var serviceKeys = append([]string{"name", "mode"}, updateKeys...)

// updateKeys are the keys of a service spec that an update step may change.
var updateKeys = []string{
	"image", "replicas", "completions", "max_concurrent", "resources", "constraints",
	"spread", "max_per_node", "health", "restart", "update", "rollback", "secrets", "configs",
}

var modes = []string{string(Replicated), string(Global), string(ReplicatedJob), string(GlobalJob)}

// service reads one service spec (under services, or a create step) and
// declares it. ok is false when the spec has errors.
func (p *parser) service(n *yaml.Node, path string) (Service, bool) {
	m := p.mapping(n, path, serviceKeys...)
	if m == nil {
		p.servicesUnsure = true
		return Service{}, false
	}
	errs := len(p.errs)
	s := Service{Line: m.n.Line}
	if m.require("name") {
		var ok bool
		s.Name, ok = p.serviceName(m.get("name"), m.at("name"))
		if ok {
			if _, dup := p.services[s.Name]; dup && !p.svcRemoved[s.Name] {
				p.errorf(m.get("name"), m.at("name"), "a service %q already exists", s.Name)
			}
			delete(p.svcRemoved, s.Name)
		} else {
			p.servicesUnsure = true
		}
	} else {
		p.servicesUnsure = true
	}
	m.require("image")
	p.svcPath, p.svcName = path, s.Name
	defer func() { p.svcPath, p.svcName = "", "" }()
	s.Mode = Replicated
	if m.has("mode") {
		v, ok := p.enum(m.get("mode"), m.at("mode"), "mode", modes)
		if ok {
			s.Mode = Mode(v)
		} else {
			s.Mode = ""
		}
	} else {
		p.def(m.at("mode"), string(Replicated))
	}
	if s.Name != "" {
		p.services[s.Name] = s.Mode
	}

	set := p.serviceFields(m, &s, s.Mode, s.Name)
	has := func(k string) bool { return slices.Contains(set, k) }
	switch s.Mode {
	case Replicated:
		if !has("replicas") {
			s.Replicas = 1
			p.def(m.at("replicas"), "1")
		}
	case ReplicatedJob:
		if !has("completions") {
			s.Completions = 1
			p.def(m.at("completions"), "1")
		}
		if !has("max_concurrent") {
			s.MaxConcurrent = s.Completions
			p.def(m.at("max_concurrent"), "completions")
		}
	}
	if s.Health != nil {
		h := s.Health
		if !has("health.interval") {
			h.Interval = DefaultHealthInterval
			p.def(m.at("health.interval"), FormatDuration(DefaultHealthInterval))
		}
		if !has("health.timeout") {
			h.Timeout = DefaultHealthTimeout
			p.def(m.at("health.timeout"), FormatDuration(DefaultHealthTimeout))
		}
		if !has("health.retries") {
			h.Retries = DefaultHealthRetries
			p.def(m.at("health.retries"), strconv.Itoa(DefaultHealthRetries))
		}
	}
	if !has("restart.condition") {
		s.Restart.Condition = RestartAny
		p.def(m.at("restart.condition"), string(RestartAny))
	}
	if !has("restart.delay") {
		s.Restart.Delay = DefaultRestartDelay
		p.def(m.at("restart.delay"), FormatDuration(DefaultRestartDelay))
	}
	if !s.Mode.IsJob() {
		for _, pol := range []struct {
			key string
			u   *UpdatePolicy
		}{{"update", &s.Update}, {"rollback", &s.Rollback}} {
			if !has(pol.key + ".parallelism") {
				pol.u.Parallelism = 1
				p.def(m.at(pol.key+".parallelism"), "1")
			}
			if !has(pol.key + ".delay") {
				p.def(m.at(pol.key+".delay"), "0s")
			}
			if !has(pol.key + ".failure_action") {
				pol.u.FailureAction = FailurePause
				p.def(m.at(pol.key+".failure_action"), string(FailurePause))
			}
			if !has(pol.key + ".monitor") {
				pol.u.Monitor = DefaultUpdateMonitor
				p.def(m.at(pol.key+".monitor"), FormatDuration(DefaultUpdateMonitor))
			}
			if !has(pol.key + ".order") {
				pol.u.Order = StopFirst
				p.def(m.at(pol.key+".order"), string(StopFirst))
			}
		}
	}
	return s, len(p.errs) == errs
}

// serviceName reads a service name: a DNS label, as SwarmKit requires.
func (p *parser) serviceName(n *yaml.Node, path string) (string, bool) {
	s, ok := p.name(n, path, "service name")
	if ok && (strings.HasPrefix(s, "-") || strings.HasSuffix(s, "-")) {
		p.errorf(n, path, "service name %q must not start or end with -", s)
		return "", false
	}
	return s, ok
}

// enum reads one of a fixed set of words.
func (p *parser) enum(n *yaml.Node, path, what string, values []string) (string, bool) {
	s, ok := p.text(n, path)
	if !ok {
		return "", false
	}
	if !slices.Contains(values, s) {
		p.errorf(n, path, "unknown %s %q (want %s)", what, s, strings.Join(values, ", "))
		return "", false
	}
	return s, true
}

// serviceFields reads the spec keys present in m into s and returns the key
// paths it read, in file order. mode is the service's mode ("" when unknown:
// then mode-specific keys are not judged); name is for messages. Both a
// service spec and an update step use it.
func (p *parser) serviceFields(m *mapping, s *Service, mode Mode, name string) []string {
	var set []string
	// only checks that a mode-specific key fits the service's mode.
	only := func(key string, ok bool, want string) bool {
		if ok || mode == "" {
			return true
		}
		who := "this service"
		if name != "" {
			who = name
		}
		p.errorf(m.key[key], m.at(key), "is for %s services; %s is %s", want, who, mode)
		return false
	}
	for _, k := range m.keys {
		v := m.get(k)
		if v == nil {
			continue
		}
		path := m.at(k)
		var ok bool
		switch k {
		case "name", "mode":
			continue
		case "image":
			s.Image, ok = p.word(v, path, "image")
		case "replicas":
			if only(k, mode == Replicated, "replicated") {
				s.Replicas, ok = p.count(v, path, 0, 1000000)
			}
		case "completions":
			if only(k, mode == ReplicatedJob, "replicated-job") {
				s.Completions, ok = p.count(v, path, 1, 1000000)
			}
		case "max_concurrent":
			if only(k, mode == ReplicatedJob, "replicated-job") {
				s.MaxConcurrent, ok = p.count(v, path, 1, 1000000)
			}
		case "max_per_node":
			if only(k, mode == Replicated || mode == ReplicatedJob, "replicated and replicated-job") {
				s.MaxPerNode, ok = p.count(v, path, 0, 1000000)
			}
		case "resources":
			r := p.mapping(v, path, "cpus", "memory")
			if r == nil {
				continue
			}
			for _, rk := range r.keys {
				var rok bool
				if rk == "cpus" {
					rok = field(r, rk, &s.Resources.NanoCPUs, p.cpus(false), 0, "")
				} else {
					rok = field(r, rk, &s.Resources.MemoryBytes, p.memory(false), 0, "")
				}
				if rok {
					set = append(set, "resources."+rk)
				}
			}
			continue
		case "constraints":
			s.Constraints, ok = p.constraints(v, path)
			if ok && s.Constraints == nil {
				s.Constraints = []Constraint{}
			}
		case "spread":
			s.Spread, ok = p.spread(v, path)
		case "health":
			h := p.mapping(v, path, "interval", "timeout", "retries", "start_period")
			if h == nil {
				continue
			}
			if s.Health == nil {
				s.Health = &Health{}
			}
			for _, hk := range h.keys {
				var hok bool
				switch hk {
				case "interval":
					hok = field(h, hk, &s.Health.Interval, p.positiveDuration, 0, "")
				case "timeout":
					hok = field(h, hk, &s.Health.Timeout, p.positiveDuration, 0, "")
				case "retries":
					hok = field(h, hk, &s.Health.Retries, p.counter(0, 1000), 0, "")
				case "start_period":
					hok = field(h, hk, &s.Health.StartPeriod, p.duration, 0, "")
				}
				if hok {
					set = append(set, "health."+hk)
				}
			}
			continue
		case "restart":
			r := p.mapping(v, path, "condition", "delay", "max_attempts", "window")
			if r == nil {
				continue
			}
			for _, rk := range r.keys {
				var rok bool
				switch rk {
				case "condition":
					var c string
					c, rok = p.enum(r.get(rk), r.at(rk), "restart condition", []string{"none", "on-failure", "any"})
					s.Restart.Condition = RestartCondition(c)
				case "delay":
					rok = field(r, rk, &s.Restart.Delay, p.duration, 0, "")
				case "max_attempts":
					rok = field(r, rk, &s.Restart.MaxAttempts, p.counter(0, 1000000), 0, "")
				case "window":
					rok = field(r, rk, &s.Restart.Window, p.duration, 0, "")
				}
				if rok {
					set = append(set, "restart."+rk)
				}
			}
			continue
		case "update", "rollback":
			if !only(k, !mode.IsJob(), "replicated and global") {
				continue
			}
			pol := &s.Update
			if k == "rollback" {
				pol = &s.Rollback
			}
			set = append(set, p.updatePolicy(v, path, k, pol)...)
			continue
		case "secrets":
			s.Secrets, ok = p.refs(v, path, "secret", p.secrets, p.secretsUnsure)
		case "configs":
			s.Configs, ok = p.refs(v, path, "config", p.configs, p.configsUnsure)
		}
		if ok {
			set = append(set, k)
		}
	}
	return set
}

// updatePolicy reads an update or rollback policy's present keys.
func (p *parser) updatePolicy(n *yaml.Node, path, key string, u *UpdatePolicy) []string {
	m := p.mapping(n, path, "parallelism", "delay", "failure_action", "monitor", "max_failure_ratio", "order")
	if m == nil {
		return nil
	}
	actions := []string{"pause", "continue", "rollback"}
	if key == "rollback" {
		actions = actions[:2] // a rollback cannot roll back
	}
	var set []string
	for _, k := range m.keys {
		var ok bool
		switch k {
		case "parallelism":
			ok = field(m, k, &u.Parallelism, p.counter(0, 1000000), 0, "")
		case "delay":
			ok = field(m, k, &u.Delay, p.duration, 0, "")
		case "failure_action":
			var a string
			a, ok = p.enum(m.get(k), m.at(k), "failure action", actions)
			u.FailureAction = FailureAction(a)
		case "monitor":
			ok = field(m, k, &u.Monitor, p.duration, 0, "")
		case "max_failure_ratio":
			ok = field(m, k, &u.MaxFailureRatio, p.ratio, 0, "")
		case "order":
			var o string
			o, ok = p.enum(m.get(k), m.at(k), "order", []string{"stop-first", "start-first"})
			u.Order = UpdateOrder(o)
		}
		if ok {
			set = append(set, key+"."+k)
		}
	}
	return set
}

// refs reads a list of secret or config names, each declared before.
func (p *parser) refs(n *yaml.Node, path, what string, known map[string]bool, unsure bool) ([]string, bool) {
	items, ok := p.seq(n, path)
	if !ok {
		return nil, false
	}
	out := []string{}
	for i, it := range items {
		ip := index(path, i)
		s, ok2 := p.name(it, ip, what+" name")
		switch {
		case !ok2:
			ok = false
		case !known[s] && !unsure:
			p.errorf(it, ip, "unknown %s %q (%s)", what, s, knownList(known, what+"s"))
			ok = false
		case slices.Contains(out, s):
			p.errorf(it, ip, "%s %q is listed twice", what, s)
			ok = false
		default:
			out = append(out, s)
		}
	}
	return out, ok
}

// knownList is "declared: a, b" or "none declared" for messages.
func knownList(known map[string]bool, what string) string {
	if len(known) == 0 {
		return "no " + what + " declared before this point"
	}
	names := make([]string, 0, len(known))
	for k := range known {
		names = append(names, k)
	}
	slices.Sort(names)
	if len(names) > 8 {
		names = append(names[:8], "...")
	}
	return "declared: " + strings.Join(names, ", ")
}

var constraintKeyRE = regexp.MustCompile(`^(node\.id|node\.hostname|node\.role|(node|engine)\.labels\.[A-Za-z0-9][A-Za-z0-9._-]*)$`)

// parseConstraint parses "node.labels.zone==a".
func parseConstraint(s string) (Constraint, string) {
	i := strings.Index(s, "==")
	j := strings.Index(s, "!=")
	op := "=="
	if i < 0 || j >= 0 && j < i {
		i, op = j, "!="
	}
	if i < 0 {
		return Constraint{}, "want KEY==VALUE or KEY!=VALUE"
	}
	c := Constraint{Key: strings.TrimSpace(s[:i]), Op: op, Value: strings.TrimSpace(s[i+2:])}
	if !constraintKeyRE.MatchString(c.Key) {
		return Constraint{}, "unknown key " + strconv.Quote(c.Key) +
			" (want node.id, node.hostname, node.role, node.labels.NAME or engine.labels.NAME)"
	}
	if c.Value == "" || strings.ContainsAny(c.Value, "=!") || strings.ContainsFunc(c.Value, isSpaceOrControl) {
		return Constraint{}, "bad value " + strconv.Quote(c.Value) + ": want a non-empty word"
	}
	if c.Key == "node.role" && c.Value != "manager" && c.Value != "worker" {
		return Constraint{}, "node.role is manager or worker, not " + strconv.Quote(c.Value)
	}
	return c, ""
}

func (p *parser) constraints(n *yaml.Node, path string) ([]Constraint, bool) {
	items, ok := p.seq(n, path)
	if !ok {
		return nil, false
	}
	var out []Constraint
	for i, it := range items {
		ip := index(path, i)
		s, ok2 := p.text(it, ip)
		if !ok2 {
			ok = false
			continue
		}
		c, why := parseConstraint(s)
		if why != "" {
			p.errorf(it, ip, "bad constraint %q: %s", s, why)
			ok = false
			continue
		}
		out = append(out, c)
	}
	return out, ok
}

var spreadRE = regexp.MustCompile(`^(node|engine)\.labels\.[A-Za-z0-9][A-Za-z0-9._-]*$`)

// spread reads placement preferences: one descriptor or a list.
func (p *parser) spread(n *yaml.Node, path string) ([]string, bool) {
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		var ok bool
		if items, ok = p.seq(n, path); !ok {
			return nil, false
		}
	}
	out := []string{}
	ok := true
	for i, it := range items {
		ip := path
		if n.Kind == yaml.SequenceNode {
			ip = index(path, i)
		}
		s, ok2 := p.text(it, ip)
		if !ok2 {
			ok = false
			continue
		}
		if !spreadRE.MatchString(s) {
			p.errorf(it, ip, "bad spread %q: want node.labels.NAME or engine.labels.NAME", s)
			ok = false
			continue
		}
		out = append(out, s)
	}
	return out, ok
}
