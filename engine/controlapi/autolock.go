package controlapi

import (
	"bytes"

	"google.golang.org/protobuf/proto"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/crypt"
	"github.com/swarmsim/swarmsim/engine/store"
)

// Autolock and the keys of encryption at rest (engine/crypt). The calls
// only change the Cluster object: its spec's autolock flag, its
// unlock_key, and encryption_key_lamport, the number of data-key
// rotations asked for. Every manager watches that object and acts on its
// own disk (engine/node): it re-wraps its data keys under a KEK derived
// from the unlock key (or a local one when autolock is off) and switches
// to a new data key when the number grows. Keys are drawn here, before the
// transaction, so that applying it draws nothing.
//
// The unlock key is returned only by the calls that set it and by
// GetUnlockKey, which `swarmd unlock-key` uses; no listing carries it.

// RPC names of the autolock calls on real mode's Control service, which
// `swarmd swarm update --autolock`, `swarmd unlock-key [--rotate]` and
// `swarmd swarm rotate-data-key` call.
const (
	MethodGetUnlockKey    = "/swarm.Control/GetUnlockKey"
	MethodSetAutolock     = "/swarm.Control/SetAutolock"
	MethodRotateUnlockKey = "/swarm.Control/RotateUnlockKey"
	MethodRotateDataKey   = "/swarm.Control/RotateDataKey"
)

// clusterOf is the store's one Cluster object.
func clusterOf(r store.Reader) (*api.Cluster, error) {
	cs := r.Clusters()
	if len(cs) == 0 {
		return nil, errorf(ErrFailedPrecondition, nil, "the cluster object is not written yet: no leader has started")
	}
	return cs[0], nil
}

// GetUnlockKey returns the cluster's unlock key, "" when autolock is off.
func (s *Server) GetUnlockKey() (string, error) {
	c, err := clusterOf(s.st)
	if err != nil {
		return "", err
	}
	if !c.GetSpec().GetAutolock() {
		return "", nil
	}
	return string(c.GetUnlockKey()), nil
}

// SetAutolock turns autolock on or off. Turning it on keeps the unlock key
// the cluster has, or sets key when given (a passphrase, or a key
// crypt.NewUnlockKey drew), or draws one; done gets the key in force.
// Turning it off clears the key: managers go back to local KEKs.
func (s *Server) SetAutolock(on bool, key string, done func(unlockKey string, err error)) {
	if on && key != "" {
		if err := crypt.CheckUnlockKey(key); err != nil {
			done("", errorf(ErrInvalidArgument, err, "unlock key: %v", err))
			return
		}
	}
	drawn := crypt.NewUnlockKey(s.rand)
	var result string
	s.update(func(tx *store.Tx) error {
		c, err := clusterOf(tx)
		if err != nil {
			return err
		}
		want := []byte(nil)
		if on {
			switch {
			case key != "":
				want = []byte(key)
			case len(c.GetUnlockKey()) > 0:
				want = c.GetUnlockKey()
			default:
				want = []byte(drawn)
			}
		}
		result = string(want)
		if c.GetSpec().GetAutolock() == on && bytes.Equal(c.GetUnlockKey(), want) {
			return nil
		}
		return tx.Update(withUnlockKey(c, on, want))
	}, func(err error) {
		if err != nil {
			done("", storeError("set autolock", err))
			return
		}
		done(result, nil)
	})
}

// RotateUnlockKey replaces the unlock key of an autolocked cluster with
// key (a passphrase or a drawn key) or, when key is "", a new drawn one;
// done gets it. Once every manager re-wrapped its data keys, the old key
// unlocks none of them.
func (s *Server) RotateUnlockKey(key string, done func(unlockKey string, err error)) {
	if key == "" {
		key = crypt.NewUnlockKey(s.rand)
	} else if err := crypt.CheckUnlockKey(key); err != nil {
		done("", errorf(ErrInvalidArgument, err, "unlock key: %v", err))
		return
	}
	s.update(func(tx *store.Tx) error {
		c, err := clusterOf(tx)
		if err != nil {
			return err
		}
		if !c.GetSpec().GetAutolock() {
			return errorf(ErrFailedPrecondition, nil, "autolock is off: there is no unlock key to rotate")
		}
		return tx.Update(withUnlockKey(c, true, []byte(key)))
	}, func(err error) {
		if err != nil {
			done("", storeError("rotate unlock key", err))
			return
		}
		done(key, nil)
	})
}

// RotateDataKey asks every manager to seal its raft records with a new
// data key from now on; records sealed with the old one stay readable
// until a snapshot compacts them away. done gets the rotation's number
// (the cluster's encryption_key_lamport), which managers record as they
// act on it.
func (s *Server) RotateDataKey(done func(rotation uint64, err error)) {
	var n uint64
	s.update(func(tx *store.Tx) error {
		c, err := clusterOf(tx)
		if err != nil {
			return err
		}
		nc := c.ShallowCopy()
		nc.EncryptionKeyLamport++
		n = nc.EncryptionKeyLamport
		return tx.Update(nc)
	}, func(err error) {
		if err != nil {
			done(0, storeError("rotate data key", err))
			return
		}
		done(n, nil)
	})
}

func withUnlockKey(c *api.Cluster, on bool, key []byte) *api.Cluster {
	nc := c.ShallowCopy()
	spec := &api.ClusterSpec{}
	if c.Spec != nil {
		spec = proto.Clone(c.Spec).(*api.ClusterSpec)
	}
	spec.Autolock = on
	nc.Spec = spec
	nc.UnlockKey = key
	return nc
}
