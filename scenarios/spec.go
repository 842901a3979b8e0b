// Package scenarios reads scenario files (docs/scenario-format.md), runs them
// against a simulated or real cluster, and checks their expectations and
// invariants.
//
// Parse turns a file into a Scenario: fully typed, defaults filled in and
// recorded, every name cross-checked. A Scenario is plain data; nothing in
// parsing touches a cluster, a clock or the file system (ParseFile aside).
package scenarios

import (
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Scenario is one parsed, validated scenario file with every default filled in.
type Scenario struct {
	File     string // the file name given to Parse, used in messages
	Name     string // [a-z0-9-]+
	About    string
	Seed     uint64        // DefaultSeed when the file gives none; --seed overrides
	Duration time.Duration // virtual time the run may last at most

	Cluster  Cluster
	Network  LinkModel // the model of every link no link step changed
	Executor Executor
	Clients  *Clients // nil: no client load

	Secrets  []Secret  // created before the services, in file order
	Configs  []Config  // created before the services, in file order
	Services []Service // created before the steps run, in file order
	Steps    []Step
	Check    []Invariant // the invariants checked all through the run

	// Defaults lists every default the file relied on, as "key=value" in a
	// stable order (e.g. "cluster.raft.tick=1s"); service defaults are
	// grouped: "services.update.monitor=5s (web, nightly)". A run's summary
	// prints them.
	Defaults []string
}

// Defaults the format page names, and the ones it leaves to us.
const (
	DefaultSeed           = 1
	DefaultDuration       = 10 * time.Minute // virtual time; no SwarmKit counterpart
	DefaultManagers       = 1                // `docker swarm init` makes one
	DefaultRaftTick       = time.Second
	DefaultElectionTicks  = 10
	DefaultHeartbeatTicks = 1
	DefaultSnapshotEvery  = 10000
	DefaultHeartbeat      = 5 * time.Second
	DefaultDownAfter      = 3 // missed heartbeat periods before a node is down
	DefaultCertExpiry     = 90 * 24 * time.Hour
	DefaultTaskHistory    = 5
	DefaultLatency        = time.Millisecond
	DefaultDiskSync       = time.Millisecond
	DefaultExecutorStart  = time.Second
	DefaultNanoCPUs       = 4e9     // a worker's (and a manager's) CPUs
	DefaultMemoryBytes    = 8 << 30 // a worker's (and a manager's) memory
	DefaultClientKeys     = 10
	DefaultUpdateMonitor  = 5 * time.Second
	DefaultRestartDelay   = 5 * time.Second
	DefaultHealthInterval = 30 * time.Second // Docker's, when health is given at all
	DefaultHealthTimeout  = 30 * time.Second
	DefaultHealthRetries  = 3
	MaxManagers           = 1000
	MaxWorkers            = 100000
	maxServiceNameLen     = 63 // a DNS label, as SwarmKit requires
)

// Range is a duration drawn uniformly from [Min, Max]; fixed when Min == Max.
// It has sim.Range's layout, so sim.Range(r) converts it.
type Range struct{ Min, Max time.Duration }

// Fixed is the Range that always gives d.
func Fixed(d time.Duration) Range { return Range{d, d} }

// IsFixed reports whether the range always gives one value.
func (r Range) IsFixed() bool { return r.Min == r.Max }

// String is the range as the file writes it: "2ms" or "1ms..5ms".
func (r Range) String() string {
	if r.IsFixed() {
		return FormatDuration(r.Min)
	}
	return FormatDuration(r.Min) + ".." + FormatDuration(r.Max)
}

// Cluster is the cluster a run starts with.
type Cluster struct {
	Managers    int           // named m1..mN
	Workers     []WorkerGroup // named w1..wM across the groups, in order
	Raft        Raft
	Dispatcher  Dispatcher
	Disk        Disk
	CA          CA
	Autolock    bool
	TaskHistory int // tasks kept per slot (SwarmKit's task history retention)
}

// WorkerGroup is Count workers of one shape.
type WorkerGroup struct {
	Count     int
	Resources Resources
	Labels    map[string]string // node labels; iterate in sorted key order
	Line      int
}

// Raft is the consensus timing of every manager.
type Raft struct {
	Tick           time.Duration
	ElectionTicks  int
	HeartbeatTicks int
	SnapshotEvery  uint64 // log entries between snapshots
}

// Dispatcher is how the leader tracks workers.
type Dispatcher struct {
	Heartbeat time.Duration
	DownAfter int // missed heartbeat periods before a node is down
}

// Disk is every node's disk model.
type Disk struct {
	Sync Range // time one fsync takes
}

// CA is the cluster's certificate authority settings.
type CA struct {
	CertExpiry time.Duration // node certificate lifetime
}

// Resources are a node's capacity, or a task's reservation (which real mode
// also applies as the container's limit). Zero means none for a task.
type Resources struct {
	NanoCPUs    int64 // 1e9 is one CPU, as in SwarmKit
	MemoryBytes int64
}

// CPUs is NanoCPUs in CPUs.
func (r Resources) CPUs() float64 { return float64(r.NanoCPUs) / 1e9 }

// String is "cpus=4 memory=8GiB".
func (r Resources) String() string {
	return "cpus=" + strconv.FormatFloat(r.CPUs(), 'f', -1, 64) + " memory=" + FormatBytes(r.MemoryBytes)
}

// NodeShape is one node of the starting cluster, or one a step adds.
type NodeShape struct {
	Name      string
	Manager   bool
	Resources Resources
	Labels    map[string]string
}

// ManagerName is the name of the i-th manager (1-based): "m3".
func ManagerName(i int) string { return "m" + strconv.Itoa(i) }

// WorkerName is the name of the i-th worker (1-based, across groups): "w17".
func WorkerName(i int) string { return "w" + strconv.Itoa(i) }

// InitialNodes lists the nodes a run starts with: managers m1..mN, then
// workers w1..wM group by group. Managers have the default shape.
func (c *Cluster) InitialNodes() []NodeShape {
	var out []NodeShape
	for i := 1; i <= c.Managers; i++ {
		out = append(out, NodeShape{
			Name:      ManagerName(i),
			Manager:   true,
			Resources: Resources{DefaultNanoCPUs, DefaultMemoryBytes},
		})
	}
	w := 0
	for _, g := range c.Workers {
		for range g.Count {
			w++
			out = append(out, NodeShape{Name: WorkerName(w), Resources: g.Resources, Labels: maps.Clone(g.Labels)})
		}
	}
	return out
}

// WorkerCount is the number of workers across the groups.
func (c *Cluster) WorkerCount() int {
	n := 0
	for _, g := range c.Workers {
		n += g.Count
	}
	return n
}

// LinkModel is how one direction of a link treats messages.
type LinkModel struct {
	Latency   Range
	Loss      float64 // chance a message is lost, in [0, 1]
	Duplicate float64 // chance a message is delivered twice, in [0, 1]
	Reorder   bool    // messages may overtake each other; otherwise FIFO
}

// String is "latency=1ms..5ms loss=0.1% duplicate=0% reorder=true".
func (m LinkModel) String() string {
	return "latency=" + m.Latency.String() + " loss=" + FormatPercent(m.Loss) +
		" duplicate=" + FormatPercent(m.Duplicate) + " reorder=" + strconv.FormatBool(m.Reorder)
}

// Executor is the fake container runtime of the simulator.
type Executor struct {
	Start           Range   // from start to running
	Fail            float64 // chance a start fails, in [0, 1]
	FailImages      []string
	UnhealthyImages []string
	Exits           []Exit
}

// Exit makes containers of Image exit on their own after a while.
type Exit struct {
	Image string
	After Range
	Code  int // 0..255
}

// Clients is load on the control API, recorded for the linearizability check.
type Clients struct {
	Count int
	Rate  Rate // all clients together
	Keys  int  // size of the key space
}

// Rate is Ops operations every Per: "50/s" is {50, time.Second}.
type Rate struct {
	Ops int64
	Per time.Duration
}

// Interval is the mean time between two operations.
func (r Rate) Interval() time.Duration { return r.Per / time.Duration(r.Ops) }

// String is the rate as a file writes it: "50/s", "3/100ms".
func (r Rate) String() string {
	per := FormatDuration(r.Per)
	switch per {
	case "1s", "1m", "1h", "1ms", "1us", "1ns":
		per = per[1:]
	}
	return strconv.FormatInt(r.Ops, 10) + "/" + per
}

// Secret is a secret the scenario creates: under `secrets:` or in a step.
type Secret struct {
	Name string
	Data string
}

// Config is a config the scenario creates: under `configs:` or in a step.
type Config struct {
	Name string
	Data string
}

// Mode is how a service places its tasks.
type Mode string

// The service modes.
const (
	Replicated    Mode = "replicated"
	Global        Mode = "global"
	ReplicatedJob Mode = "replicated-job"
	GlobalJob     Mode = "global-job"
)

// IsJob reports whether tasks of the mode run to completion.
func (m Mode) IsJob() bool { return m == ReplicatedJob || m == GlobalJob }

// Service is a service spec, under `services:` or in a create step, with
// defaults filled in.
type Service struct {
	Name  string
	Image string
	Mode  Mode

	Replicas      int // Replicated only
	Completions   int // ReplicatedJob only: successful completions wanted
	MaxConcurrent int // ReplicatedJob only

	Resources   Resources
	Constraints []Constraint
	Spread      []string // placement preferences, e.g. "node.labels.zone"
	MaxPerNode  int      // 0: no limit

	Health   *Health // nil: no health check
	Restart  RestartPolicy
	Update   UpdatePolicy // not for jobs
	Rollback UpdatePolicy // not for jobs

	Secrets []string
	Configs []string

	Line int
}

// Constraint is a placement constraint: Key Op Value.
type Constraint struct {
	Key   string // node.id, node.hostname, node.role, node.labels.X, engine.labels.X
	Op    string // "==" or "!="
	Value string
}

// String is SwarmKit's syntax, "node.labels.zone==a".
func (c Constraint) String() string { return c.Key + c.Op + c.Value }

// Health is a container health check.
type Health struct {
	Interval    time.Duration
	Timeout     time.Duration
	Retries     int
	StartPeriod time.Duration
}

// RestartCondition says when a task's container is restarted.
type RestartCondition string

// The restart conditions.
const (
	RestartNone      RestartCondition = "none"
	RestartOnFailure RestartCondition = "on-failure"
	RestartAny       RestartCondition = "any"
)

// RestartPolicy is a service's restart policy.
type RestartPolicy struct {
	Condition   RestartCondition
	Delay       time.Duration
	MaxAttempts int           // 0: no limit
	Window      time.Duration // 0: unbounded
}

// FailureAction is what an update does when too many tasks fail.
type FailureAction string

// The failure actions.
const (
	FailurePause    FailureAction = "pause"
	FailureContinue FailureAction = "continue"
	FailureRollback FailureAction = "rollback" // updates only
)

// UpdateOrder says whether a task's replacement starts before it stops.
type UpdateOrder string

// The update orders.
const (
	StopFirst  UpdateOrder = "stop-first"
	StartFirst UpdateOrder = "start-first"
)

// UpdatePolicy is a service's update (or rollback) policy.
type UpdatePolicy struct {
	Parallelism     int // 0: all at once
	Delay           time.Duration
	FailureAction   FailureAction
	Monitor         time.Duration
	MaxFailureRatio float64 // in [0, 1]
	Order           UpdateOrder
}

// Invariant is a property checked all through a run.
type Invariant string

// The invariants.
const (
	OneLeaderPerTerm        Invariant = "one-leader-per-term"
	CommittedStaysCommitted Invariant = "committed-stays-committed"
	Linearizable            Invariant = "linearizable"
	TaskOnOneNode           Invariant = "task-on-one-node"
	ReplicasBounded         Invariant = "replicas-bounded"
)

// AllInvariants is every invariant, the default of `check`.
func AllInvariants() []Invariant {
	return []Invariant{OneLeaderPerTerm, CommittedStaysCommitted, Linearizable, TaskOnOneNode, ReplicasBounded}
}

// Step is one entry of `steps`.
type Step struct {
	Index  int           // position in steps, from 0 (as in error paths: steps[2])
	Line   int           // line of the step in the file
	At     time.Duration // virtual time from the start, when HasAt
	HasAt  bool          // false: the step starts when the one before it finished
	Action Action
}

// String describes the step for output lines: "crash leader",
// "expect leader=elected within 10s". It leaves out `at`.
func (s Step) String() string {
	if s.Action == nil {
		return "(no action)"
	}
	return s.Action.String()
}

// Action is what a step does: one of the types below, one per step key.
type Action interface {
	// Kind is the step's key in the file: "crash", "add_worker".
	Kind() string
	// String describes the action: "crash leader".
	String() string
	action()
}

// Node steps. Target selects the nodes.
type (
	Crash    struct{ Target Selector } // stops at once; the disk keeps what was synced
	Restart  struct{ Target Selector } // a crashed node starts from its disk
	Stop     struct{ Target Selector } // clean shutdown
	Start    struct{ Target Selector } // start after a clean shutdown
	Isolate  struct{ Target Selector } // cut from everyone
	Promote  struct{ Target Selector } // worker to manager
	Demote   struct{ Target Selector } // manager to worker
	Drain    struct{ Target Selector }
	Pause    struct{ Target Selector }
	Activate struct{ Target Selector }
	// RemoveManager is a raft membership change taking Target out.
	RemoveManager struct{ Target Selector }
	// RemoveWorker makes Target leave the cluster.
	RemoveWorker struct{ Target Selector }
	// Compromise: an attacker with Target's certificate and keys calls every
	// manager-only method and asks for other nodes' tasks, secrets and
	// configs; the run fails if anything succeeds. Target is one node.
	Compromise struct{ Target Selector }
	// Unlock gives locked manager Target the current unlock key.
	Unlock struct{ Target Selector }
)

// Partition cuts every link between two different groups. No node is in two
// groups; nodes in no group keep their links.
type Partition struct{ Groups [][]Selector }

// Heal restores every cut link (`heal: all`).
type Heal struct{}

// Link sets the model of the links From→To (one direction). Model is
// complete: keys the step leaves out come from the scenario's network.
type Link struct {
	From, To Selector
	Model    LinkModel
}

// AddManager joins a new manager Name with the manager token.
type AddManager struct{ Name string }

// AddWorker joins a new worker Name with the worker token. Its shape is the
// step's, else that of the last worker group, else the default.
type AddWorker struct {
	Name      string
	Resources Resources
	Labels    map[string]string
}

// Create creates a service.
type Create struct{ Service Service }

// Remove removes a service.
type Remove struct{ Service string }

// Scale sets a replicated service's replicas.
type Scale struct {
	Service  string
	Replicas int
}

// Update changes a service's spec: a rolling update under its update policy.
// Only the keys in Set change; Spec holds their new values (its other fields
// are zero). Set holds key paths as the file writes them, in file order:
// "image", "replicas", "resources.cpus", "update.parallelism", "constraints".
type Update struct {
	Service string
	Set     []string
	Spec    Service
}

// Rollback rolls a service back to its previous spec.
type Rollback struct{ Service string }

// FailTasks makes Count running containers of Service exit with an error.
type FailTasks struct {
	Service string
	Count   int
}

// ClockSkew makes Node's clock run By ahead (behind, when negative).
type ClockSkew struct {
	Node Selector
	By   time.Duration
}

// Expect waits until every condition holds, for at most Within; the run
// fails there otherwise.
type Expect struct {
	Conditions []Condition // in file order; all must hold
	Within     time.Duration
}

// RotateJoinToken rotates the join token of Role; the old one stops working.
type RotateJoinToken struct{ Role string } // "worker" or "manager"

// JoinWithOldToken: a new worker Name tries to join with a rotated token;
// the run fails if it gets in.
type JoinWithOldToken struct{ Name string }

// RotateRootCA starts a root rotation; it finishes when every node holds a
// certificate from the new root.
type RotateRootCA struct{}

// Autolock turns autolock on or off.
type Autolock struct{ On bool }

// RotateUnlockKey rotates the unlock key of an autolocked cluster.
type RotateUnlockKey struct{}

func (Crash) Kind() string            { return "crash" }
func (Restart) Kind() string          { return "restart" }
func (Stop) Kind() string             { return "stop" }
func (Start) Kind() string            { return "start" }
func (Partition) Kind() string        { return "partition" }
func (Isolate) Kind() string          { return "isolate" }
func (Heal) Kind() string             { return "heal" }
func (Link) Kind() string             { return "link" }
func (AddManager) Kind() string       { return "add_manager" }
func (RemoveManager) Kind() string    { return "remove_manager" }
func (AddWorker) Kind() string        { return "add_worker" }
func (RemoveWorker) Kind() string     { return "remove_worker" }
func (Promote) Kind() string          { return "promote" }
func (Demote) Kind() string           { return "demote" }
func (Drain) Kind() string            { return "drain" }
func (Pause) Kind() string            { return "pause" }
func (Activate) Kind() string         { return "activate" }
func (Create) Kind() string           { return "create" }
func (Remove) Kind() string           { return "remove" }
func (Scale) Kind() string            { return "scale" }
func (Update) Kind() string           { return "update" }
func (Rollback) Kind() string         { return "rollback" }
func (FailTasks) Kind() string        { return "fail_tasks" }
func (ClockSkew) Kind() string        { return "clock_skew" }
func (Expect) Kind() string           { return "expect" }
func (Secret) Kind() string           { return "secret" }
func (Config) Kind() string           { return "config" }
func (Compromise) Kind() string       { return "compromise" }
func (RotateJoinToken) Kind() string  { return "rotate_join_token" }
func (JoinWithOldToken) Kind() string { return "join_with_old_token" }
func (RotateRootCA) Kind() string     { return "rotate_root_ca" }
func (Autolock) Kind() string         { return "autolock" }
func (RotateUnlockKey) Kind() string  { return "rotate_unlock_key" }
func (Unlock) Kind() string           { return "unlock" }

func (a Crash) String() string         { return "crash " + a.Target.String() }
func (a Restart) String() string       { return "restart " + a.Target.String() }
func (a Stop) String() string          { return "stop " + a.Target.String() }
func (a Start) String() string         { return "start " + a.Target.String() }
func (a Isolate) String() string       { return "isolate " + a.Target.String() }
func (Heal) String() string            { return "heal all" }
func (a AddManager) String() string    { return "add_manager " + a.Name }
func (a RemoveManager) String() string { return "remove_manager " + a.Target.String() }
func (a RemoveWorker) String() string  { return "remove_worker " + a.Target.String() }
func (a Promote) String() string       { return "promote " + a.Target.String() }
func (a Demote) String() string        { return "demote " + a.Target.String() }
func (a Drain) String() string         { return "drain " + a.Target.String() }
func (a Pause) String() string         { return "pause " + a.Target.String() }
func (a Activate) String() string      { return "activate " + a.Target.String() }
func (a Create) String() string        { return "create " + a.Service.Name + " image=" + a.Service.Image }
func (a Remove) String() string        { return "remove " + a.Service }
func (a Rollback) String() string      { return "rollback " + a.Service }
func (a Secret) String() string        { return "secret " + a.Name }
func (a Config) String() string        { return "config " + a.Name }
func (a Compromise) String() string    { return "compromise " + a.Target.String() }
func (a RotateJoinToken) String() string {
	return "rotate_join_token " + a.Role
}
func (a JoinWithOldToken) String() string { return "join_with_old_token " + a.Name }
func (RotateRootCA) String() string       { return "rotate_root_ca" }
func (RotateUnlockKey) String() string    { return "rotate_unlock_key" }
func (a Unlock) String() string           { return "unlock " + a.Target.String() }

func (a Autolock) String() string {
	if a.On {
		return "autolock on"
	}
	return "autolock off"
}

func (a Partition) String() string {
	var b strings.Builder
	b.WriteString("partition ")
	for i, g := range a.Groups {
		if i > 0 {
			b.WriteString(" | ")
		}
		for j, s := range g {
			if j > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(s.String())
		}
	}
	return b.String()
}

func (a Link) String() string {
	return "link " + a.From.String() + "->" + a.To.String() + " " + a.Model.String()
}

func (a AddWorker) String() string {
	s := "add_worker " + a.Name + " " + a.Resources.String()
	if l := formatLabels(a.Labels); l != "" {
		s += " " + l
	}
	return s
}

func (a Scale) String() string {
	return "scale " + a.Service + " replicas=" + strconv.Itoa(a.Replicas)
}

func (a Update) String() string {
	var b strings.Builder
	b.WriteString("update ")
	b.WriteString(a.Service)
	for _, k := range a.Set {
		b.WriteByte(' ')
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(a.Spec.field(k))
	}
	return b.String()
}

func (a FailTasks) String() string {
	return "fail_tasks " + a.Service + " count=" + strconv.Itoa(a.Count)
}

func (a ClockSkew) String() string {
	return "clock_skew " + a.Node.String() + " by=" + FormatDuration(a.By)
}

func (a Expect) String() string {
	var b strings.Builder
	b.WriteString("expect ")
	for i, c := range a.Conditions {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c.String())
	}
	b.WriteString(" within ")
	b.WriteString(FormatDuration(a.Within))
	return b.String()
}

func (Crash) action()            {}
func (Restart) action()          {}
func (Stop) action()             {}
func (Start) action()            {}
func (Partition) action()        {}
func (Isolate) action()          {}
func (Heal) action()             {}
func (Link) action()             {}
func (AddManager) action()       {}
func (RemoveManager) action()    {}
func (AddWorker) action()        {}
func (RemoveWorker) action()     {}
func (Promote) action()          {}
func (Demote) action()           {}
func (Drain) action()            {}
func (Pause) action()            {}
func (Activate) action()         {}
func (Create) action()           {}
func (Remove) action()           {}
func (Scale) action()            {}
func (Update) action()           {}
func (Rollback) action()         {}
func (FailTasks) action()        {}
func (ClockSkew) action()        {}
func (Expect) action()           {}
func (Secret) action()           {}
func (Config) action()           {}
func (Compromise) action()       {}
func (RotateJoinToken) action()  {}
func (JoinWithOldToken) action() {}
func (RotateRootCA) action()     {}
func (Autolock) action()         {}
func (RotateUnlockKey) action()  {}
func (Unlock) action()           {}

// Apply sets the keys the update changes on s, a service's current spec.
func (a Update) Apply(s *Service) {
	for _, k := range a.Set {
		s.set(k, &a.Spec)
	}
}

// updatable lists the keys an update step may change, as Update.Set writes
// them. Lists are replaced whole; policies key by key.
var updatable = []string{
	"image", "replicas", "completions", "max_concurrent",
	"resources.cpus", "resources.memory",
	"constraints", "spread", "max_per_node",
	"health.interval", "health.timeout", "health.retries", "health.start_period",
	"restart.condition", "restart.delay", "restart.max_attempts", "restart.window",
	"update.parallelism", "update.delay", "update.failure_action", "update.monitor",
	"update.max_failure_ratio", "update.order",
	"rollback.parallelism", "rollback.delay", "rollback.failure_action", "rollback.monitor",
	"rollback.max_failure_ratio", "rollback.order",
	"secrets", "configs",
}

// set copies key k from src to s.
func (s *Service) set(k string, src *Service) {
	if strings.HasPrefix(k, "health.") {
		if s.Health == nil {
			h := defaultHealth()
			s.Health = &h
		}
		if src.Health == nil {
			return
		}
	}
	switch k {
	case "image":
		s.Image = src.Image
	case "replicas":
		s.Replicas = src.Replicas
	case "completions":
		s.Completions = src.Completions
	case "max_concurrent":
		s.MaxConcurrent = src.MaxConcurrent
	case "resources.cpus":
		s.Resources.NanoCPUs = src.Resources.NanoCPUs
	case "resources.memory":
		s.Resources.MemoryBytes = src.Resources.MemoryBytes
	case "constraints":
		s.Constraints = append([]Constraint(nil), src.Constraints...)
	case "spread":
		s.Spread = append([]string(nil), src.Spread...)
	case "max_per_node":
		s.MaxPerNode = src.MaxPerNode
	case "health.interval":
		s.Health.Interval = src.Health.Interval
	case "health.timeout":
		s.Health.Timeout = src.Health.Timeout
	case "health.retries":
		s.Health.Retries = src.Health.Retries
	case "health.start_period":
		s.Health.StartPeriod = src.Health.StartPeriod
	case "restart.condition":
		s.Restart.Condition = src.Restart.Condition
	case "restart.delay":
		s.Restart.Delay = src.Restart.Delay
	case "restart.max_attempts":
		s.Restart.MaxAttempts = src.Restart.MaxAttempts
	case "restart.window":
		s.Restart.Window = src.Restart.Window
	case "secrets":
		s.Secrets = append([]string(nil), src.Secrets...)
	case "configs":
		s.Configs = append([]string(nil), src.Configs...)
	default:
		if p, ok := strings.CutPrefix(k, "update."); ok {
			s.Update.set(p, &src.Update)
		} else if p, ok := strings.CutPrefix(k, "rollback."); ok {
			s.Rollback.set(p, &src.Rollback)
		}
	}
}

func (u *UpdatePolicy) set(k string, src *UpdatePolicy) {
	switch k {
	case "parallelism":
		u.Parallelism = src.Parallelism
	case "delay":
		u.Delay = src.Delay
	case "failure_action":
		u.FailureAction = src.FailureAction
	case "monitor":
		u.Monitor = src.Monitor
	case "max_failure_ratio":
		u.MaxFailureRatio = src.MaxFailureRatio
	case "order":
		u.Order = src.Order
	}
}

// field formats key k of s for messages.
func (s *Service) field(k string) string {
	h := s.Health
	if h == nil {
		h = &Health{}
	}
	switch k {
	case "image":
		return s.Image
	case "replicas":
		return strconv.Itoa(s.Replicas)
	case "completions":
		return strconv.Itoa(s.Completions)
	case "max_concurrent":
		return strconv.Itoa(s.MaxConcurrent)
	case "resources.cpus":
		return strconv.FormatFloat(s.Resources.CPUs(), 'f', -1, 64)
	case "resources.memory":
		return FormatBytes(s.Resources.MemoryBytes)
	case "constraints":
		var parts []string
		for _, c := range s.Constraints {
			parts = append(parts, c.String())
		}
		return "[" + strings.Join(parts, ",") + "]"
	case "spread":
		return "[" + strings.Join(s.Spread, ",") + "]"
	case "max_per_node":
		return strconv.Itoa(s.MaxPerNode)
	case "health.interval":
		return FormatDuration(h.Interval)
	case "health.timeout":
		return FormatDuration(h.Timeout)
	case "health.retries":
		return strconv.Itoa(h.Retries)
	case "health.start_period":
		return FormatDuration(h.StartPeriod)
	case "restart.condition":
		return string(s.Restart.Condition)
	case "restart.delay":
		return FormatDuration(s.Restart.Delay)
	case "restart.max_attempts":
		return strconv.Itoa(s.Restart.MaxAttempts)
	case "restart.window":
		return FormatDuration(s.Restart.Window)
	case "secrets":
		return "[" + strings.Join(s.Secrets, ",") + "]"
	case "configs":
		return "[" + strings.Join(s.Configs, ",") + "]"
	}
	if p, ok := strings.CutPrefix(k, "update."); ok {
		return s.Update.field(p)
	}
	if p, ok := strings.CutPrefix(k, "rollback."); ok {
		return s.Rollback.field(p)
	}
	return "?"
}

func (u *UpdatePolicy) field(k string) string {
	switch k {
	case "parallelism":
		return strconv.Itoa(u.Parallelism)
	case "delay":
		return FormatDuration(u.Delay)
	case "failure_action":
		return string(u.FailureAction)
	case "monitor":
		return FormatDuration(u.Monitor)
	case "max_failure_ratio":
		return FormatPercent(u.MaxFailureRatio)
	case "order":
		return string(u.Order)
	}
	return "?"
}

func defaultHealth() Health {
	return Health{Interval: DefaultHealthInterval, Timeout: DefaultHealthTimeout, Retries: DefaultHealthRetries}
}

// Condition is one condition of an expect step: one of the types below.
type Condition interface {
	// String describes the condition: "leader=elected", "web running=60".
	String() string
	condition()
}

// Leader holds when a leader is known to a quorum of managers; when Node is
// set, when that leader is Node (or, with Not, is not Node).
type Leader struct {
	Node string // "": any leader
	Not  bool
}

// Managers holds when the raft membership has N voters.
type Managers struct{ N int }

// NodesReady holds when N nodes are ready.
type NodesReady struct{ N int }

// Running holds when exactly N tasks of Service are running, counting only
// those of Image (when set) on nodes matching On (when set).
type Running struct {
	Service string
	N       int
	Image   string
	On      *Constraint
}

// Completed holds when N tasks of the job Service have completed
// successfully (of Image, on nodes matching On, when set).
type Completed struct {
	Service string
	N       int
	Image   string
	On      *Constraint
}

// NodeTasks holds when the node Node runs N tasks.
type NodeTasks struct {
	Node Selector // one node
	N    int
}

// Converged holds when every service has its desired running tasks.
type Converged struct{}

// RootRotated holds when every node's certificate is signed by the new root.
type RootRotated struct{}

// Locked holds when manager Node waits for its unlock key.
type Locked struct{ Node Selector }

// Unlocked holds when manager Node runs unlocked.
type Unlocked struct{ Node Selector }

func (c Leader) String() string {
	switch {
	case c.Node == "":
		return "leader=elected"
	case c.Not:
		return "leader!=" + c.Node
	}
	return "leader=" + c.Node
}
func (c Managers) String() string   { return "managers=" + strconv.Itoa(c.N) }
func (c NodesReady) String() string { return "nodes_ready=" + strconv.Itoa(c.N) }
func (c Running) String() string {
	return c.Service + " running=" + strconv.Itoa(c.N) + filterString(c.Image, c.On)
}
func (c Completed) String() string {
	return c.Service + " completed=" + strconv.Itoa(c.N) + filterString(c.Image, c.On)
}
func (c NodeTasks) String() string { return c.Node.String() + " tasks=" + strconv.Itoa(c.N) }
func (Converged) String() string   { return "converged" }
func (RootRotated) String() string { return "root_rotated" }
func (c Locked) String() string    { return "locked " + c.Node.String() }
func (c Unlocked) String() string  { return "unlocked " + c.Node.String() }

func filterString(image string, on *Constraint) string {
	s := ""
	if image != "" {
		s += " image=" + image
	}
	if on != nil {
		s += " on " + on.String()
	}
	return s
}

func (Leader) condition()      {}
func (Managers) condition()    {}
func (NodesReady) condition()  {}
func (Running) condition()     {}
func (Completed) condition()   {}
func (NodeTasks) condition()   {}
func (Converged) condition()   {}
func (RootRotated) condition() {}
func (Locked) condition()      {}
func (Unlocked) condition()    {}

// SelectorKind is the kind of a node selector.
type SelectorKind uint8

// The selector kinds.
const (
	SelectNode         SelectorKind = iota + 1 // one node by name: "m2"
	SelectPattern                              // names matching a pattern: "w1*" (* any run, ? one character)
	SelectLeader                               // the current raft leader
	SelectFollower                             // one manager that is not the leader, chosen by the seed
	SelectRandomWorker                         // one worker, chosen by the seed ("worker:random")
	SelectAll                                  // every node the step applies to
)

// Selector picks nodes when a step runs.
type Selector struct {
	Kind SelectorKind
	Name string // the node name (SelectNode) or the pattern (SelectPattern)
}

// String is the selector as the file writes it.
func (s Selector) String() string {
	switch s.Kind {
	case SelectNode, SelectPattern:
		return s.Name
	case SelectLeader:
		return "leader"
	case SelectFollower:
		return "follower"
	case SelectRandomWorker:
		return "worker:random"
	case SelectAll:
		return "all"
	}
	return "?"
}

// Single reports whether the selector picks at most one node.
func (s Selector) Single() bool { return s.Kind != SelectPattern && s.Kind != SelectAll }

// Match reports whether a node called name is selected by a name, pattern
// or `all` selector; it is false for the others, which depend on the
// cluster's state (see Resolve).
func (s Selector) Match(name string) bool {
	switch s.Kind {
	case SelectNode:
		return name == s.Name
	case SelectPattern:
		ok, _ := path.Match(s.Name, name)
		return ok
	case SelectAll:
		return true
	}
	return false
}

// Candidate is a node a selector may pick when a step runs.
type Candidate struct {
	Name    string
	Manager bool
}

// Chooser draws the seeded choices of follower and worker:random; sim.Rand
// and env.Rand are Choosers.
type Chooser interface{ Int63n(n int64) int64 }

// Resolve returns the names of the candidates s selects, in candidate order.
// cands are the nodes the step applies to (for restart: the crashed ones), in
// a stable order; leader is the current leader ("" when none). rnd is drawn
// from once for follower and worker:random, only when there is a choice to
// make, so a run's streams do not depend on empty choices.
func (s Selector) Resolve(cands []Candidate, leader string, rnd Chooser) []string {
	var out []string
	switch s.Kind {
	case SelectNode, SelectPattern, SelectAll:
		for _, c := range cands {
			if s.Match(c.Name) {
				out = append(out, c.Name)
			}
		}
	case SelectLeader:
		for _, c := range cands {
			if leader != "" && c.Name == leader {
				out = append(out, c.Name)
			}
		}
	case SelectFollower, SelectRandomWorker:
		var pool []string
		for _, c := range cands {
			if s.Kind == SelectFollower && c.Manager && c.Name != leader ||
				s.Kind == SelectRandomWorker && !c.Manager {
				pool = append(pool, c.Name)
			}
		}
		switch len(pool) {
		case 0:
		case 1:
			out = pool
		default:
			out = []string{pool[rnd.Int63n(int64(len(pool)))]}
		}
	}
	return out
}

// WithSeed is the scenario run with seed instead of the file's: a copy
// whose Seed says so and whose Defaults no longer claim the default seed.
func (sc *Scenario) WithSeed(seed uint64) *Scenario {
	c := *sc
	c.Seed = seed
	c.Defaults = slices.DeleteFunc(slices.Clone(sc.Defaults), func(d string) bool { return strings.HasPrefix(d, "seed=") })
	return &c
}

// Summary is a one-line description of the scenario for a run's header:
// "leader-failover: 3 managers, 40 workers, 2 services, 10 steps, seed 1, up to 5m".
func (sc *Scenario) Summary() string {
	return sc.Name + ": " + plural(sc.Cluster.Managers, "manager") + ", " +
		plural(sc.Cluster.WorkerCount(), "worker") + ", " +
		plural(len(sc.Services), "service") + ", " + plural(len(sc.Steps), "step") +
		", seed " + strconv.FormatUint(sc.Seed, 10) + ", up to " + FormatDuration(sc.Duration)
}

// Defaulted reports whether the file left key (as in Defaults, without the
// value: "network.latency") to its default. Real mode uses it to say which
// simulator-only settings a file asked for.
func (sc *Scenario) Defaulted(key string) bool {
	for _, d := range sc.Defaults {
		if strings.HasPrefix(d, key+"=") {
			return true
		}
	}
	return false
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// FormatDuration is d as a file would write it: "2m" rather than "2m0s".
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// FormatPercent is a fraction as a percentage: 0.001 is "0.1%".
func FormatPercent(f float64) string {
	return strconv.FormatFloat(f*100, 'g', 10, 64) + "%"
}

// FormatBytes is n in the largest binary unit that divides it: "8GiB", "1500B".
func FormatBytes(n int64) string {
	units := []struct {
		name string
		size int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}}
	for _, u := range units {
		if n != 0 && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}

func formatLabels(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k + "=" + labels[k])
	}
	return b.String()
}
