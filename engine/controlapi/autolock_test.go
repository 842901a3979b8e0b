package controlapi_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/controlapi"
	"github.com/swarmsim/swarmsim/engine/crypt"
	"github.com/swarmsim/swarmsim/engine/store"
)

func (e *env) createCluster() {
	e.t.Helper()
	if err := callErr(e, func(done func(error)) {
		e.st.Update(func(tx *store.Tx) error {
			return tx.Create(&api.Cluster{Id: "cluster", Spec: &api.ClusterSpec{Name: "c"}})
		}, done)
	}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) cluster() *api.Cluster { return e.st.Clusters()[0] }

func TestAutolockOnOff(t *testing.T) {
	e := newEnv(t)
	defer e.k.Activate()()
	_, err := call(e, func(done func(string, error)) { e.s.SetAutolock(true, "", done) })
	if !errors.Is(err, controlapi.ErrFailedPrecondition) {
		t.Fatalf("autolock before the cluster object exists: %v", err)
	}
	e.createCluster()
	if k := must(e.s.GetUnlockKey()); k != "" {
		t.Fatalf("unlock key %q with autolock off", k)
	}
	key := must(call(e, func(done func(string, error)) { e.s.SetAutolock(true, "", done) }))
	if !strings.HasPrefix(key, crypt.UnlockKeyPrefix) || crypt.CheckUnlockKey(key) != nil {
		t.Fatalf("drawn key %q", key)
	}
	if c := e.cluster(); !c.Spec.Autolock || string(c.UnlockKey) != key {
		t.Fatalf("cluster object: autolock %v", c.Spec.Autolock)
	}
	if got := must(e.s.GetUnlockKey()); got != key {
		t.Fatal("GetUnlockKey gives another key")
	}
	// On again: the same key, no write.
	v := e.cluster().Meta.GetVersion()
	if again := must(call(e, func(done func(string, error)) { e.s.SetAutolock(true, "", done) })); again != key {
		t.Fatal("turning autolock on again changed the key")
	}
	if e.cluster().Meta.GetVersion() != v {
		t.Fatal("a no-op wrote the cluster object")
	}
	must(call(e, func(done func(string, error)) { e.s.SetAutolock(false, "", done) }))
	if c := e.cluster(); c.Spec.Autolock || len(c.UnlockKey) != 0 {
		t.Fatal("autolock off left a key")
	}
	_, err = call(e, func(done func(string, error)) { e.s.RotateUnlockKey("", done) })
	if !errors.Is(err, controlapi.ErrFailedPrecondition) {
		t.Fatalf("rotation with autolock off: %v", err)
	}
}

func TestRotateUnlockKeyAndPassphrase(t *testing.T) {
	e := newEnv(t)
	defer e.k.Activate()()
	e.createCluster()
	_, err := call(e, func(done func(string, error)) { e.s.SetAutolock(true, "too short", done) })
	if !errors.Is(err, controlapi.ErrInvalidArgument) {
		t.Fatalf("short passphrase: %v", err)
	}
	const pass = "a long enough passphrase"
	if got := must(call(e, func(done func(string, error)) { e.s.SetAutolock(true, pass, done) })); got != pass {
		t.Fatalf("key %q", got)
	}
	k2 := must(call(e, func(done func(string, error)) { e.s.RotateUnlockKey("", done) }))
	if k2 == pass || string(e.cluster().UnlockKey) != k2 {
		t.Fatal("rotation did not set a new key")
	}
}

func TestRotateDataKeyCountsUp(t *testing.T) {
	e := newEnv(t)
	defer e.k.Activate()()
	e.createCluster()
	for want := uint64(1); want <= 3; want++ {
		n := must(call(e, e.s.RotateDataKey))
		if got := e.cluster().EncryptionKeyLamport; got != want || n != want {
			t.Fatalf("lamport %d, want %d", got, want)
		}
	}
}

func TestAutolockMethodsAreListed(t *testing.T) {
	for _, m := range []string{controlapi.MethodGetUnlockKey, controlapi.MethodSetAutolock,
		controlapi.MethodRotateUnlockKey, controlapi.MethodRotateDataKey} {
		if !slices.Contains(controlapi.Methods, m) {
			t.Errorf("%s is not in Methods: authorization would not know it", m)
		}
	}
}
