package scheduler

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/swarmsim/swarmsim/engine/api"
)

// ErrInvalidPlacement is wrapped by every error about a malformed placement
// constraint or preference.
var ErrInvalidPlacement = errors.New("invalid placement")

// attr names what a constraint or a spread preference reads from a node.
type attr uint8

const (
	attrNodeID attr = iota + 1
	attrHostname
	attrRole
	attrNodeLabel   // node.labels.<name>: spec.labels, set by the operator
	attrEngineLabel // engine.labels.<name>: description.engine_labels
)

const (
	nodeLabelPrefix   = "node.labels."
	engineLabelPrefix = "engine.labels."
)

// descriptor is a parsed node attribute such as "node.labels.zone".
type descriptor struct {
	attr  attr
	label string // for the label attributes
}

// parseDescriptor parses the key of a constraint or the subject of a spread
// preference. Fixed keys and label prefixes are case-insensitive, as in
// Docker; label names are not.
func parseDescriptor(key string) (descriptor, error) {
	if key == "" {
		return descriptor{}, errors.New("empty key")
	}
	if i := strings.IndexFunc(key, unicode.IsSpace); i >= 0 {
		return descriptor{}, fmt.Errorf("space in key %q", key)
	}
	lower := strings.ToLower(key)
	switch lower {
	case "node.id":
		return descriptor{attr: attrNodeID}, nil
	case "node.hostname":
		return descriptor{attr: attrHostname}, nil
	case "node.role":
		return descriptor{attr: attrRole}, nil
	}
	for _, p := range [...]struct {
		prefix string
		attr   attr
	}{{nodeLabelPrefix, attrNodeLabel}, {engineLabelPrefix, attrEngineLabel}} {
		if strings.HasPrefix(lower, p.prefix) {
			label := key[len(p.prefix):]
			if label == "" {
				return descriptor{}, fmt.Errorf("key %q names no label", key)
			}
			return descriptor{attr: p.attr, label: label}, nil
		}
	}
	return descriptor{}, fmt.Errorf("unknown key %q (want node.id, node.hostname, node.role, node.labels.<name> or engine.labels.<name>)", key)
}

// value returns what d reads from n, and false when n lacks the label.
func (d descriptor) value(n *api.Node) (string, bool) {
	switch d.attr {
	case attrNodeID:
		return n.Id, true
	case attrHostname:
		return n.GetDescription().GetHostname(), true
	case attrRole:
		return roleName(n.Role), true
	case attrNodeLabel:
		v, ok := n.GetSpec().GetLabels()[d.label]
		return v, ok
	case attrEngineLabel:
		v, ok := n.GetDescription().GetEngineLabels()[d.label]
		return v, ok
	}
	return "", false
}

func roleName(r api.NodeRole) string {
	if r == api.NodeRole_NODE_ROLE_MANAGER {
		return "manager"
	}
	return "worker"
}

// constraint is one parsed placement constraint: "<key>==<value>" or
// "<key>!=<value>".
type constraint struct {
	expr  string // as the user wrote it, for pending reasons
	d     descriptor
	equal bool
	value string
}

// parseConstraint parses one constraint expression with the grammar the
// control API validates against (api.ParseConstraint), so that what it
// admits is what the scheduler places, then resolves the key once for fast
// matching.
func parseConstraint(expr string) (constraint, error) {
	ac, err := api.ParseConstraint(expr)
	if err != nil {
		return constraint{}, fmt.Errorf("%w: %w", ErrInvalidPlacement, err)
	}
	d, err := parseDescriptor(ac.Key)
	if err != nil {
		return constraint{}, fmt.Errorf("%w: constraint %q: %v", ErrInvalidPlacement, expr, err)
	}
	return constraint{expr: expr, d: d, equal: ac.Op == api.OpEqual, value: ac.Value}, nil
}

// match reports whether n satisfies c. Values compare case-insensitively,
// as Docker does; a node without the label has the empty value, so "=="
// fails on it and "!=" holds.
func (c *constraint) match(n *api.Node) bool {
	v, _ := c.d.value(n)
	return strings.EqualFold(v, c.value) == c.equal
}

// parsePreference parses one placement preference.
func parsePreference(p *api.PlacementPreference) (descriptor, error) {
	d, err := parseDescriptor(strings.TrimSpace(p.GetSpread()))
	if err != nil {
		return descriptor{}, fmt.Errorf("%w: spread preference %q: %v", ErrInvalidPlacement, p.GetSpread(), err)
	}
	return d, nil
}

// ValidatePlacement checks that every constraint and preference of p
// parses, so that a control API can refuse a service the scheduler could
// never place. The error wraps ErrInvalidPlacement and names the expression.
func ValidatePlacement(p *api.Placement) error {
	_, err := compilePlacement(p)
	return err
}

// placement is the parsed form of a task spec's placement, shared by all
// the tasks of a service that carry it.
type placement struct {
	constraints []constraint
	spread      []descriptor
	// err is the first parse error: the tasks stay pending with it as
	// their reason.
	err error
	// cache holds, per node (by nodeInfo.idx), the outcome of the
	// constraints for the node as it was at generation gen: gen<<16 |
	// code, where code is passAll or the index of the first failing
	// constraint. 0 means not evaluated.
	cache []uint64
}

const passAll = 0xffff

// maxConstraints bounds the constraints of one spec, so that a failing
// index fits the cache's 16 bits.
const maxConstraints = passAll - 1

func compilePlacement(p *api.Placement) (*placement, error) {
	pl := &placement{}
	cs := p.GetConstraints()
	if len(cs) > maxConstraints {
		pl.err = fmt.Errorf("%w: %d constraints, at most %d", ErrInvalidPlacement, len(cs), maxConstraints)
		return pl, pl.err
	}
	for _, expr := range cs {
		c, err := parseConstraint(expr)
		if err != nil {
			pl.err = err
			return pl, err
		}
		pl.constraints = append(pl.constraints, c)
	}
	for _, pref := range p.GetPreferences() {
		d, err := parsePreference(pref)
		if err != nil {
			pl.err = err
			return pl, err
		}
		pl.spread = append(pl.spread, d)
	}
	return pl, nil
}

// check returns the index of the first constraint n fails, or -1, from
// the cache when the node has not changed since it was last evaluated.
func (pl *placement) check(n *nodeInfo) int {
	if len(pl.constraints) == 0 {
		return -1
	}
	if int(n.idx) >= len(pl.cache) {
		grown := make([]uint64, max(int(n.idx)+1, 2*len(pl.cache)))
		copy(grown, pl.cache)
		pl.cache = grown
	}
	if e := pl.cache[n.idx]; e>>16 == n.gen {
		if code := e & 0xffff; code != passAll {
			return int(code)
		}
		return -1
	}
	code := uint64(passAll)
	for i := range pl.constraints {
		if !pl.constraints[i].match(n.n) {
			code = uint64(i)
			break
		}
	}
	pl.cache[n.idx] = n.gen<<16 | code
	if code == passAll {
		return -1
	}
	return int(code)
}

// placementKey identifies a placement by its text, so that tasks of one
// service on two spec versions share the parse when their placement is
// the same.
func placementKey(p *api.Placement) string {
	cs, ps := p.GetConstraints(), p.GetPreferences()
	if len(cs) == 0 && len(ps) == 0 {
		return ""
	}
	var b strings.Builder
	for _, c := range cs {
		b.WriteString(c)
		b.WriteByte(0)
	}
	b.WriteByte(1)
	for _, pr := range ps {
		b.WriteString(pr.GetSpread())
		b.WriteByte(0)
	}
	return b.String()
}
