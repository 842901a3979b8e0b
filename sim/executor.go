package sim

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/swarmsim/swarmsim/engine/env"
)

// ExecutorConfig is how a node's fake container runtime behaves. The first
// five fields mirror the scenario's `executor` keys; the rest are knobs the
// scenario format does not expose, with small defaults.
type ExecutorConfig struct {
	// Start is the time from Start to running. Zero starts at once; the
	// scenario's default (1s) is the scenario's to supply.
	Start Range
	// Fail is the chance, in [0, 1], that a start fails (ContainerFailed
	// after the start time).
	Fail float64
	// FailImages run, then exit with code 1 right after starting.
	FailImages []string
	// UnhealthyImages start, then fail every health check: the container
	// turns unhealthy after start_period + retries × interval.
	UnhealthyImages []string
	// Exits make containers of an image exit on their own.
	Exits []ExecutorExit

	// MissingImages cannot be found: Prepare fails (the agent reports
	// REJECTED).
	MissingImages []string
	// Prepare is the time Prepare takes (pulling and creating). Zero: at once.
	Prepare Range
	// StopTime is how long a container takes to exit once asked to stop;
	// when it exceeds the grace, the container is killed at the grace
	// (exit code 137). Zero: DefaultExecutorStopTime.
	StopTime time.Duration
	// RemoveTime is how long removing a container takes. Zero:
	// DefaultExecutorRemoveTime.
	RemoveTime time.Duration

	// OnChange, when set, hears every container that starts running
	// (running = true) or stops running, for whatever reason: exit, stop,
	// kill, removal, crash. The simulator's checkers see every task that
	// runs anywhere through it (task-on-one-node).
	OnChange func(node env.NodeID, taskID string, running bool)
}

// ExecutorExit makes containers of Image exit with Code After they start.
type ExecutorExit struct {
	Image string
	After Range
	Code  int
}

// Defaults of the knobs the scenario format does not set.
const (
	DefaultExecutorStopTime   = 100 * time.Millisecond
	DefaultExecutorRemoveTime = 10 * time.Millisecond
	// Docker's health check defaults, used for unhealthy images whose task
	// sets no health check.
	defaultHealthInterval = 30 * time.Second
	defaultHealthRetries  = 3
	exitKilled            = 137 // SIGKILL after the grace
)

// Executor is the simulator's container runtime for one node, an
// env.Executor. Every result is an event on the node's loop (sim.KindExec,
// the task's hash as trace argument), so a crash of the node drops the
// events it had pending, and its draws come from the node's own "executor"
// stream, so one node's containers do not shift another's timing.
//
// Containers live as long as the machine: Crash (called by the cluster when
// the node crashes or stops) loses them all, and a restarted node's List
// reports nothing. A clean stop is treated as a crash here: a machine that
// powers off takes its containers with it, and the agent that starts again
// reports the tasks it had as lost (FAILED) or, when they are to stop
// anyway, SHUTDOWN. An agent that restarts on a live node (the same
// Executor) finds its containers in List and adopts them.
type Executor struct {
	node *Node
	id   env.NodeID
	cfg  ExecutorConfig
	rand *Rand

	handler    func(env.ContainerEvent)
	containers map[string]*fakeContainer

	failImages, unhealthyImages, missingImages map[string]bool
	exits                                      map[string]ExecutorExit

	usedNanoCPUs, usedMemoryBytes int64
	running                       int

	// Counters for metrics and tests.
	Stats ExecutorStats
}

// ExecutorStats counts what an Executor did.
type ExecutorStats struct {
	Prepared, PrepareFailed, Started, StartFailed uint64
	Exited, Stopped, Killed, Unhealthy, Removed   uint64
	Lost                                          uint64 // running when the machine crashed
}

type fakeContainer struct {
	spec     env.ContainerSpec
	hash     uint64
	state    env.ContainerState // ContainerUnknown while Prepare runs
	starting bool               // Start called, not yet running or failed
	stopping bool
	removing bool
	exitCode int
	health   env.Health
	// timers are the container's pending events, cancelled when a stop or
	// removal makes them moot.
	timers []TimerID
}

// NewExecutor returns node n's container runtime; id is the node's
// env.NodeID (what OnChange reports).
func NewExecutor(n *Node, id env.NodeID, cfg ExecutorConfig) *Executor {
	if cfg.StopTime <= 0 {
		cfg.StopTime = DefaultExecutorStopTime
	}
	if cfg.RemoveTime <= 0 {
		cfg.RemoveTime = DefaultExecutorRemoveTime
	}
	e := &Executor{
		node:            n,
		id:              id,
		cfg:             cfg,
		rand:            n.Rand("executor"),
		containers:      make(map[string]*fakeContainer),
		failImages:      setOf(cfg.FailImages),
		unhealthyImages: setOf(cfg.UnhealthyImages),
		missingImages:   setOf(cfg.MissingImages),
		exits:           make(map[string]ExecutorExit, len(cfg.Exits)),
	}
	for _, x := range cfg.Exits {
		e.exits[x.Image] = x
	}
	return e
}

func setOf(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// SetEventHandler implements env.Executor. An agent that starts again on
// the node sets its own.
func (e *Executor) SetEventHandler(h func(env.ContainerEvent)) { e.handler = h }

// Prepare implements env.Executor. A Prepare for a container that exists
// adopts it and reports the state it is in.
func (e *Executor) Prepare(spec env.ContainerSpec) {
	if c := e.containers[spec.TaskID]; c != nil {
		if c.state != env.ContainerUnknown && !c.removing {
			e.after(c, 0, func() { e.emit(c, c.state, "") })
		}
		return // preparing or being removed: its own events will tell
	}
	h := HashString(spec.TaskID)
	if spec.TaskID == "" || spec.Image == "" || e.missingImages[spec.Image] {
		why := fmt.Sprintf("image %q not found", spec.Image)
		if spec.TaskID == "" || spec.Image == "" {
			why = "prepare: empty task ID or image"
		}
		e.Stats.PrepareFailed++
		id := spec.TaskID
		e.node.At(e.cfg.Prepare.Draw(e.rand), KindExec, h^uint64(env.ContainerFailed), func() {
			if e.handler != nil {
				e.handler(env.ContainerEvent{TaskID: id, State: env.ContainerFailed, Err: why})
			}
		})
		return
	}
	c := &fakeContainer{spec: spec, hash: h}
	e.containers[spec.TaskID] = c
	e.after(c, e.cfg.Prepare.Draw(e.rand), func() {
		c.state = env.ContainerPrepared
		e.Stats.Prepared++
		e.emit(c, env.ContainerPrepared, "")
	})
}

// Start implements env.Executor: after the configured start time the
// container runs (ContainerRunning) or, with the configured chance, fails
// to start (ContainerFailed). Then, depending on its image, it exits with
// code 1 at once, turns unhealthy, or exits on its own after a while.
func (e *Executor) Start(taskID string) {
	c := e.containers[taskID]
	switch {
	case c == nil || c.removing:
		e.eventFor(taskID, env.ContainerEvent{TaskID: taskID, State: env.ContainerFailed, Err: "start: no such container"})
		return
	case c.state == env.ContainerRunning:
		e.after(c, 0, func() { e.emit(c, env.ContainerRunning, "") })
		return
	case c.starting || c.stopping:
		return
	case c.state != env.ContainerPrepared:
		e.after(c, 0, func() { e.emit(c, env.ContainerFailed, "start: container is "+c.state.String()) })
		return
	}
	c.starting = true
	d := e.cfg.Start.Draw(e.rand)
	if e.cfg.Fail > 0 && e.rand.Float64() < e.cfg.Fail {
		e.after(c, d, func() {
			c.starting = false
			c.state = env.ContainerFailed
			e.Stats.StartFailed++
			e.emit(c, env.ContainerFailed, "start: simulated runtime failure")
		})
		return
	}
	e.after(c, d, func() { e.run(c) })
}

func (e *Executor) run(c *fakeContainer) {
	c.starting = false
	c.state = env.ContainerRunning
	if c.spec.Health != nil {
		c.health = env.HealthStarting
	}
	e.setRunning(c, true)
	e.Stats.Started++
	e.emit(c, env.ContainerRunning, "")
	img := c.spec.Image
	switch {
	case e.failImages[img]:
		e.after(c, 0, func() { e.exit(c, 1) })
	case e.unhealthyImages[img]:
		interval, retries, start := defaultHealthInterval, defaultHealthRetries, time.Duration(0)
		if h := c.spec.Health; h != nil {
			if h.Interval > 0 {
				interval = h.Interval
			}
			if h.Retries > 0 {
				retries = h.Retries
			}
			start = max(h.StartPeriod, 0)
		}
		e.after(c, start+time.Duration(retries)*interval, func() {
			c.health = env.HealthUnhealthy
			e.Stats.Unhealthy++
			e.emit(c, env.ContainerRunning, "")
		})
	default:
		if x, ok := e.exits[img]; ok {
			e.after(c, x.After.Draw(e.rand), func() { e.exit(c, x.Code) })
		}
	}
}

// exit ends a running container with code.
func (e *Executor) exit(c *fakeContainer, code int) {
	if c.state != env.ContainerRunning {
		return
	}
	e.cancel(c)
	c.state = env.ContainerExited
	c.exitCode = code
	c.stopping = false
	e.setRunning(c, false)
	e.Stats.Exited++
	e.emit(c, env.ContainerExited, "")
}

// Stop implements env.Executor. A running container exits StopTime later
// with code 0, or is killed at the grace (137) when StopTime exceeds it. A
// container that never ran exits at once with code 0; an unknown one is
// reported removed.
func (e *Executor) Stop(taskID string, grace time.Duration) {
	c := e.containers[taskID]
	switch {
	case c == nil:
		e.eventFor(taskID, env.ContainerEvent{TaskID: taskID, State: env.ContainerRemoved})
		return
	case c.removing || c.stopping:
		return
	case c.state == env.ContainerRunning || c.starting:
		e.cancel(c)
		c.stopping = true
		d, code := e.cfg.StopTime, 0
		if grace >= 0 && d > grace {
			d, code = grace, exitKilled
		}
		wasStarting := c.starting
		e.after(c, d, func() {
			if wasStarting {
				c.starting = false
				c.state = env.ContainerExited
				c.exitCode = code
				c.stopping = false
				e.emit(c, env.ContainerExited, "")
				return
			}
			e.Stats.Stopped++
			e.exit(c, code)
		})
	case c.state == env.ContainerUnknown || c.state == env.ContainerPrepared:
		e.cancel(c)
		c.state = env.ContainerExited
		c.exitCode = 0
		e.after(c, 0, func() { e.emit(c, env.ContainerExited, "") })
	default: // exited or failed already: say so again
		e.after(c, 0, func() { e.emit(c, c.state, "") })
	}
}

// Remove implements env.Executor: the container goes (killed first, if it
// runs) and ContainerRemoved follows RemoveTime later. Removing an unknown
// container reports it removed.
func (e *Executor) Remove(taskID string) {
	c := e.containers[taskID]
	if c == nil {
		e.eventFor(taskID, env.ContainerEvent{TaskID: taskID, State: env.ContainerRemoved})
		return
	}
	if c.removing {
		return
	}
	e.cancel(c)
	if c.state == env.ContainerRunning {
		e.setRunning(c, false)
		c.exitCode = exitKilled
	}
	c.removing = true
	c.starting, c.stopping = false, false
	e.after(c, e.cfg.RemoveTime, func() {
		delete(e.containers, c.spec.TaskID)
		c.state = env.ContainerRemoved
		e.Stats.Removed++
		e.emit(c, env.ContainerRemoved, "")
	})
}

// List implements env.Executor: every container the node has, in task ID
// order, as an event of its own.
func (e *Executor) List(done func([]env.ContainerStatus)) {
	e.node.At(0, KindExec, 0, func() { done(e.list()) })
}

func (e *Executor) list() []env.ContainerStatus {
	out := make([]env.ContainerStatus, 0, len(e.containers))
	for _, c := range e.containers {
		if c.removing {
			continue
		}
		out = append(out, env.ContainerStatus{TaskID: c.spec.TaskID, State: c.state, ExitCode: c.exitCode, Health: c.health})
	}
	slices.SortFunc(out, func(a, b env.ContainerStatus) int { return cmp.Compare(a.TaskID, b.TaskID) })
	return out
}

// Kill makes a running container exit with code now, as if its process
// died (the scenario's fail_tasks). It reports whether one was running.
func (e *Executor) Kill(taskID string, code int) bool {
	c := e.containers[taskID]
	if c == nil || c.state != env.ContainerRunning || c.removing {
		return false
	}
	e.Stats.Killed++
	e.exit(c, code)
	return true
}

// Crash loses every container, as a machine that dies does. The cluster
// calls it when the node crashes or stops; OnChange hears each running one
// stop. Pending events are cancelled (the node's crash drops them anyway).
func (e *Executor) Crash() {
	ids := make([]string, 0, len(e.containers))
	for id := range e.containers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		c := e.containers[id]
		e.cancel(c)
		if c.state == env.ContainerRunning && !c.removing {
			e.Stats.Lost++
			e.setRunning(c, false)
		}
	}
	clear(e.containers)
}

// Running lists the task IDs of the containers running now, in order.
func (e *Executor) Running() []string {
	out := make([]string, 0, e.running)
	for id, c := range e.containers {
		if c.state == env.ContainerRunning && !c.removing {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// IsRunning reports whether the task's container runs now.
func (e *Executor) IsRunning(taskID string) bool {
	c := e.containers[taskID]
	return c != nil && c.state == env.ContainerRunning && !c.removing
}

// NumRunning is the number of containers running now.
func (e *Executor) NumRunning() int { return e.running }

// Has reports whether the node has a container for the task, in any state.
func (e *Executor) Has(taskID string) bool { return e.containers[taskID] != nil }

// Usage is the sum of the running containers' limits.
func (e *Executor) Usage() (nanoCPUs, memoryBytes int64) {
	return e.usedNanoCPUs, e.usedMemoryBytes
}

// NodeID is the node this executor runs on.
func (e *Executor) NodeID() env.NodeID { return e.id }

func (e *Executor) setRunning(c *fakeContainer, on bool) {
	sign := int64(1)
	if !on {
		sign = -1
	}
	e.running += int(sign)
	e.usedNanoCPUs += sign * c.spec.NanoCPUs
	e.usedMemoryBytes += sign * c.spec.MemoryBytes
	if e.cfg.OnChange != nil {
		e.cfg.OnChange(e.id, c.spec.TaskID, on)
	}
}

// after schedules f as one of c's pending events.
func (e *Executor) after(c *fakeContainer, d time.Duration, f func()) {
	var id TimerID
	id = e.node.At(d, KindExec, c.hash, func() {
		if i := slices.Index(c.timers, id); i >= 0 {
			c.timers = slices.Delete(c.timers, i, i+1)
		}
		f()
	})
	c.timers = append(c.timers, id)
}

func (e *Executor) cancel(c *fakeContainer) {
	for _, id := range c.timers {
		e.node.k.Cancel(id)
	}
	c.timers = c.timers[:0]
}

func (e *Executor) emit(c *fakeContainer, state env.ContainerState, why string) {
	if e.handler == nil {
		return
	}
	e.handler(env.ContainerEvent{TaskID: c.spec.TaskID, State: state, ExitCode: c.exitCode, Health: c.health, Err: why})
}

// eventFor reports ev about a task the executor holds no container for.
func (e *Executor) eventFor(taskID string, ev env.ContainerEvent) {
	e.node.At(0, KindExec, HashString(taskID), func() {
		if e.handler != nil {
			e.handler(ev)
		}
	})
}

var _ env.Executor = (*Executor)(nil)
