package scenarios

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// childEnv makes the test binary a sweep child: it runs the seeds of one
// file and prints one ResultJSON per line (see Sweep).
const childEnv = "SWARMSIM_SWEEP_CHILD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(sweepChild(spec))
	}
	os.Exit(m.Run())
}

func sweepChild(spec string) int {
	file, list, _ := strings.Cut(spec, "|")
	sc, err := ParseFile(file)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	seeds, err := ParseSeeds(list)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	enc := json.NewEncoder(os.Stdout)
	for _, seed := range seeds {
		res, err := RunSimulation(sc, Options{Seed: &seed})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		if err := enc.Encode(res.JSON()); err != nil {
			return 2
		}
	}
	return 0
}

// scenarioFiles lists every scenario checked in.
func scenarioFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenario files found: %v", err)
	}
	return files
}

func runFile(t *testing.T, file string, seed uint64) *Result {
	t.Helper()
	sc, err := ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	res, err := RunSimulation(sc, Options{Seed: &seed})
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return res
}

// Every scenario checked in must pass under its own seed; this is what CI
// proves about the cluster.
func TestScenarios(t *testing.T) {
	for _, file := range scenarioFiles(t) {
		t.Run(strings.TrimSuffix(file, ".yaml"), func(t *testing.T) {
			sc, err := ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			res, err := RunSimulation(sc, Options{Out: &out})
			if err != nil {
				t.Fatal(err)
			}
			WriteSummary(&out, res)
			if !res.Passed {
				t.Fatalf("%s failed: %s\n%s", file, res.Failure, out.String())
			}
			t.Logf("%s", out.String())
		})
	}
}

// One seed twice gives one trace; another seed gives another. Over every
// file in scenarios/.
func TestDeterminism(t *testing.T) {
	for _, file := range scenarioFiles(t) {
		t.Run(strings.TrimSuffix(file, ".yaml"), func(t *testing.T) {
			sc, err := ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			a := runFile(t, file, sc.Seed)
			b := runFile(t, file, sc.Seed)
			if a.TraceHash != b.TraceHash || a.Events != b.Events {
				t.Fatalf("seed %d twice: trace %s (%d events) then %s (%d events)",
					sc.Seed, a.TraceHashHex(), a.Events, b.TraceHashHex(), b.Events)
			}
			c := runFile(t, file, sc.Seed+1)
			if c.TraceHash == a.TraceHash {
				t.Fatalf("seeds %d and %d gave the same trace %s", sc.Seed, sc.Seed+1, a.TraceHashHex())
			}
		})
	}
}

// Sweeps, in child processes on every core, break no invariant and fail
// no step: 200 seeds of the leader crash under client load, of a leader
// failing over in the middle of a rolling update and of a partition during
// one; 40 of each chaos file (where sweeps found the bugs their files
// name), whose runs are longer. `make sweep` runs every file over 500.
func TestSweeps(t *testing.T) {
	if testing.Short() {
		t.Skip("sweeps: skipped in -short mode")
	}
	for _, sw := range []struct{ file, seeds string }{
		{"leader-crash.yaml", "1..200"},
		{"leader-failover-during-update.yaml", "1..200"},
		{"real-partition.yaml", "1..200"},
		{"chaos-faults-during-update.yaml", "1..40"},
		{"chaos-operator-steps.yaml", "1..40"},
	} {
		t.Run(strings.TrimSuffix(sw.file, ".yaml"), func(t *testing.T) { sweep(t, sw.file, sw.seeds) })
	}
}

func sweep(t *testing.T, file, list string) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	seeds, _ := ParseSeeds(list)
	results, err := Sweep(seeds, 2, func(s string) *exec.Cmd {
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), childEnv+"="+file+"|"+s)
		return cmd
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != len(seeds) {
		t.Fatalf("%d results for %d seeds", len(results), len(seeds))
	}
	for _, r := range results {
		if !r.Passed {
			t.Errorf("seed %d: %s\n  replay: swarmsim run scenarios/%s --seed %d", r.Seed, r.Failure, file, r.Seed)
		}
	}
}
