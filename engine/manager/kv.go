package manager

import (
	"errors"
	"fmt"

	"github.com/swarmsim/swarmsim/engine/raft"
	"github.com/swarmsim/swarmsim/engine/store"
)

// The key space is a small set of cluster-wide values that scenario
// clients read, write and compare-and-swap, so that a run can check the
// store's history for linearizability (porcupine) through the same raft
// and store paths every other write takes.

// kvRetries bounds how often a write retries after losing a race with
// another write (a version conflict, which applied nothing).
const kvRetries = 16

// ErrKVContended: a write lost its race kvRetries times in a row.
var ErrKVContended = store.ErrContended

// Ambiguous reports whether err leaves a write's outcome unknown: the
// entry may or may not commit.
func Ambiguous(err error) bool {
	return errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrTimeout) || errors.Is(err, raft.ErrStopped)
}

// KVRead reads key linearizably: after a ReadIndex round, from this
// manager's store. A missing key reads as "".
func (m *Manager) KVRead(key string, done func(value string, err error)) {
	m.raft.ReadIndex(func(err error) {
		if err != nil {
			done("", err)
			return
		}
		done(string(m.store.KV(key).GetValue()), nil)
	})
}

// KVWrite sets key to value.
func (m *Manager) KVWrite(key, value string, done func(error)) {
	m.store.WriteKV(key, value, kvRetries, done)
}

// KVCAS sets key to value if it holds old, and reports whether it did. A
// false answer is a linearizable read (after ReadIndex) that saw another
// value; a true one applied a write conditioned on the version read.
func (m *Manager) KVCAS(key, old, value string, done func(swapped bool, err error)) {
	m.kvCAS(key, old, value, kvRetries, done)
}

func (m *Manager) kvCAS(key, old, value string, tries int, done func(bool, error)) {
	m.raft.ReadIndex(func(err error) {
		if err != nil {
			done(false, err)
			return
		}
		cur := m.store.KV(key)
		if string(cur.GetValue()) != old {
			done(false, nil)
			return
		}
		m.store.Update(func(tx *store.Tx) error {
			return tx.WriteKV(key, value, cur)
		}, func(err error) {
			switch {
			case err == nil:
				done(true, nil)
			case store.LostRace(err) && tries > 1:
				// Someone wrote in between: nothing applied; decide again.
				m.kvCAS(key, old, value, tries-1, done)
			case store.LostRace(err):
				done(false, fmt.Errorf("cas %q: %w", key, ErrKVContended))
			default:
				done(false, err)
			}
		})
	})
}
