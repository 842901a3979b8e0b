package api

// Spec validation: the checks every spec passes before the control API
// writes it. They are pure (no store, no clock), so the simulator, the
// real-mode gRPC layer and tests share them.
//
// Each failing field gives one *ValidationError naming the field by its
// path in the protobuf message ("spec.task.reservations.memory_bytes"), so
// a user can find it in the object they sent. Several failures come back
// together (errors.Join) in field order; errors.Is(err, ErrInvalidSpec)
// holds for all of them and FieldErrors lists them.

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"unicode"
)

// ErrInvalidSpec is wrapped by every validation failure.
var ErrInvalidSpec = errors.New("invalid spec")

// Limits the validators enforce.
const (
	// MaxNameLength bounds service, network, secret, config and node names
	// (a DNS label, since names end up in service discovery).
	MaxNameLength = 63
	// MaxSecretSize and MaxConfigSize bound the data of one secret or
	// config: they travel in raft entries and in every assignment of a
	// task that uses them.
	MaxSecretSize = 500 << 10
	MaxConfigSize = 500 << 10
	// MaxReplicas bounds replica counts, job completions and update
	// parallelism. Unsigned fields cannot be negative, but a client that
	// casts -1 sends 2^64-1; this catches it with a message that says so.
	MaxReplicas = 1_000_000
	// MaxImageLength bounds an image reference (Docker's own limit on a
	// full reference is in this range).
	MaxImageLength = 255
)

// ValidationError is one field that failed validation.
type ValidationError struct {
	// Field is the field's path in the message, e.g.
	// "spec.task.placement.constraints[1]".
	Field string
	// Reason says what is wrong, in words a user understands.
	Reason string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Reason }

// Unwrap lets errors.Is(err, ErrInvalidSpec) hold.
func (e *ValidationError) Unwrap() error { return ErrInvalidSpec }

// FieldErrors returns every *ValidationError in err's tree, in order.
func FieldErrors(err error) []*ValidationError {
	var out []*ValidationError
	var walk func(error)
	walk = func(e error) {
		switch x := e.(type) {
		case nil:
		case *ValidationError:
			out = append(out, x)
		case interface{ Unwrap() []error }:
			for _, c := range x.Unwrap() {
				walk(c)
			}
		case interface{ Unwrap() error }:
			walk(x.Unwrap())
		}
	}
	walk(err)
	return out
}

// fieldErrors collects the failures of one validation.
type fieldErrors struct{ errs []error }

func (v *fieldErrors) add(field, format string, args ...any) {
	v.errs = append(v.errs, &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)})
}

// err returns nil, the one failure, or all of them joined.
func (v *fieldErrors) err() error {
	switch len(v.errs) {
	case 0:
		return nil
	case 1:
		return v.errs[0]
	}
	return errors.Join(v.errs...)
}

// ------------------------------------------------------------------ names

// ValidateName checks an object name: a letter or digit, then letters,
// digits, '_', '.' or '-', at most MaxNameLength characters. It returns
// the reason it fails, or "".
func ValidateName(name string) string {
	if name == "" {
		return "required"
	}
	if len(name) > MaxNameLength {
		return fmt.Sprintf("%q is %d characters long; at most %d are allowed", name, len(name), MaxNameLength)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if i == 0 && !alnum {
			return fmt.Sprintf("%q must start with a letter or a digit", name)
		}
		if !alnum && c != '_' && c != '.' && c != '-' {
			return fmt.Sprintf("%q may contain only letters, digits, '_', '.' and '-'", name)
		}
	}
	return ""
}

func (v *fieldErrors) name(field, name string) {
	if why := ValidateName(name); why != "" {
		v.add(field, "%s", why)
	}
}

// labels checks label keys in sorted order, so the errors do not depend on
// map iteration.
func (v *fieldErrors) labels(field string, labels map[string]string) {
	if len(labels) == 0 {
		return
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		switch {
		case strings.TrimSpace(k) == "":
			v.add(field, "label keys must not be empty")
		case strings.IndexFunc(k, unicode.IsSpace) >= 0:
			v.add(field, "label key %q must not contain whitespace", k)
		}
	}
}

// --------------------------------------------------------------- services

// ValidateServiceSpec checks a service spec before it is created or
// updated. It does not look at the store: whether referenced secrets,
// configs and networks exist, and whether published ports are free, is the
// control API's business.
func ValidateServiceSpec(spec *ServiceSpec) error {
	var v fieldErrors
	if spec == nil {
		v.add("spec", "required")
		return v.err()
	}
	v.name("spec.name", spec.Name)
	v.labels("spec.labels", spec.Labels)
	v.taskSpec("spec.task", spec.Task)

	job := false
	switch m := spec.Mode.(type) {
	case nil:
		v.add("spec.mode", "required: one of replicated, global, replicated_job or global_job")
	case *ServiceSpec_Replicated:
		if r := m.Replicated.GetReplicas(); r > MaxReplicas {
			v.add("spec.mode.replicated.replicas", "%d is more than the %d allowed (a negative number sent unsigned?)", r, MaxReplicas)
		}
	case *ServiceSpec_Global:
	case *ServiceSpec_ReplicatedJob:
		job = true
		if n := m.ReplicatedJob.GetTotalCompletions(); n > MaxReplicas {
			v.add("spec.mode.replicated_job.total_completions", "%d is more than the %d allowed", n, MaxReplicas)
		}
		if n := m.ReplicatedJob.GetMaxConcurrent(); n > MaxReplicas {
			v.add("spec.mode.replicated_job.max_concurrent", "%d is more than the %d allowed", n, MaxReplicas)
		}
	case *ServiceSpec_GlobalJob:
		job = true
	}

	// A job runs to completion: an update runs it again as a new
	// iteration rather than rolling its tasks, so update and rollback
	// policies would be silently ignored. Refuse them instead.
	if job && spec.Update != nil {
		v.add("spec.update", "not allowed for a job: updating a job runs it again instead of rolling its tasks")
	} else {
		v.updateConfig("spec.update", spec.Update, false)
	}
	if job && spec.Rollback != nil {
		v.add("spec.rollback", "not allowed for a job: a job is never rolled back")
	} else {
		v.updateConfig("spec.rollback", spec.Rollback, true)
	}
	v.endpoint("spec.endpoint", spec.Endpoint)
	return v.err()
}

func (v *fieldErrors) taskSpec(field string, t *TaskSpec) {
	if t == nil {
		v.add(field, "required")
		return
	}
	v.container(field+".container", t.Container)
	v.resources(field+".limits", t.Limits)
	v.resources(field+".reservations", t.Reservations)
	if t.Limits != nil && t.Reservations != nil {
		if l, r := t.Limits.NanoCpus, t.Reservations.NanoCpus; l > 0 && r > l {
			v.add(field+".reservations.nano_cpus", "reserves %d nano-CPUs, more than the limit of %d", r, l)
		}
		if l, r := t.Limits.MemoryBytes, t.Reservations.MemoryBytes; l > 0 && r > l {
			v.add(field+".reservations.memory_bytes", "reserves %d bytes, more than the limit of %d", r, l)
		}
	}
	v.restart(field+".restart", t.Restart)
	v.placement(field+".placement", t.Placement)
	seen := make(map[string]int, len(t.Networks))
	for i, n := range t.Networks {
		f := fmt.Sprintf("%s.networks[%d]", field, i)
		if n == "" {
			v.add(f, "network must not be empty")
			continue
		}
		if j, dup := seen[n]; dup {
			v.add(f, "network %q is already listed at networks[%d]", n, j)
			continue
		}
		seen[n] = i
	}
}

func (v *fieldErrors) container(field string, c *ContainerSpec) {
	if c == nil {
		v.add(field, "required")
		return
	}
	switch {
	case c.Image == "":
		v.add(field+".image", "required")
	case len(c.Image) > MaxImageLength:
		v.add(field+".image", "%d characters long; at most %d are allowed", len(c.Image), MaxImageLength)
	case strings.IndexFunc(c.Image, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		v.add(field+".image", "%q must not contain whitespace or control characters", c.Image)
	}
	for i, e := range c.Env {
		if name, _, _ := strings.Cut(e, "="); strings.TrimSpace(name) == "" {
			v.add(fmt.Sprintf("%s.env[%d]", field, i), "%q has no variable name; expected NAME=VALUE", e)
		}
	}
	v.labels(field+".labels", c.Labels)
	if c.StopGracePeriod < 0 {
		v.add(field+".stop_grace_period", "must not be negative")
	}
	if h := c.Health; h != nil {
		hf := field + ".health"
		if h.Interval < 0 {
			v.add(hf+".interval", "must not be negative")
		}
		if h.Timeout < 0 {
			v.add(hf+".timeout", "must not be negative")
		}
		if h.StartPeriod < 0 {
			v.add(hf+".start_period", "must not be negative")
		}
		if h.Retries < 0 {
			v.add(hf+".retries", "must not be negative")
		}
	}
	targets := map[string]string{}
	for i, r := range c.Secrets {
		v.reference(fmt.Sprintf("%s.secrets[%d]", field, i), "secret", r.SecretId, r.SecretName, r.Target, targets)
	}
	targets = map[string]string{}
	for i, r := range c.Configs {
		v.reference(fmt.Sprintf("%s.configs[%d]", field, i), "config", r.ConfigId, r.ConfigName, r.Target, targets)
	}
}

// reference checks a secret or config reference: it names its object by ID
// or name (the control API resolves names), and no two references of a
// kind share a target file.
func (v *fieldErrors) reference(field, kind, id, name, target string, targets map[string]string) {
	if id == "" && name == "" {
		v.add(field, "names no %s: set %s_id or %s_name", kind, kind, kind)
		return
	}
	if name != "" {
		if why := ValidateName(name); why != "" {
			v.add(field+"."+kind+"_name", "%s", why)
		}
	}
	t := target
	if t == "" {
		t = name // the default target is the object's name
	}
	if t == "" {
		return
	}
	if strings.ContainsRune(t, 0) {
		v.add(field+".target", "must not contain NUL")
		return
	}
	if prev, dup := targets[t]; dup {
		v.add(field+".target", "%q is already the target of %s", t, prev)
		return
	}
	targets[t] = field[strings.LastIndexByte(field, '.')+1:]
}

func (v *fieldErrors) resources(field string, r *Resources) {
	if r == nil {
		return
	}
	if r.NanoCpus < 0 {
		v.add(field+".nano_cpus", "must not be negative")
	}
	if r.MemoryBytes < 0 {
		v.add(field+".memory_bytes", "must not be negative")
	}
}

func (v *fieldErrors) restart(field string, r *RestartPolicy) {
	if r == nil {
		return
	}
	if _, ok := RestartPolicy_Condition_name[int32(r.Condition)]; !ok {
		v.add(field+".condition", "unknown condition %d; expected any, none or on-failure", r.Condition)
	}
	if r.Delay < 0 {
		v.add(field+".delay", "must not be negative")
	}
	if r.Window < 0 {
		v.add(field+".window", "must not be negative")
	}
}

func (v *fieldErrors) placement(field string, p *Placement) {
	if p == nil {
		return
	}
	for i, s := range p.Constraints {
		if _, err := ParseConstraint(s); err != nil {
			v.add(fmt.Sprintf("%s.constraints[%d]", field, i), "%v", err)
		}
	}
	for i, pref := range p.Preferences {
		f := fmt.Sprintf("%s.preferences[%d].spread", field, i)
		if pref.GetSpread() == "" {
			v.add(f, "required: a node descriptor such as node.labels.zone")
			continue
		}
		if why := checkConstraintKey(pref.Spread); why != "" {
			v.add(f, "%s", why)
		}
	}
	if p.MaxReplicas > MaxReplicas {
		v.add(field+".max_replicas", "%d is more than the %d allowed", p.MaxReplicas, MaxReplicas)
	}
}

func (v *fieldErrors) updateConfig(field string, u *UpdateConfig, rollback bool) {
	if u == nil {
		return
	}
	if u.Parallelism > MaxReplicas {
		v.add(field+".parallelism", "%d is more than the %d allowed (0 means all at once)", u.Parallelism, MaxReplicas)
	}
	if u.Delay < 0 {
		v.add(field+".delay", "must not be negative")
	}
	if u.Monitor < 0 {
		v.add(field+".monitor", "must not be negative")
	}
	if _, ok := UpdateConfig_FailureAction_name[int32(u.FailureAction)]; !ok {
		v.add(field+".failure_action", "unknown action %d; expected pause, continue or rollback", u.FailureAction)
	} else if rollback && u.FailureAction == UpdateConfig_ROLLBACK {
		v.add(field+".failure_action", "a failed rollback cannot itself be rolled back; use pause or continue")
	}
	if r := u.MaxFailureRatio; math.IsNaN(r) || r < 0 || r > 1 {
		v.add(field+".max_failure_ratio", "%v is outside [0, 1]", r)
	}
	if _, ok := UpdateConfig_Order_name[int32(u.Order)]; !ok {
		v.add(field+".order", "unknown order %d; expected stop-first or start-first", u.Order)
	}
}

func (v *fieldErrors) endpoint(field string, e *EndpointSpec) {
	if e == nil {
		return
	}
	type key struct {
		port  uint32
		proto PortConfig_Protocol
	}
	published := map[key]int{}
	for i, p := range e.Ports {
		f := fmt.Sprintf("%s.ports[%d]", field, i)
		if p == nil {
			v.add(f, "must not be empty")
			continue
		}
		_, protoOK := PortConfig_Protocol_name[int32(p.Protocol)]
		if !protoOK {
			v.add(f+".protocol", "unknown protocol %d; expected tcp or udp", p.Protocol)
		}
		if _, ok := PortConfig_PublishMode_name[int32(p.PublishMode)]; !ok {
			v.add(f+".publish_mode", "unknown mode %d; expected ingress or host", p.PublishMode)
		}
		if p.TargetPort == 0 || p.TargetPort > math.MaxUint16 {
			v.add(f+".target_port", "%d is not a port: expected 1 to 65535", p.TargetPort)
		}
		if p.PublishedPort > math.MaxUint16 {
			v.add(f+".published_port", "%d is not a port: expected 1 to 65535, or 0 to have one allocated", p.PublishedPort)
			continue
		}
		if p.PublishedPort == 0 || !protoOK {
			continue // an allocated port never collides with another
		}
		k := key{p.PublishedPort, p.Protocol}
		if j, dup := published[k]; dup {
			v.add(f+".published_port", "%s is already published by ports[%d]", PortString(p.PublishedPort, p.Protocol), j)
			continue
		}
		published[k] = i
	}
}

// PortString formats a port and protocol the way users write them:
// "8080/tcp".
func PortString(port uint32, proto PortConfig_Protocol) string {
	p := "tcp"
	if proto == PortConfig_UDP {
		p = "udp"
	}
	return fmt.Sprintf("%d/%s", port, p)
}

// ------------------------------------------------------------------ nodes

// ValidateNodeSpec checks a node spec before an update.
func ValidateNodeSpec(spec *NodeSpec) error {
	var v fieldErrors
	if spec == nil {
		v.add("spec", "required")
		return v.err()
	}
	if spec.Name != "" { // a node's name defaults to its hostname
		v.name("spec.name", spec.Name)
	}
	v.labels("spec.labels", spec.Labels)
	if _, ok := NodeRole_name[int32(spec.DesiredRole)]; !ok {
		v.add("spec.desired_role", "unknown role %d; expected worker or manager", spec.DesiredRole)
	}
	if _, ok := NodeAvailability_name[int32(spec.Availability)]; !ok {
		v.add("spec.availability", "unknown availability %d; expected active, pause or drain", spec.Availability)
	}
	return v.err()
}

// ------------------------------------------------------- secrets, configs

// ValidateSecretSpec checks a secret before it is created.
func ValidateSecretSpec(spec *SecretSpec) error {
	var v fieldErrors
	if spec == nil {
		v.add("spec", "required")
		return v.err()
	}
	v.name("spec.name", spec.Name)
	v.data("spec.data", len(spec.Data), MaxSecretSize)
	return v.err()
}

// ValidateConfigSpec checks a config before it is created.
func ValidateConfigSpec(spec *ConfigSpec) error {
	var v fieldErrors
	if spec == nil {
		v.add("spec", "required")
		return v.err()
	}
	v.name("spec.name", spec.Name)
	v.data("spec.data", len(spec.Data), MaxConfigSize)
	return v.err()
}

func (v *fieldErrors) data(field string, n, limit int) {
	switch {
	case n == 0:
		v.add(field, "must not be empty")
	case n > limit:
		v.add(field, "%d bytes; at most %d (%d KiB) are allowed", n, limit, limit>>10)
	}
}

// --------------------------------------------------------------- networks

// Bounds on a network's size. The allocator keeps one bit per address, so
// the upper bound keeps a pool at 2 MiB; the lower one leaves room for the
// network address, a gateway and at least one task.
const (
	MinNetworkHostBits = 2
	MaxNetworkHostBits = 24
)

// ValidateNetworkSpec checks a network before it is created. An empty
// subnet is valid: the control API picks one.
func ValidateNetworkSpec(spec *NetworkSpec) error {
	var v fieldErrors
	if spec == nil {
		v.add("spec", "required")
		return v.err()
	}
	v.name("spec.name", spec.Name)
	if d := spec.Driver; d != "" {
		if why := ValidateName(d); why != "" {
			v.add("spec.driver", "%s", why)
		}
	}
	if spec.Subnet != "" {
		if _, why := ParseSubnet(spec.Subnet); why != "" {
			v.add("spec.subnet", "%s", why)
		}
	}
	return v.err()
}

// ParseSubnet parses a network's subnet in CIDR notation and checks that it
// is a network address (no host bits set) of a size the allocator
// accepts. It returns the prefix, or the reason it is refused.
func ParseSubnet(s string) (netip.Prefix, string) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Sprintf("%q is not in CIDR notation (e.g. 10.0.1.0/24)", s)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Sprintf("%q has host bits set; did you mean %s?", s, m)
	}
	host := p.Addr().BitLen() - p.Bits()
	if host < MinNetworkHostBits || host > MaxNetworkHostBits {
		return netip.Prefix{}, fmt.Sprintf("%q leaves %d host bits; between %d and %d are allowed (e.g. /%d to /%d for IPv4)",
			s, host, MinNetworkHostBits, MaxNetworkHostBits, 32-MaxNetworkHostBits, 32-MinNetworkHostBits)
	}
	return p, ""
}

// ------------------------------------------------------------ constraints

// ErrMalformedConstraint is wrapped by every ParseConstraint failure.
var ErrMalformedConstraint = errors.New("malformed constraint")

// ConstraintOp is a placement constraint's comparison.
type ConstraintOp uint8

const (
	OpEqual    ConstraintOp = iota + 1 // ==
	OpNotEqual                         // !=
)

func (op ConstraintOp) String() string {
	switch op {
	case OpEqual:
		return "=="
	case OpNotEqual:
		return "!="
	}
	return fmt.Sprintf("ConstraintOp(%d)", uint8(op))
}

// Constraint is one parsed placement constraint, such as
// node.labels.zone==a.
type Constraint struct {
	// Key is a node descriptor: node.id, node.hostname, node.role,
	// node.labels.<name> or engine.labels.<name>.
	Key   string
	Op    ConstraintOp
	Value string
}

// String is the constraint in the form ParseConstraint reads.
func (c Constraint) String() string { return c.Key + c.Op.String() + c.Value }

// ConstraintError says why a constraint does not parse.
type ConstraintError struct {
	Constraint string
	Reason     string
}

func (e *ConstraintError) Error() string {
	return fmt.Sprintf("malformed constraint %q: %s", e.Constraint, e.Reason)
}

func (e *ConstraintError) Unwrap() error { return ErrMalformedConstraint }

// Node descriptor keys.
const (
	keyNodeID       = "node.id"
	keyNodeHostname = "node.hostname"
	keyNodeRole     = "node.role"
	keyNodeLabels   = "node.labels."
	keyEngineLabels = "engine.labels."
)

// ParseConstraint parses a placement constraint "KEY==VALUE" or
// "KEY!=VALUE"; spaces around the operator are allowed, and the key's
// fixed part is case-insensitive (Key comes back in lower case). It is the
// parser validation uses; it accepts nothing engine/scheduler's placement
// parser refuses (FuzzParseConstraint checks it), so no service is
// admitted that the scheduler could never place.
func ParseConstraint(s string) (Constraint, error) {
	fail := func(format string, args ...any) (Constraint, error) {
		return Constraint{}, &ConstraintError{Constraint: s, Reason: fmt.Sprintf(format, args...)}
	}
	eq, ne := strings.Index(s, "=="), strings.Index(s, "!=")
	var c Constraint
	var at int
	switch {
	case eq < 0 && ne < 0:
		return fail("expected == or !=")
	case ne < 0 || eq >= 0 && eq < ne:
		c.Op, at = OpEqual, eq
	default:
		c.Op, at = OpNotEqual, ne
	}
	c.Key = strings.TrimSpace(s[:at])
	c.Value = strings.TrimSpace(s[at+2:])
	if c.Key == "" {
		return fail("missing key before %s", c.Op)
	}
	key, why := normalizeKey(c.Key)
	if why != "" {
		return fail("%s", why)
	}
	c.Key = key
	switch {
	case c.Value == "":
		return fail("missing value after %s", c.Op)
	case strings.ContainsAny(c.Value, "=!"):
		return fail("value %q contains '=' or '!': only one operator is allowed", c.Value)
	case strings.IndexFunc(c.Value, unicode.IsControl) >= 0:
		return fail("value %q must not contain control characters", c.Value)
	case c.Key == keyNodeRole && !strings.EqualFold(c.Value, "manager") && !strings.EqualFold(c.Value, "worker"):
		return fail("role %q is neither manager nor worker", c.Value)
	}
	return c, nil
}

// ParseConstraints parses every constraint of a placement.
func ParseConstraints(ss []string) ([]Constraint, error) {
	out := make([]Constraint, 0, len(ss))
	for _, s := range ss {
		c, err := ParseConstraint(s)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// checkConstraintKey returns why key is not a node descriptor, or "".
func checkConstraintKey(key string) string {
	_, why := normalizeKey(key)
	return why
}

// normalizeKey checks a node descriptor and returns it with its fixed part
// in lower case: the keys and label prefixes are case-insensitive, as in
// Docker (and engine/scheduler); label names are not.
func normalizeKey(key string) (string, string) {
	lower := strings.ToLower(key)
	switch lower {
	case keyNodeID, keyNodeHostname, keyNodeRole:
		return lower, ""
	}
	for _, prefix := range []string{keyNodeLabels, keyEngineLabels} {
		if !strings.HasPrefix(lower, prefix) {
			continue
		}
		name := key[len(prefix):]
		if name == "" {
			return "", fmt.Sprintf("key %q names no label", key)
		}
		for _, r := range name {
			if !(r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) || strings.ContainsRune("._-/", r)) {
				return "", fmt.Sprintf("label name %q may contain only letters, digits, '.', '_', '-' and '/'", name)
			}
		}
		return prefix + name, ""
	}
	return "", fmt.Sprintf("unknown key %q: expected node.id, node.hostname, node.role, node.labels.<name> or engine.labels.<name>", key)
}

// NodeValue returns the value of a node descriptor (a constraint key or a
// spread preference) on n, and whether n has it. node.role is the node's
// current role, "worker" or "manager".
func NodeValue(n *Node, key string) (string, bool) {
	switch key {
	case keyNodeID:
		return n.GetId(), true
	case keyNodeHostname:
		return n.GetDescription().GetHostname(), true
	case keyNodeRole:
		if n.GetRole() == NodeRole_NODE_ROLE_MANAGER {
			return "manager", true
		}
		return "worker", true
	}
	if name, ok := strings.CutPrefix(key, keyNodeLabels); ok {
		v, ok := n.GetSpec().GetLabels()[name]
		return v, ok
	}
	if name, ok := strings.CutPrefix(key, keyEngineLabels); ok {
		v, ok := n.GetDescription().GetEngineLabels()[name]
		return v, ok
	}
	return "", false
}

// Matches reports whether node n satisfies c. Values compare without
// regard to case, as SwarmKit's do. A node without the label satisfies
// every != constraint on it and no == one.
func (c Constraint) Matches(n *Node) bool {
	v, ok := NodeValue(n, c.Key)
	eq := ok && strings.EqualFold(v, c.Value)
	if c.Op == OpNotEqual {
		return !eq
	}
	return eq
}

// MatchesAll reports whether n satisfies every constraint.
func MatchesAll(cs []Constraint, n *Node) bool {
	for _, c := range cs {
		if !c.Matches(n) {
			return false
		}
	}
	return true
}
