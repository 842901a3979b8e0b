package orchestrator

import (
	"time"

	"github.com/swarmsim/swarmsim/engine/api"
)

// defaultRestartDelay applies when a task spec has no restart policy
// (SwarmKit's default: condition any, delay 5s). A policy that is present
// is taken literally, delay 0 included; the scenario layer fills the
// documented defaults in.
const defaultRestartDelay = int64(5 * time.Second)

// policy is a task's restart policy with defaults applied.
type policy struct {
	cond        api.RestartPolicy_Condition
	delay       int64
	maxAttempts uint64
	window      int64
}

func policyOf(t *api.Task) policy {
	r := t.GetSpec().GetRestart()
	if r == nil {
		return policy{cond: api.RestartPolicy_ANY, delay: defaultRestartDelay}
	}
	return policy{cond: r.Condition, delay: max(r.Delay, 0), maxAttempts: r.MaxAttempts, window: max(r.Window, 0)}
}

// why a live task needs its slot looked after.
type reason uint8

const (
	reasonEnded   reason = iota + 1 // it stopped on its own
	reasonLost                      // its node went down or left
	reasonEvicted                   // its node was drained or no longer matches
)

// shouldRestart applies the restart policy to t, which ended or was lost
// with its node. slot holds every task of t's slot (history included):
// attempts are counted there, so the count survives a leader change.
//
// An attempt is a task of the same spec version as t that failed on its
// own (FAILED or REJECTED; COMPLETE too when the condition is any and the
// service is not a job) with its end inside the window. A lost node is not
// the task's fault and costs no attempt, but condition none still means no
// replacement.
func shouldRestart(t *api.Task, why reason, slot []*api.Task, now int64, job bool) bool {
	pol := policyOf(t)
	st := t.GetStatus().GetState()
	switch {
	case pol.cond == api.RestartPolicy_NONE:
		return false
	case why == reasonLost:
		return true
	case st == complete && (job || pol.cond == api.RestartPolicy_ON_FAILURE):
		return false
	case pol.maxAttempts == 0:
		return true
	}
	attempts := uint64(0)
	for _, x := range slot {
		if x.SpecVersion == t.SpecVersion && isAttempt(x, pol, job) && inWindow(x, pol, now) {
			attempts++
		}
	}
	// t itself is among the attempts when it failed: max_attempts 3 lets
	// the fourth failure end the slot.
	return attempts <= pol.maxAttempts
}

func isAttempt(t *api.Task, pol policy, job bool) bool {
	if failedOnItsOwn(t) {
		return true
	}
	return !job && pol.cond == api.RestartPolicy_ANY && t.GetStatus().GetState() == complete
}

// inWindow: the task's end is recent enough to count; a zero window counts
// every attempt.
func inWindow(t *api.Task, pol policy, now int64) bool {
	if pol.window == 0 {
		return true
	}
	return endedAt(t) > now-pol.window
}

// endedAt is when t ended: its status's time, or its last change's.
func endedAt(t *api.Task) int64 {
	if at := t.GetStatus().GetTimestamp(); at != 0 {
		return at
	}
	return t.GetMeta().GetUpdatedAt()
}

// promoteTime is when a READY task may start: what this orchestrator
// decided when it made the task, or, for a task of an earlier leader, its
// restart delay from its creation (the longest it could have had to wait).
func (o *Orchestrator) promoteTime(t *api.Task) int64 {
	if at, ok := o.promoteAt[t.Id]; ok {
		return at
	}
	return t.GetMeta().GetCreatedAt() + policyOf(t).delay
}
