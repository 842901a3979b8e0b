package scenarios

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// NodeState is what a run knows of one node, for selectors and output.
type NodeState struct {
	Name    string
	Manager bool
	Up      bool // running (not crashed, stopped or removed)
	Crashed bool // down by a crash: `restart` applies
	Stopped bool // down by a clean stop: `start` applies
	Removed bool // left the cluster
}

// World is a cluster a scenario runs against: the simulator, or real
// swarmd nodes. Steps reach it only through this interface, so the same
// runner drives both.
type World interface {
	// Now is the time since the run began: virtual in the simulator,
	// wall-clock time in real mode.
	Now() time.Duration
	// RunUntil lets the world run until time t, or until stop reports
	// true (checked after every event, or every poll). It reports whether
	// it stopped early.
	RunUntil(t time.Duration, stop func() bool) bool
	// Nodes lists every node the run has known, in a stable order.
	Nodes() []NodeState
	// Leader is the current raft leader, "" when none is known.
	Leader() string
	// Apply performs an action on the nodes the runner resolved from its
	// selectors (targets; nil for actions that name no node). done is
	// called once the action has finished, with an error if it failed; it
	// may be called before Apply returns.
	Apply(a Action, targets []string, done func(error))
	// Holds reports whether an expect condition holds now, and a short
	// description of what the world shows ("2 of 3 running").
	Holds(c Condition) (bool, string)
	// Violation is the first invariant the world saw broken, or nil.
	Violation() *Violation
	// Chooser draws the seeded choices of selectors.
	Chooser() Chooser
	// Stats describes the run for its summary.
	Stats() WorldStats
}

// WorldStats are the figures a run's summary reports.
type WorldStats struct {
	Events    uint64
	TraceHash uint64
	// Notes are further lines for the summary (ignored settings in real
	// mode, linearizability checks not proven).
	Notes []string
}

// Violation is a broken invariant.
type Violation struct {
	Invariant Invariant
	At        time.Duration
	Detail    string
}

func (v *Violation) Error() string {
	return fmt.Sprintf("invariant %s broken at %s: %s", v.Invariant, FormatDuration(v.At), v.Detail)
}

// StepResult is how one step went.
type StepResult struct {
	Step     Step
	Started  time.Duration
	Finished time.Duration
	Targets  []string
	Err      error
	Detail   string
}

// Result is how a run went.
type Result struct {
	Scenario  *Scenario
	Seed      uint64
	Passed    bool
	Failure   string // the failed step or invariant, with its time
	Steps     []StepResult
	Virtual   time.Duration
	Wall      time.Duration
	Events    uint64
	TraceHash uint64
	Notes     []string
}

// TraceHashHex is the trace hash as the summary prints it.
func (r *Result) TraceHashHex() string { return fmt.Sprintf("%016x", r.TraceHash) }

// pollEvery is how often an expect re-checks its condition when the world
// cannot say when something changed. It is virtual time in the simulator,
// so it costs events, not wall time.
const pollEvery = 50 * time.Millisecond

// Runner runs one scenario against one world.
type Runner struct {
	sc    *Scenario
	world World
	out   io.Writer
	wall  func() time.Time
}

// NewRunner prepares a run of sc against w, printing step lines to out
// (nil: none). wall reads the wall clock for the summary's wall time.
func NewRunner(sc *Scenario, w World, out io.Writer, wall func() time.Time) *Runner {
	if out == nil {
		out = io.Discard
	}
	return &Runner{sc: sc, world: w, out: out, wall: wall}
}

// Run runs every step in order and returns the result. A failed step or a
// broken invariant ends the run.
func (r *Runner) Run(seed uint64) *Result {
	start := r.wall()
	res := &Result{Scenario: r.sc, Seed: seed, Passed: true}
	w := r.world
	fail := func(msg string) {
		if res.Passed {
			res.Passed = false
			res.Failure = msg
		}
	}
	violated := func() bool { return w.Violation() != nil }

	for _, step := range r.sc.Steps {
		if step.HasAt && step.At > w.Now() {
			if step.At > r.sc.Duration {
				fail(fmt.Sprintf("step %d (%s, line %d) is due at %s, after the run's duration %s",
					step.Index, step, step.Line, FormatDuration(step.At), FormatDuration(r.sc.Duration)))
				break
			}
			w.RunUntil(step.At, violated)
			if violated() {
				break
			}
		}
		sr := r.runStep(step)
		res.Steps = append(res.Steps, sr)
		r.printStep(sr)
		if sr.Err != nil {
			fail(fmt.Sprintf("step %d (%s, line %d) failed at %s: %v",
				step.Index, step, step.Line, FormatDuration(sr.Finished), sr.Err))
			break
		}
		if violated() {
			break
		}
	}
	st := w.Stats() // ends the run: end-of-run checks may find a violation
	if v := w.Violation(); v != nil {
		fail(v.Error())
	}
	res.Virtual = w.Now()
	res.Wall = r.wall().Sub(start)
	res.Events = st.Events
	res.TraceHash = st.TraceHash
	res.Notes = st.Notes
	return res
}

func (r *Runner) runStep(step Step) StepResult {
	w := r.world
	sr := StepResult{Step: step, Started: w.Now()}
	deadline := r.sc.Duration
	if e, ok := step.Action.(Expect); ok {
		sr.Detail, sr.Err = r.expect(e, min(deadline, w.Now()+e.Within))
		sr.Finished = w.Now()
		return sr
	}
	targets, err := r.resolve(step.Action)
	sr.Targets = targets
	if err != nil {
		sr.Err = err
		sr.Finished = w.Now()
		return sr
	}
	finished := false
	w.Apply(step.Action, targets, func(err error) {
		if !finished {
			finished = true
			sr.Err = err
		}
	})
	if !finished {
		w.RunUntil(deadline, func() bool { return finished || w.Violation() != nil })
	}
	if !finished && w.Violation() == nil {
		sr.Err = fmt.Errorf("still unfinished when the run's duration (%s) ran out", FormatDuration(r.sc.Duration))
	}
	sr.Finished = w.Now()
	return sr
}

// expect waits until every condition holds, polling, until deadline.
func (r *Runner) expect(e Expect, deadline time.Duration) (string, error) {
	w := r.world
	check := func() (bool, string) {
		var notes []string
		all := true
		for _, c := range e.Conditions {
			ok, what := w.Holds(c)
			if !ok {
				all = false
				notes = append(notes, fmt.Sprintf("%s: %s", c, what))
			}
		}
		return all, strings.Join(notes, "; ")
	}
	for {
		ok, why := check()
		if ok {
			return "held", nil
		}
		if w.Violation() != nil {
			return "", nil
		}
		if w.Now() >= deadline {
			return "", errors.New("did not hold in time: " + why)
		}
		next := min(w.Now()+pollEvery, deadline)
		w.RunUntil(next, func() bool { return w.Violation() != nil })
	}
}

// resolve turns an action's selectors into node names, from the nodes the
// action can apply to.
func (r *Runner) resolve(a Action) ([]string, error) {
	w := r.world
	nodes := w.Nodes()
	pick := func(sel Selector, ok func(NodeState) bool, what string) ([]string, error) {
		var cands []Candidate
		for _, n := range nodes {
			if ok(n) {
				cands = append(cands, Candidate{Name: n.Name, Manager: n.Manager})
			}
		}
		names := sel.Resolve(cands, w.Leader(), w.Chooser())
		if len(names) == 0 {
			return nil, fmt.Errorf("%s selects no %s node", sel, what)
		}
		return names, nil
	}
	up := func(n NodeState) bool { return n.Up }
	member := func(n NodeState) bool { return !n.Removed }
	switch a := a.(type) {
	case Crash:
		return pick(a.Target, up, "running")
	case Stop:
		return pick(a.Target, up, "running")
	case Restart:
		return pick(a.Target, func(n NodeState) bool { return n.Crashed }, "crashed")
	case Start:
		return pick(a.Target, func(n NodeState) bool { return n.Stopped }, "stopped")
	case Isolate:
		return pick(a.Target, member, "")
	case Partition:
		// Groups are resolved one by one and joined with a "|" marker so
		// the world can split them again.
		var out []string
		for i, g := range a.Groups {
			if i > 0 {
				out = append(out, "|")
			}
			for _, sel := range g {
				names, err := pick(sel, member, "")
				if err != nil {
					return nil, err
				}
				out = append(out, names...)
			}
		}
		return out, nil
	case Link:
		from, err := pick(a.From, member, "")
		if err != nil {
			return nil, err
		}
		to, err := pick(a.To, member, "")
		if err != nil {
			return nil, err
		}
		return append(append(from, "|"), to...), nil
	case RemoveManager:
		return pick(a.Target, func(n NodeState) bool { return n.Manager && !n.Removed }, "manager")
	case RemoveWorker:
		return pick(a.Target, func(n NodeState) bool { return !n.Manager && !n.Removed }, "worker")
	case Promote:
		return pick(a.Target, func(n NodeState) bool { return !n.Manager && !n.Removed }, "worker")
	case Demote:
		return pick(a.Target, func(n NodeState) bool { return n.Manager && !n.Removed }, "manager")
	case Drain:
		return pick(a.Target, member, "")
	case Pause:
		return pick(a.Target, member, "")
	case Activate:
		return pick(a.Target, member, "")
	case ClockSkew:
		return pick(a.Node, member, "")
	case Compromise:
		// A removed node too: its certificate is still valid, and must
		// get nothing.
		return pick(a.Target, func(NodeState) bool { return true }, "")
	case Unlock:
		return pick(a.Target, func(n NodeState) bool { return n.Manager && !n.Removed }, "manager")
	}
	return nil, nil
}

func (r *Runner) printStep(sr StepResult) {
	outcome := "ok"
	switch {
	case sr.Err != nil:
		outcome = "FAILED: " + sr.Err.Error()
	case sr.Detail != "":
		outcome = sr.Detail
	}
	targets := ""
	if len(sr.Targets) > 0 && !slices.Contains(sr.Targets, "|") {
		if s := sr.Step.String(); !strings.Contains(s, strings.Join(sr.Targets, ",")) {
			targets = " (" + compactNames(sr.Targets) + ")"
		}
	}
	at := FormatClock(sr.Started)
	if sr.Finished != sr.Started {
		at += "→" + FormatClock(sr.Finished)
	}
	fmt.Fprintf(r.out, "  [%s] %s%s: %s\n", at, sr.Step, targets, outcome)
}

// FormatClock is a run time for output lines: "1m30.250s".
func FormatClock(d time.Duration) string {
	return d.Round(time.Millisecond).String()
}

// compactNames shortens long lists of names for output lines.
func compactNames(names []string) string {
	if len(names) <= 6 {
		return strings.Join(names, ",")
	}
	return fmt.Sprintf("%s,…,%s (%d nodes)", strings.Join(names[:3], ","), names[len(names)-1], len(names))
}

// WriteSummary prints a run's summary: its verdict, the failure if any,
// the defaults the file relied on, its figures and its trace hash.
func WriteSummary(w io.Writer, r *Result) {
	verdict := "PASS"
	if !r.Passed {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "%s %s (seed %d)\n", verdict, r.Scenario.Name, r.Seed)
	if !r.Passed {
		fmt.Fprintf(w, "  failure: %s\n", r.Failure)
	}
	if len(r.Scenario.Defaults) > 0 {
		fmt.Fprintf(w, "  defaults used: %s\n", strings.Join(r.Scenario.Defaults, ", "))
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	ratio := 0.0
	if r.Wall > 0 {
		ratio = r.Virtual.Seconds() / r.Wall.Seconds()
	}
	fmt.Fprintf(w, "  events: %d  virtual: %s  wall: %s  (%.0fx)\n",
		r.Events, FormatClock(r.Virtual), r.Wall.Round(time.Millisecond), ratio)
	fmt.Fprintf(w, "  trace-hash: %s\n", r.TraceHashHex())
}
