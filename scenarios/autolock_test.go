package scenarios

import (
	"strings"
	"testing"
	"time"

	"github.com/swarmsim/swarmsim/sim/cluster"
)

// runScenario runs a file to its end through the runner and fails the
// test unless it passed.
func runScenario(t *testing.T, file string) *SimWorld {
	t.Helper()
	sc, err := ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewSimWorld(sc, sc.Seed, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	res := NewRunner(sc, w, &out, time.Now).Run(sc.Seed)
	if !res.Passed {
		w.Close()
		t.Fatalf("%s failed: %s\n%s", file, res.Failure, out.String())
	}
	return w
}

func upManagers(w *SimWorld) []*cluster.Machine {
	var out []*cluster.Machine
	for _, m := range w.c.Machines() {
		if m.Manager && m.Status == cluster.NodeUp && m.Engine != nil {
			out = append(out, m)
		}
	}
	return out
}

// After the rotations of data-key-rotation-under-load (autolock on, off,
// on), every manager's disk holds one data key, the newest: snapshots
// compacted every record the older ones sealed, and the key record let
// them go.
func TestDataKeyRotationRetiresOldKeys(t *testing.T) {
	w := runScenario(t, "data-key-rotation-under-load.yaml")
	defer w.Close()
	for _, m := range upManagers(w) {
		d := m.Engine.Disk()
		cur, all := d.DataKeyIDs()
		if cur < 3 || len(all) != 1 || all[0] != cur {
			t.Errorf("%s: data key %d, keys in the key record %v; want only the newest, 3 or later", m.Name, cur, all)
		}
		if d.Locked() || d.UnlockKey() != w.unlockKey() || !d.KeysDurable() {
			t.Errorf("%s: not wrapped by the cluster's unlock key", m.Name)
		}
	}
}

// Data-key rotation through the control API (`RotateDataKey`), three
// times while clients write: each manager switches key per rotation,
// the old keys leave once snapshots compact their records, and every
// manager restarts from its disk after a crash of all of them.
func TestRotateDataKeyUnderLoad(t *testing.T) {
	sc, err := Parse("rotate.yaml", []byte(`
name: rotate-data-key
duration: 2m
cluster:
  managers: 3
  raft: {tick: 100ms, snapshot_every: 100}
  disk: {sync: 1ms..5ms}
clients: {count: 4, rate: 200/s, keys: 10}
`))
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewSimWorld(sc, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.RunUntil(3*time.Second, nil)
	for i := 1; i <= 3; i++ {
		var rotated bool
		var rerr error
		w.rotateDataKey(func(err error) { rotated, rerr = true, err })
		w.RunUntil(w.Now()+10*time.Second, func() bool { return rotated })
		if !rotated || rerr != nil {
			t.Fatalf("rotation %d: finished %v, %v", i, rotated, rerr)
		}
		for _, m := range upManagers(w) {
			if g := m.Engine.Disk().DataKeyGeneration(); g != uint64(i) {
				t.Fatalf("%s acted on rotation %d, want %d", m.Name, g, i)
			}
		}
		w.RunUntil(w.Now()+2*time.Second, nil)
	}
	// Load goes on: snapshots every 100 entries compact the old records.
	w.RunUntil(w.Now()+5*time.Second, nil)
	for _, m := range upManagers(w) {
		cur, all := m.Engine.Disk().DataKeyIDs()
		if cur != 4 || len(all) != 1 {
			t.Errorf("%s: data key %d of %v; want 4 alone", m.Name, cur, all)
		}
	}
	for _, m := range upManagers(w) {
		if err := w.c.Crash(m.Name); err != nil {
			t.Fatal(err)
		}
	}
	w.RunUntil(w.Now()+time.Second, nil)
	for _, m := range w.c.Machines() {
		if err := w.c.Restart(m.Name); err != nil {
			t.Fatal(err)
		}
		if m.Engine == nil || m.Engine.Locked() {
			t.Fatalf("%s did not start from its disk: %v", m.Name, m.Err())
		}
	}
	w.RunUntil(w.Now()+10*time.Second, func() bool { return w.Leader() != "" })
	if w.Leader() == "" {
		t.Fatal("no leader after the restart")
	}
	w.RunUntil(w.Now()+5*time.Second, nil)
	w.Stats() // ends the run: checks the clients' history
	if v := w.Violation(); v != nil {
		t.Fatal(v)
	}
}
