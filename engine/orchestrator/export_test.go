package orchestrator

import "github.com/swarmsim/swarmsim/engine/api"

// Hooks for the external tests (package orchestrator_test), which drive
// the simulator and cannot be internal tests: sim imports the manager,
// which imports this package.

// DueNextBatch makes the service's rolling update start its next batch in
// the next pass, whatever its delay says.
func (o *Orchestrator) DueNextBatch(svc string) {
	if s := o.svcs[svc]; s != nil && s.upd != nil {
		s.upd.nextAt = 0
	}
	o.markUpdate(svc)
}

// Detach stops following the store while staying started, so that a
// benchmark drives passes with PassNow.
func (o *Orchestrator) Detach() {
	if o.cancelWatch != nil {
		o.cancelWatch()
		o.cancelWatch = nil
	}
}

// PassNow marks the slots of tasks (the whole service when tasks is nil)
// and runs one pass at once. Writes in flight are forgotten first: a
// benchmark's proposer may never answer.
func (o *Orchestrator) PassNow(svc string, tasks []*api.Task) {
	for _, s := range o.svcs {
		s.busy = 0
	}
	if tasks == nil {
		o.markFull(svc)
	}
	for _, t := range tasks {
		o.markSlot(svc, keyOf(t))
	}
	o.pass()
}

// PendingPromotions is how many READY tasks this orchestrator holds a
// start time for.
func (o *Orchestrator) PendingPromotions() int { return len(o.promoteAt) }
