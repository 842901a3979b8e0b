package suite

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/swarmsim/swarmsim/bench/report"
)

// The raft-writes child job runs each path's writes and says how many
// committed; it refuses a path it does not know.
func TestRaftWritesChild(t *testing.T) {
	for _, path := range raftPaths {
		var out bytes.Buffer
		if err := ChildMain([]string{"raft-writes", "-managers", "3", "-path", path, "-writes", "300", "-payload", "62"}, &out); err != nil {
			t.Fatal(err)
		}
		var line childLine
		if err := json.Unmarshal(out.Bytes(), &line); err != nil || string(line.Result) != "300" {
			t.Fatalf("%s: %q (%v)", path, out.String(), err)
		}
	}
	var out bytes.Buffer
	if err := ChildMain([]string{"raft-writes", "-path", "sideways", "-writes", "1"}, &out); err != nil || !strings.Contains(out.String(), "unknown path") {
		t.Fatalf("%q, %v", out.String(), err)
	}
}

// raftInstructions counts every path under callgrind, through child
// processes of this test binary (TestMain runs the job), and adds the
// counts and ratios.
func TestRaftInstructions(t *testing.T) {
	if _, err := exec.LookPath("valgrind"); err != nil {
		t.Skip("valgrind is not installed: instruction counts are not taken")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	saved := instrCounts
	instrCounts = [2]int{1000, 5000}
	defer func() { instrCounts = saved }()
	r := &report.Report{Bench: "raft"}
	o := &Options{Jobs: 2, Progress: report.NewPlainProgress(io.Discard), Child: func(args ...string) *exec.Cmd {
		cmd := exec.Command(self, "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+strings.Join(args, "\x1f"))
		return cmd
	}}
	if err := raftInstructions(r, raftSizes{managers: []int{3}}, o, map[int]int{3: 62}); err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	for _, path := range raftPaths {
		f, ok := r.Find("instructions_per_write", report.P("managers", 3, "path", path))
		if !ok || f.Value <= 0 {
			t.Fatalf("%s: %+v", path, f)
		}
		counts[path] = f.Value
	}
	// Raw raft is the floor; batching packs writes and costs less per
	// write than one entry each.
	if counts["raw"] >= counts["store-unbatched"] || counts["store-batched"] >= counts["store-unbatched"] {
		t.Fatalf("instructions per write: %v", counts)
	}
	if f, ok := r.Find("store_to_raw_instruction_ratio", report.P("managers", 3, "mode", "batched")); !ok || f.Value <= 0 {
		t.Fatalf("ratio: %+v", f)
	}
}

// childEnv makes this test binary a bench child: TestMain runs the job
// it names (its arguments separated by unit separators, 0x1f) instead of the tests.
const childEnv = "SWARMSIM_SUITE_TEST_CHILD"

func TestMain(m *testing.M) {
	if args := os.Getenv(childEnv); args != "" {
		if err := ChildMain(strings.Split(args, "\x1f"), os.Stdout); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
