package scenarios

import (
	"maps"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// stepKinds are the action keys of a step, in the format page's order.
var stepKinds = []string{
	"crash", "restart", "stop", "start", "partition", "isolate", "heal", "link",
	"add_manager", "remove_manager", "add_worker", "remove_worker", "promote", "demote",
	"drain", "pause", "activate", "create", "remove", "scale", "update", "rollback",
	"fail_tasks", "clock_skew", "expect", "secret", "config", "compromise",
	"rotate_join_token", "join_with_old_token", "rotate_root_ca", "autolock",
	"rotate_unlock_key", "unlock",
}

var stepKeys = append([]string{"at"}, stepKinds...)

func (p *parser) steps(top *mapping) []Step {
	if !top.has("steps") {
		return nil
	}
	items, ok := p.seq(top.get("steps"), "steps")
	if !ok {
		return nil
	}
	var out []Step
	for i, it := range items {
		if s, ok := p.step(it, i); ok {
			out = append(out, s)
		}
	}
	return out
}

// step reads steps[i]: an optional `at` and exactly one action.
func (p *parser) step(n *yaml.Node, i int) (Step, bool) {
	path := index("steps", i)
	m := p.mapping(n, path, stepKeys...)
	if m == nil {
		return Step{}, false
	}
	s := Step{Index: i, Line: m.n.Line}
	var kinds []string
	for _, k := range m.keys {
		if k != "at" {
			kinds = append(kinds, k)
		}
	}
	switch {
	case len(kinds) == 0 && m.bad == 0:
		p.errorf(m.n, path, "no action: a step needs one, like crash: NODE or expect: {...}")
		return s, false
	case len(kinds) == 0:
		return s, false // the unknown key was reported
	case len(kinds) > 1:
		p.errorf(m.key[kinds[1]], path, "two actions, %s and %s: give each its own step", kinds[0], kinds[1])
		return s, false
	}
	errs := len(p.errs)
	if m.has("at") {
		if at, ok := p.duration(m.get("at"), m.at("at")); ok {
			s.At, s.HasAt = at, true
			if p.durationOK && at > p.sc.Duration {
				p.errorf(m.get("at"), m.at("at"), "%s is after the end of the run (duration %s)",
					FormatDuration(at), FormatDuration(p.sc.Duration))
			}
		}
	}
	kind := kinds[0]
	v := m.get(kind)
	if v == nil {
		return s, false
	}
	s.Action = p.action(kind, v, m.at(kind))
	return s, s.Action != nil && len(p.errs) == errs
}

// Which node selectors a step accepts.
type selOpts uint8

const (
	selMany  selOpts = 1 << iota // patterns and `all`
	selRoles                     // leader, follower, worker:random
	selNoAll                     // with selMany: patterns but not `all`
)

const anyNodes = selMany | selRoles
const oneNode = selRoles

// action reads the value v of a step's action key kind. It returns nil when
// the value has errors.
func (p *parser) action(kind string, v *yaml.Node, path string) Action {
	sel := func(opts selOpts) (Selector, bool) { return p.selector(v, path, opts) }
	switch kind {
	case "crash", "restart", "stop", "start", "isolate", "promote", "demote",
		"drain", "pause", "activate", "remove_manager", "remove_worker", "compromise", "unlock":
		opts := anyNodes
		if kind == "compromise" || kind == "unlock" {
			opts = oneNode
		}
		t, ok := sel(opts)
		if !ok {
			return nil
		}
		if kind == "remove_manager" || kind == "remove_worker" {
			p.removeNode(t)
		}
		return targetAction(kind, t)
	case "heal":
		s, ok := p.text(v, path)
		if !ok {
			return nil
		}
		if s != "all" {
			p.errorf(v, path, "heal takes all (every cut link is restored), not %q", s)
			return nil
		}
		return Heal{}
	case "partition":
		return p.partition(v, path)
	case "link":
		return p.link(v, path)
	case "add_manager":
		name, ok := p.newNode(v, path)
		if !ok {
			return nil
		}
		p.addNode(name)
		return AddManager{Name: name}
	case "add_worker":
		return p.addWorker(v, path)
	case "join_with_old_token":
		name, ok := p.newNode(v, path)
		if !ok {
			return nil
		}
		return JoinWithOldToken{Name: name}
	case "create":
		s, ok := p.service(v, path)
		if !ok {
			return nil
		}
		return Create{Service: s}
	case "remove":
		name, _, ok := p.serviceRef(v, path)
		if !ok {
			return nil
		}
		p.svcRemoved[name] = true
		return Remove{Service: name}
	case "rollback":
		name, mode, ok := p.serviceRef(v, path)
		if !ok {
			return nil
		}
		if mode.IsJob() {
			p.errorf(v, path, "%s is a job (%s): jobs have no rollback", name, mode)
			return nil
		}
		return Rollback{Service: name}
	case "scale":
		return p.scale(v, path)
	case "update":
		return p.update(v, path)
	case "fail_tasks":
		m := p.mapping(v, path, "service", "count")
		if m == nil || !m.require("service", "count") {
			return nil
		}
		name, _, ok := p.serviceRef(m.get("service"), m.at("service"))
		c, ok2 := p.count(m.get("count"), m.at("count"), 1, 1000000)
		if !ok || !ok2 {
			return nil
		}
		return FailTasks{Service: name, Count: c}
	case "clock_skew":
		m := p.mapping(v, path, "node", "by")
		if m == nil || !m.require("node", "by") {
			return nil
		}
		t, ok := p.selector(m.get("node"), m.at("node"), anyNodes)
		by, ok2 := p.signedDuration(m.get("by"), m.at("by"))
		if !ok || !ok2 {
			return nil
		}
		return ClockSkew{Node: t, By: by}
	case "expect":
		return p.expect(v, path)
	case "secret", "config":
		return p.blobStep(kind, v, path)
	case "rotate_join_token":
		role, ok := p.enum(v, path, "role", []string{"worker", "manager"})
		if !ok {
			return nil
		}
		return RotateJoinToken{Role: role}
	case "rotate_root_ca":
		if !p.trueOnly(v, path) {
			return nil
		}
		return RotateRootCA{}
	case "autolock":
		on, ok := p.onOff(v, path)
		if !ok {
			p.autolockUnsure = true
			return nil
		}
		p.autolock = on
		p.autolockEver = p.autolockEver || on
		return Autolock{On: on}
	case "rotate_unlock_key":
		if !p.trueOnly(v, path) {
			return nil
		}
		if !p.autolock && !p.autolockUnsure {
			p.errorf(v, path, "autolock is off here: turn it on (cluster.autolock or an autolock: on step) first")
			return nil
		}
		return RotateUnlockKey{}
	}
	p.errorf(v, path, "step kind %s is not implemented by the parser", kind)
	return nil
}

func targetAction(kind string, t Selector) Action {
	switch kind {
	case "crash":
		return Crash{t}
	case "restart":
		return Restart{t}
	case "stop":
		return Stop{t}
	case "start":
		return Start{t}
	case "isolate":
		return Isolate{t}
	case "promote":
		return Promote{t}
	case "demote":
		return Demote{t}
	case "drain":
		return Drain{t}
	case "pause":
		return Pause{t}
	case "activate":
		return Activate{t}
	case "remove_manager":
		return RemoveManager{t}
	case "remove_worker":
		return RemoveWorker{t}
	case "compromise":
		return Compromise{t}
	case "unlock":
		return Unlock{t}
	}
	return nil
}

// onOff reads on, off, true or false (autolock).
func (p *parser) onOff(n *yaml.Node, path string) (bool, bool) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == tagBool {
		return p.boolean(n, path)
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == tagStr {
		switch n.Value {
		case "on":
			return true, true
		case "off":
			return false, true
		}
	}
	p.wrongType(n, path, "on, off, true or false")
	return false, false
}

var patternRE = regexp.MustCompile(`^[a-z0-9*?-]+$`)

// selector reads a node selector and checks the names it uses exist.
func (p *parser) selector(n *yaml.Node, path string, opts selOpts) (Selector, bool) {
	s, ok := p.text(n, path)
	if !ok {
		return Selector{}, false
	}
	switch s {
	case "all":
		if opts&selMany == 0 || opts&selNoAll != 0 {
			p.errorf(n, path, "all is not allowed here: name one node")
			return Selector{}, false
		}
		return Selector{Kind: SelectAll}, true
	case "leader", "follower", "worker:random":
		if opts&selRoles == 0 {
			p.errorf(n, path, "%s is not allowed here: name a node", s)
			return Selector{}, false
		}
		switch s {
		case "leader":
			return Selector{Kind: SelectLeader}, true
		case "follower":
			return Selector{Kind: SelectFollower}, true
		}
		return Selector{Kind: SelectRandomWorker}, true
	}
	if strings.ContainsAny(s, "*?") {
		if opts&selMany == 0 {
			p.errorf(n, path, "pattern %q is not allowed here: name one node", s)
			return Selector{}, false
		}
		if !patternRE.MatchString(s) || len(s) > maxServiceNameLen {
			p.errorf(n, path, "bad pattern %q: want node name characters (a-z, 0-9, -) with * and ?", s)
			return Selector{}, false
		}
		sel := Selector{Kind: SelectPattern, Name: s}
		if !p.nodesUnsure && !p.patternMatches(sel) {
			p.errorf(n, path, "pattern %q matches no node (%s)", s, p.clusterNames())
			return Selector{}, false
		}
		return sel, true
	}
	if !nameRE.MatchString(s) {
		p.errorf(n, path, "unknown node selector %q (want a node name, a pattern like w1*, leader, follower, worker:random or all)", s)
		return Selector{}, false
	}
	if !p.nodesUnsure && !p.knownNode(s) {
		p.errorf(n, path, "unknown node %q (%s)", s, p.clusterNames())
		return Selector{}, false
	}
	return Selector{Kind: SelectNode, Name: s}, true
}

// numbered parses prefix+N with N a positive number without leading zeros.
func numbered(name, prefix string) (int, bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok || rest == "" || rest[0] == '0' || len(rest) > 9 {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil
}

// knownNode reports whether a node called name was ever part of the
// cluster, up to this step.
func (p *parser) knownNode(name string) bool {
	if _, ok := p.present[name]; ok {
		return true
	}
	if k, ok := numbered(name, "m"); ok && k <= p.managers {
		return true
	}
	if k, ok := numbered(name, "w"); ok && k <= p.workers {
		return true
	}
	return false
}

// nodePresent reports whether name is in the cluster now, as far as the
// file says: removed by name, it is not.
func (p *parser) nodePresent(name string) bool {
	if v, ok := p.present[name]; ok {
		return v
	}
	return p.knownNode(name)
}

// anyNode reports whether f holds for a node ever in the cluster. Each name
// tried is charged to a work budget, so that a file of many patterns over a
// large cluster stays cheap; once it is spent, anyNode reports true, so no
// further errors follow from it.
func (p *parser) anyNode(f func(string) bool) bool {
	if p.names == nil {
		p.names = make([]string, 0, p.managers+p.workers+len(p.added))
		for i := 1; i <= p.managers; i++ {
			p.names = append(p.names, ManagerName(i))
		}
		for i := 1; i <= p.workers; i++ {
			p.names = append(p.names, WorkerName(i))
		}
		p.names = append(p.names, p.added...)
	}
	for _, name := range p.names {
		if p.work <= 0 {
			if !p.overBudget {
				p.overBudget = true
				p.errorf(nil, "", "too much work matching node patterns (more than %d names tried)", workBudget)
			}
			return true
		}
		p.work--
		if f(name) {
			return true
		}
	}
	return false
}

// patternMatches reports whether a pattern matches a node ever in the
// cluster, remembering the answer until a node is added.
func (p *parser) patternMatches(sel Selector) bool {
	if ok, seen := p.matched[sel.Name]; seen {
		return ok
	}
	ok := p.anyNode(sel.Match)
	p.matched[sel.Name] = ok
	return ok
}

// clusterNames is "cluster has m1..m3, w1..w40, m4" for messages.
func (p *parser) clusterNames() string {
	var parts []string
	span := func(prefix string, n int) {
		switch n {
		case 0:
		case 1:
			parts = append(parts, prefix+"1")
		default:
			parts = append(parts, prefix+"1.."+prefix+strconv.Itoa(n))
		}
	}
	span("m", p.managers)
	span("w", p.workers)
	for i, a := range p.added {
		if i == 6 {
			parts = append(parts, "...")
			break
		}
		parts = append(parts, a)
	}
	if len(parts) == 0 {
		return "cluster has no nodes"
	}
	return "cluster has " + strings.Join(parts, ", ")
}

// newNode reads the name of a node a step brings in; no node of that name
// may be in the cluster.
func (p *parser) newNode(n *yaml.Node, path string) (string, bool) {
	s, ok := p.name(n, path, "node name")
	if !ok {
		return "", false
	}
	switch s {
	case "leader", "follower", "all":
		p.errorf(n, path, "%q is a selector, not a node name", s)
		return "", false
	}
	if !p.nodesUnsure && p.nodePresent(s) {
		p.errorf(n, path, "node %q is already in the cluster", s)
		return "", false
	}
	return s, true
}

func (p *parser) addNode(name string) {
	if _, seen := p.present[name]; !seen && !p.knownNode(name) {
		p.added = append(p.added, name)
		if p.names != nil {
			p.names = append(p.names, name)
		}
		clear(p.matched)
	}
	p.present[name] = true
}

// removeNode notes a node removed by name, so that a later step may add it again.
func (p *parser) removeNode(t Selector) {
	if t.Kind == SelectNode {
		p.present[t.Name] = false
	}
}

func (p *parser) addWorker(v *yaml.Node, path string) Action {
	a := AddWorker{Resources: Resources{DefaultNanoCPUs, DefaultMemoryBytes}}
	if g := p.lastGroup; g != nil {
		a.Resources = g.Resources
		a.Labels = maps.Clone(g.Labels)
	}
	if v.Kind != yaml.MappingNode {
		name, ok := p.newNode(v, path)
		if !ok {
			return nil
		}
		a.Name = name
		p.addNode(name)
		return a
	}
	m := p.mapping(v, path, "name", "resources", "labels")
	if m == nil || !m.require("name") {
		return nil
	}
	name, ok := p.newNode(m.get("name"), m.at("name"))
	if !ok {
		return nil
	}
	a.Name = name
	p.addNode(name)
	a.Resources, ok = p.resources(m, a.Resources, false, true)
	if m.has("labels") {
		l, ok2 := p.labels(m.get("labels"), m.at("labels"))
		a.Labels, ok = l, ok && ok2
	}
	if !ok {
		return nil
	}
	return a
}

func (p *parser) partition(v *yaml.Node, path string) Action {
	groups, ok := p.seq(v, path)
	if !ok {
		return nil
	}
	if len(groups) < 2 {
		p.errorf(v, path, "a partition needs two groups or more, like [[m1], [m2, m3]]; to cut one node off, use isolate")
		return nil
	}
	var out [][]Selector
	owner := map[string]int{}    // node or selector -> group, to catch overlaps
	listed := map[Selector]int{} // selector -> group
	for gi, g := range groups {
		gp := index(path, gi)
		items := []*yaml.Node{g}
		if g.Kind == yaml.SequenceNode {
			if items, ok = p.seq(g, gp); !ok {
				return nil
			}
			if len(items) == 0 {
				p.errorf(g, gp, "empty group")
				return nil
			}
		}
		var sels []Selector
		for ii, it := range items {
			ip := gp
			if g.Kind == yaml.SequenceNode {
				ip = index(gp, ii)
			}
			s, ok := p.selector(it, ip, anyNodes|selNoAll)
			if !ok {
				return nil
			}
			if prev, dup := listed[s]; dup {
				if prev == gi {
					p.errorf(it, ip, "%s is listed twice", s)
				} else {
					p.errorf(it, ip, "%s is in two groups", s)
				}
				return nil
			}
			listed[s] = gi
			var clash []string
			mark := func(key string) {
				if prev, dup := owner[key]; dup && prev != gi {
					clash = append(clash, key)
				}
				owner[key] = gi
			}
			switch {
			case p.nodesUnsure:
			case s.Kind == SelectNode:
				mark(s.Name)
			case s.Kind == SelectPattern:
				p.anyNode(func(name string) bool {
					if s.Match(name) {
						mark(name)
					}
					return len(clash) > 0
				})
			default:
				mark(s.String())
			}
			if len(clash) > 0 {
				p.errorf(it, ip, "%s is in two groups", clash[0])
				return nil
			}
			sels = append(sels, s)
		}
		out = append(out, sels)
	}
	return Partition{Groups: out}
}

func (p *parser) link(v *yaml.Node, path string) Action {
	m := p.mapping(v, path, "from", "to", "latency", "loss", "duplicate", "reorder")
	if m == nil || !m.require("from", "to") {
		return nil
	}
	from, ok := p.selector(m.get("from"), m.at("from"), anyNodes)
	to, ok2 := p.selector(m.get("to"), m.at("to"), anyNodes)
	def := p.sc.Network
	a := Link{From: from, To: to}
	ok3 := field(m, "latency", &a.Model.Latency, p.durationRange, def.Latency, "")
	ok3 = field(m, "loss", &a.Model.Loss, p.percent, def.Loss, "") && ok3
	ok3 = field(m, "duplicate", &a.Model.Duplicate, p.percent, def.Duplicate, "") && ok3
	ok3 = field(m, "reorder", &a.Model.Reorder, p.boolean, def.Reorder, "") && ok3
	if !ok || !ok2 || !ok3 {
		return nil
	}
	return a
}

// serviceRef reads the name of a service declared before this point and
// returns its mode ("" when not known).
func (p *parser) serviceRef(n *yaml.Node, path string) (string, Mode, bool) {
	s, ok := p.name(n, path, "service name")
	if !ok {
		return "", "", false
	}
	mode, known := p.services[s]
	if !known {
		if p.servicesUnsure {
			return s, "", true
		}
		p.errorf(n, path, "unknown service %q (%s)", s, p.serviceNames())
		return "", "", false
	}
	return s, mode, true
}

func (p *parser) serviceNames() string {
	known := map[string]bool{}
	for k := range p.services {
		known[k] = true
	}
	return knownList(known, "services")
}

func (p *parser) scale(v *yaml.Node, path string) Action {
	m := p.mapping(v, path, "service", "replicas")
	if m == nil || !m.require("service", "replicas") {
		return nil
	}
	name, mode, ok := p.serviceRef(m.get("service"), m.at("service"))
	r, ok2 := p.count(m.get("replicas"), m.at("replicas"), 0, 1000000)
	if !ok || !ok2 {
		return nil
	}
	if mode != "" && mode != Replicated {
		p.errorf(m.key["replicas"], m.at("replicas"), "only replicated services scale; %s is %s", name, mode)
		return nil
	}
	return Scale{Service: name, Replicas: r}
}

func (p *parser) update(v *yaml.Node, path string) Action {
	m := p.mapping(v, path, append([]string{"service", "name", "mode"}, updateKeys...)...)
	if m == nil || !m.require("service") {
		return nil
	}
	errs := len(p.errs)
	name, mode, ok := p.serviceRef(m.get("service"), m.at("service"))
	if !ok {
		return nil
	}
	if m.has("name") {
		p.errorf(m.key["name"], m.at("name"), "a service's name cannot change (service: names the one to update)")
	}
	if m.has("mode") {
		p.errorf(m.key["mode"], m.at("mode"), "a service's mode cannot change; remove it and create it again")
	}
	u := Update{Service: name}
	u.Set = p.serviceFields(m, &u.Spec, mode, name)
	if len(p.errs) != errs {
		return nil
	}
	if len(u.Set) == 0 {
		p.errorf(m.n, path, "nothing to change: give image or another key of the service spec")
		return nil
	}
	return u
}

func (p *parser) blobStep(kind string, v *yaml.Node, path string) Action {
	m := p.mapping(v, path, "name", "data")
	if m == nil || !m.require("name", "data") {
		if kind == "secret" {
			p.secretsUnsure = true
		} else {
			p.configsUnsure = true
		}
		return nil
	}
	known := p.secrets
	if kind == "config" {
		known = p.configs
	}
	name, ok := p.name(m.get("name"), m.at("name"), kind+" name")
	if !ok {
		if kind == "secret" {
			p.secretsUnsure = true
		} else {
			p.configsUnsure = true
		}
		return nil
	}
	if known[name] {
		p.errorf(m.get("name"), m.at("name"), "a %s %q already exists", kind, name)
		return nil
	}
	known[name] = true
	data, ok := p.text(m.get("data"), m.at("data"))
	if !ok {
		return nil
	}
	if kind == "secret" {
		return Secret{Name: name, Data: data}
	}
	return Config{Name: name, Data: data}
}

var expectKeys = []string{
	"leader", "managers", "nodes_ready", "service", "running", "completed", "image", "on",
	"node", "tasks", "converged", "root_rotated", "locked", "unlocked", "within",
}

func (p *parser) expect(v *yaml.Node, path string) Action {
	m := p.mapping(v, path, expectKeys...)
	if m == nil {
		return nil
	}
	errs := len(p.errs)
	var e Expect
	// Keys that only make sense with another.
	needs := map[string]string{
		"running": "service", "completed": "service", "image": "service", "on": "service", "tasks": "node",
	}
	for _, k := range m.keys {
		if with, ok := needs[k]; ok && !m.has(with) {
			p.errorf(m.key[k], m.at(k), "needs %s", with)
		}
	}
	for _, k := range m.keys {
		v := m.get(k)
		if v == nil {
			return nil
		}
		kp := m.at(k)
		switch k {
		case "leader":
			if c, ok := p.leaderCond(v, kp); ok {
				e.Conditions = append(e.Conditions, c)
			}
		case "managers":
			if n, ok := p.count(v, kp, 0, MaxManagers+1000); ok {
				e.Conditions = append(e.Conditions, Managers{n})
			}
		case "nodes_ready":
			if n, ok := p.count(v, kp, 0, MaxManagers+MaxWorkers+100000); ok {
				e.Conditions = append(e.Conditions, NodesReady{n})
			}
		case "service":
			e.Conditions = append(e.Conditions, p.serviceConds(m)...)
		case "node":
			if !m.has("tasks") {
				p.errorf(m.key[k], kp, "needs tasks")
				continue
			}
			t, ok := p.selector(v, kp, oneNode)
			n, ok2 := p.count(m.get("tasks"), m.at("tasks"), 0, 1000000)
			if ok && ok2 {
				e.Conditions = append(e.Conditions, NodeTasks{Node: t, N: n})
			}
		case "converged":
			if p.trueOnly(v, kp) {
				e.Conditions = append(e.Conditions, Converged{})
			}
		case "root_rotated":
			if p.trueOnly(v, kp) {
				e.Conditions = append(e.Conditions, RootRotated{})
			}
		case "locked", "unlocked":
			t, ok := p.selector(v, kp, oneNode)
			if !ok {
				continue
			}
			if k == "locked" {
				if !p.autolockEver && !p.autolockUnsure {
					p.errorf(v, kp, "autolock was never turned on, so no manager can be locked")
					continue
				}
				e.Conditions = append(e.Conditions, Locked{t})
			} else {
				e.Conditions = append(e.Conditions, Unlocked{t})
			}
		case "within":
			e.Within, _ = p.duration(v, kp)
		}
	}
	if len(p.errs) != errs {
		return nil
	}
	if len(e.Conditions) == 0 {
		p.errorf(m.n, path, "no condition: give leader, managers, nodes_ready, service, node, converged, root_rotated, locked or unlocked")
		return nil
	}
	if !m.has("within") {
		p.errorf(m.n, path, "missing key within: how long the condition may take to hold, like 30s")
		return nil
	}
	return e
}

// leaderCond reads `leader: elected`, `leader: m2` or `leader: not m1`.
func (p *parser) leaderCond(n *yaml.Node, path string) (Leader, bool) {
	s, ok := p.text(n, path)
	if !ok {
		return Leader{}, false
	}
	if s == "elected" {
		return Leader{}, true
	}
	c := Leader{Node: s}
	if rest, ok := strings.CutPrefix(s, "not "); ok {
		c = Leader{Node: strings.TrimSpace(rest), Not: true}
	}
	if !nameRE.MatchString(c.Node) {
		p.errorf(n, path, "want elected, a node name or not NAME, got %q", s)
		return Leader{}, false
	}
	if !p.nodesUnsure && !p.knownNode(c.Node) {
		p.errorf(n, path, "unknown node %q (%s)", c.Node, p.clusterNames())
		return Leader{}, false
	}
	return c, true
}

// serviceConds reads the service conditions of an expect: service with
// running and/or completed, filtered by image and on.
func (p *parser) serviceConds(m *mapping) []Condition {
	name, mode, ok := p.serviceRef(m.get("service"), m.at("service"))
	if !ok {
		return nil
	}
	if !m.has("running") && !m.has("completed") {
		p.errorf(m.key["service"], m.at("service"), "needs running or completed")
		return nil
	}
	var image string
	var on *Constraint
	if m.has("image") {
		if image, ok = p.word(m.get("image"), m.at("image"), "image"); !ok {
			return nil
		}
	}
	if m.has("on") {
		if on, ok = p.placement(m.get("on"), m.at("on")); !ok {
			return nil
		}
	}
	var out []Condition
	if m.has("running") {
		if n, ok := p.count(m.get("running"), m.at("running"), 0, 1000000); ok {
			out = append(out, Running{Service: name, N: n, Image: image, On: on})
		}
	}
	if m.has("completed") {
		if mode != "" && !mode.IsJob() {
			p.errorf(m.key["completed"], m.at("completed"), "%s is %s, not a job: its tasks do not complete", name, mode)
			return nil
		}
		if n, ok := p.count(m.get("completed"), m.at("completed"), 0, 1000000); ok {
			out = append(out, Completed{Service: name, N: n, Image: image, On: on})
		}
	}
	return out
}

// placement reads `on`: a node label, zone=a, or a full constraint.
func (p *parser) placement(n *yaml.Node, path string) (*Constraint, bool) {
	s, ok := p.text(n, path)
	if !ok {
		return nil, false
	}
	text := s
	if !strings.Contains(s, "==") && !strings.Contains(s, "!=") {
		k, v, found := strings.Cut(s, "=")
		if !found {
			p.errorf(n, path, "bad placement %q: want a node label like zone=a, or a constraint like node.role==worker", s)
			return nil, false
		}
		text = "node.labels." + strings.TrimSpace(k) + "==" + v
	}
	c, why := parseConstraint(text)
	if why != "" {
		p.errorf(n, path, "bad placement %q: %s", s, why)
		return nil, false
	}
	return &c, true
}
