package scenarios

import (
	"errors"
	"fmt"
	"strings"

	"github.com/swarmsim/swarmsim/engine/manager"
	"github.com/swarmsim/swarmsim/sim"
	"github.com/swarmsim/swarmsim/sim/cluster"
)

// Autolock steps in the simulator. `autolock` and `rotate_unlock_key` go
// through the leader's control API, as `swarmd swarm update --autolock`
// and `swarmd unlock-key --rotate` do, and finish once every running
// manager has re-wrapped its data keys and synced them: a crash from then
// on comes back locked with the new key. `unlock: X` gives each locked
// manager X the cluster's current unlock key, read from the committed
// state, as an operator who kept the key would type it.

// applyAutolock performs the autolock steps. It reports false for actions
// it does not handle.
func (w *SimWorld) applyAutolock(a Action, targets []string, done func(error)) bool {
	switch a := a.(type) {
	case Autolock:
		var key string
		w.leaderCall(func(mgr *manager.Manager, d func(error)) {
			mgr.Control().SetAutolock(a.On, "", func(k string, err error) { key = k; d(err) })
		}, func(err error) {
			if err != nil {
				done(err)
				return
			}
			w.waitRewrapped(key, done)
		})
	case RotateUnlockKey:
		var key string
		w.leaderCall(func(mgr *manager.Manager, d func(error)) {
			mgr.Control().RotateUnlockKey("", func(k string, err error) { key = k; d(err) })
		}, func(err error) {
			if err != nil {
				done(err)
				return
			}
			w.waitRewrapped(key, done)
		})
	case Unlock:
		w.unlock(targets, done)
	default:
		return false
	}
	return true
}

// unlockKey is the cluster's unlock key as committed, "" when autolock is
// off.
func (w *SimWorld) unlockKey() string {
	for _, c := range w.check.shadow.Clusters() {
		if c.GetSpec().GetAutolock() {
			return string(c.GetUnlockKey())
		}
	}
	return ""
}

func (w *SimWorld) unlock(targets []string, done func(error)) {
	key := w.unlockKey()
	if key == "" {
		done(errors.New("autolock is off: there is no unlock key to give"))
		return
	}
	unlocked := 0
	var next func(i int)
	next = func(i int) {
		if i == len(targets) {
			if unlocked == 0 {
				done(fmt.Errorf("none of %s is locked", strings.Join(targets, ", ")))
				return
			}
			done(nil)
			return
		}
		name := targets[i]
		m := w.c.Machine(name)
		if m.Status != cluster.NodeUp || m.Engine == nil {
			done(fmt.Errorf("%s is %s", name, m.Status))
			return
		}
		if !m.Engine.Locked() {
			next(i + 1) // `unlock: all` unlocks the locked ones
			return
		}
		// On the node's own loop, as swarmd's control socket would.
		eng := m.Engine
		m.Kernel.Post(func() {
			if err := eng.Unlock(key); err != nil {
				done(fmt.Errorf("unlock %s: %w", name, err))
				return
			}
			unlocked++
			next(i + 1)
		})
	}
	next(0)
}

// waitRewrapped calls done once the committed cluster object's unlock key
// is want and every running, unlocked manager's disk is wrapped by it
// durably.
func (w *SimWorld) waitRewrapped(want string, done func(error)) {
	var poll func()
	poll = func() {
		if w.unlockKey() == want && w.rewrapped(want) {
			done(nil)
			return
		}
		w.k.Schedule(pollEvery, sim.KindStep, poll)
	}
	poll()
}

func (w *SimWorld) rewrapped(want string) bool {
	for _, m := range w.c.Machines() {
		if !m.Manager || m.Status != cluster.NodeUp || m.Engine == nil || m.Engine.Locked() || m.Engine.Manager() == nil {
			continue
		}
		d := m.Engine.Disk()
		if d.UnlockKey() != want || !d.KeysDurable() {
			return false
		}
	}
	return true
}

// holdsAutolock evaluates `locked: X` and `unlocked: X`.
func (w *SimWorld) holdsAutolock(c Condition) (ok bool, what string, handled bool) {
	var sel Selector
	var wantLocked bool
	switch c := c.(type) {
	case Locked:
		sel, wantLocked = c.Node, true
	case Unlocked:
		sel = c.Node
	default:
		return false, "", false
	}
	name := w.resolveOne(sel)
	m := w.c.Machine(name)
	switch {
	case m == nil:
		return false, "no node " + sel.String(), true
	case m.Status != cluster.NodeUp || m.Engine == nil:
		return false, name + " is " + m.Status.String(), true
	case m.Engine.Locked():
		return wantLocked, name + " is locked", true
	case m.Engine.Manager() == nil:
		return false, name + " runs no manager", true
	}
	return !wantLocked, name + " is unlocked", true
}

// rotateDataKey asks the leader for a data-key rotation (the scenario
// format has no step for it; Go tests drive it, and `autolock: on` rotates
// the data key too) and calls done once every running, unlocked manager
// has switched and synced.
func (w *SimWorld) rotateDataKey(done func(error)) {
	var want uint64
	w.leaderCall(func(mgr *manager.Manager, d func(error)) {
		mgr.Control().RotateDataKey(func(n uint64, err error) { want = n; d(err) })
	}, func(err error) {
		if err != nil {
			done(err)
			return
		}
		var poll func()
		poll = func() {
			for _, m := range w.c.Machines() {
				if !m.Manager || m.Status != cluster.NodeUp || m.Engine == nil || m.Engine.Locked() || m.Engine.Manager() == nil {
					continue
				}
				if d := m.Engine.Disk(); d.DataKeyGeneration() < want || !d.KeysDurable() {
					w.k.Schedule(pollEvery, sim.KindStep, poll)
					return
				}
			}
			done(nil)
		}
		poll()
	})
}
