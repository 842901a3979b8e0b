package node

import (
	"fmt"
	"time"

	"github.com/swarmsim/swarmsim/engine/crypt"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/manager"
	"github.com/swarmsim/swarmsim/engine/store"
)

// Encryption at rest, as a node sees it. Every node's disk is a
// crypt.SealedStorage: raft entries and snapshots are sealed under a data
// key, which a key-encryption key wraps. A manager keeps that wrapping in
// step with the Cluster object (keyKeeper): under a KEK derived from the
// unlock key while autolock is on, under a local KEK otherwise, and it
// switches to a new data key whenever the cluster's data-key rotation
// number grows. A node whose disk is wrapped by an unlock key starts
// locked: nothing runs (its raft log cannot be read, so raft cannot start)
// until Unlock is given the key.

// sealDisk wraps e's storage, unless it is sealed already (real mode may
// wrap it itself, to unlock before starting the node).
func sealDisk(e env.Env, opts crypt.Options) (*crypt.SealedStorage, error) {
	if s, ok := e.Storage.(*crypt.SealedStorage); ok {
		return s, nil
	}
	return crypt.NewSealedStorage(e.Storage, e.Rand, opts)
}

// Locked reports whether the node waits for its unlock key: it was a
// manager of an autolocked cluster and restarted.
func (n *Node) Locked() bool { return n.locked }

// Unlock gives a locked node the cluster's unlock key (or passphrase):
// once it opens the disk's key record the node starts, as New would have.
// A wrong key is refused with an error wrapping crypt.ErrWrongKey and the
// node stays locked; a node that is not locked returns crypt.ErrNotLocked.
// The scenarios' `unlock: X` step calls it on the node's loop; real mode's
// `swarmd unlock` calls it there through the daemon's local socket
// (realnet/daemon; a locked node serves no cluster API).
func (n *Node) Unlock(key string) error {
	if !n.locked || n.stopped {
		return fmt.Errorf("node %s: %w", n.env.ID, crypt.ErrNotLocked)
	}
	if err := n.disk.Unlock(key); err != nil {
		n.log().Warn("unlock refused", "err", err)
		return fmt.Errorf("node %s: %w", n.env.ID, err)
	}
	n.locked = false
	n.log().Info("unlocked")
	return n.start()
}

// Disk is the node's sealed storage: its key state and counters.
func (n *Node) Disk() *crypt.SealedStorage { return n.disk }

// keyRetry is how long a keeper waits before looking again when its store
// is still replaying entries it already committed, or a re-wrap failed.
const keyRetry = 250 * time.Millisecond

// keyKeeper keeps one manager's disk keys in step with the Cluster object.
// It watches the store and acts only once the manager has applied what
// was committed when it looked, so that a restarted manager replaying its
// log does not re-wrap its keys to each past state in turn.
type keyKeeper struct {
	n      *Node
	m      *manager.Manager
	disk   *crypt.SealedStorage
	cancel func()
	timer  env.Timer
	posted bool
	busy   bool // a re-wrap, rotation or key draw is in flight
	// target is the commit index the store must have applied before the
	// keeper acts (see check).
	target uint64
	done   bool
}

func (n *Node) startKeys(m *manager.Manager) {
	if n.keys != nil {
		n.keys.stop()
	}
	k := &keyKeeper{n: n, m: m, disk: n.disk}
	k.cancel = m.Store().WatchKinds(store.KindSetOf(store.KindCluster), k.onEvents)
	n.keys = k
	k.post()
}

func (n *Node) stopKeys() {
	if n.keys != nil {
		n.keys.stop()
		n.keys = nil
	}
}

func (k *keyKeeper) stop() {
	k.done = true
	k.cancel()
	if k.timer != nil {
		k.timer.Stop()
		k.timer = nil
	}
}

func (k *keyKeeper) onEvents(evs []store.Event) {
	for i := range evs {
		if evs[i].Kind == store.KindCluster || evs[i].Action == store.ActionRestore {
			k.post()
			return
		}
	}
}

// post runs check on the loop, once however many changes came meanwhile
// (a watch callback must not write).
func (k *keyKeeper) post() {
	if k.posted || k.done {
		return
	}
	k.posted = true
	k.n.env.Loop.Post(func() {
		k.posted = false
		k.check()
	})
}

func (k *keyKeeper) later() {
	if k.timer != nil || k.done {
		return
	}
	k.timer = k.n.env.Clock.AfterFunc(keyRetry, func() {
		k.timer = nil
		k.check()
	})
}

func (k *keyKeeper) check() {
	if k.done || k.busy || k.n.stopped {
		return
	}
	c := k.m.Store().Cluster(manager.ClusterID)
	if c == nil {
		return // a fresh cluster before its first leader wrote it
	}
	// Act on a state at least as new as what was committed when we first
	// looked: a restarted manager first replays its own log, whose past
	// cluster objects must not each be acted on. (Waiting for Applied to
	// reach a Commit that moves on under load would never end.)
	st := k.m.Raft().Status()
	if k.target == 0 {
		k.target = max(st.Commit, 1)
	}
	if st.Applied < k.target {
		k.later()
		return
	}
	k.target = 0
	log := k.n.log()
	on := c.GetSpec().GetAutolock()
	want := ""
	if on {
		want = string(c.GetUnlockKey())
	}
	switch {
	case on && want == "":
		// Autolock asked for in the spec (`cluster.autolock: true`,
		// `swarmd init --autolock`) and no key drawn yet: the leader
		// draws it.
		if !k.m.IsLeader() {
			return
		}
		k.busy = true
		k.m.Control().SetAutolock(true, "", func(_ string, err error) {
			k.busy = false
			if err != nil {
				log.Warn("cannot draw the unlock key", "err", err)
				k.later()
				return
			}
			k.post()
		})
	case want != k.disk.UnlockKey():
		k.busy = true
		k.disk.SetUnlockKey(want, func(err error) {
			k.busy = false
			if err != nil {
				log.Warn("cannot re-wrap the data keys", "err", err)
				k.later()
				return
			}
			cur, _ := k.disk.DataKeyIDs()
			if want == "" {
				log.Info("data keys wrapped by a local key (autolock off)", "data_key", cur)
			} else {
				log.Info("data keys wrapped by the unlock key (autolock on)", "data_key", cur)
			}
			k.post()
		})
	case c.GetEncryptionKeyLamport() > k.disk.DataKeyGeneration():
		gen := c.GetEncryptionKeyLamport()
		k.busy = true
		k.disk.RotateDataKey(gen, func(err error) {
			k.busy = false
			if err != nil {
				log.Warn("cannot rotate the data key", "rotation", gen, "err", err)
				k.later()
				return
			}
			cur, all := k.disk.DataKeyIDs()
			log.Info("data key rotated", "rotation", gen, "key", cur, "keys_in_use", len(all))
			k.post()
		})
	}
}
