package e2e

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/swarmsim/swarmsim/scenarios"
)

// TestScenarioFiles runs scenario files against real clusters through
// scenarios.RunReal, the function `swarmsim run --real` calls.
func TestScenarioFiles(t *testing.T) {
	needDocker(t)
	for i, sc := range parsed {
		t.Run(strings.TrimSuffix(filepath.Base(scenarioFiles[i]), ".yaml"), func(t *testing.T) {
			var out, logs strings.Builder
			res, err := scenarios.RunReal(sc, scenarios.Options{Out: &out, Log: &logs, RealImages: images})
			if err != nil {
				t.Fatalf("%s: %v", scenarioFiles[i], err)
			}
			scenarios.WriteSummary(&out, res)
			if !res.Passed {
				t.Fatalf("%s failed:\n%s\nthe nodes' warnings and errors:\n%s", scenarioFiles[i], out.String(), troubles(logs.String()))
			}
			t.Logf("\n%s", out.String())
			checkTermsLed(t, res.Notes, sc.Name)
			faulty := sc.Network.Loss > 0 || sc.Network.Duplicate > 0 || sc.Network.Reorder
			checkNetworkSet(t, res.Notes, len(sc.Cluster.InitialNodes()), faulty)
			if sc.Clients != nil {
				checkClientsRan(t, res.Notes)
				checkDigestsShared(t, res.Notes)
			}
		})
	}
}

// checkClientsRan fails the test unless the summary says the clients had
// operations answered and their history was checked to the end: a pass
// with an empty or unproven history checked nothing.
func checkClientsRan(t *testing.T, notes []string) {
	t.Helper()
	answered := -1
	for _, n := range notes {
		if strings.Contains(n, "not proven") {
			t.Errorf("the linearizability check did not finish: %s", n)
		}
		if rest, ok := strings.CutPrefix(n, "clients: "); ok {
			if _, err := fmt.Sscanf(rest, "%d operations answered", &answered); err != nil {
				t.Fatalf("clients note %q: %v", n, err)
			}
		}
	}
	if answered <= 0 {
		t.Errorf("the clients had no operation answered (notes %q)", notes)
	}
}

// checkDigestsShared fails the test unless the summary says two managers
// reported the same block of applied entries: a file with clients writes
// enough for committed-stays-committed to compare something.
func checkDigestsShared(t *testing.T, notes []string) {
	t.Helper()
	for _, n := range notes {
		if rest, ok := strings.CutPrefix(n, "committed-stays-committed: "); ok {
			var blocks, shared int
			if _, err := fmt.Sscanf(rest, "%d blocks of applied entries reported, %d of them", &blocks, &shared); err != nil {
				t.Fatalf("committed-stays-committed note %q: %v", n, err)
			}
			if shared == 0 {
				t.Errorf("no block of applied entries was reported by two managers: %s", n)
			}
			return
		}
	}
	t.Errorf("no committed-stays-committed note among %q", notes)
}

// checkNetworkSet fails the test if the summary says the file's network
// model was set on fewer links than n nodes have, or, for a file whose
// model is faulty, does not say it was set.
func checkNetworkSet(t *testing.T, notes []string, n int, faulty bool) {
	t.Helper()
	seen := false
	for _, note := range notes {
		if rest, ok := strings.CutPrefix(note, "network: "); ok {
			var links int
			if _, err := fmt.Sscanf(rest, "the file's link model set on %d links", &links); err != nil {
				t.Fatalf("network note %q: %v", note, err)
			}
			if links < n*(n-1) {
				t.Errorf("the file's link model set on %d links; %d nodes have %d", links, n, n*(n-1))
			}
			seen = true
		}
	}
	if faulty && !seen {
		t.Errorf("no network note among %q, though the file's links are faulty", notes)
	}
}

// leaderChanges names the files whose first leader (m1, which ran init)
// is cut off or removed: a second manager must lead.
var leaderChanges = map[string]bool{"real-leader-isolated": true, "real-membership": true, "real-link-faults": true}

// checkTermsLed fails the test unless the summary says the managers
// reported the terms they led: at least one, and two or more, by two
// managers or more, in a file whose leader is cut off or removed.
func checkTermsLed(t *testing.T, notes []string, name string) {
	t.Helper()
	for _, n := range notes {
		if rest, ok := strings.CutPrefix(n, "one-leader-per-term: "); ok {
			var terms, managers int
			if _, err := fmt.Sscanf(rest, "%d terms led, by %d managers", &terms, &managers); err != nil {
				t.Fatalf("one-leader-per-term note %q: %v", n, err)
			}
			want := 1
			if leaderChanges[name] {
				want = 2
			}
			if terms < want || managers < want {
				t.Errorf("%d terms led by %d managers, want %d or more of each: %s", terms, managers, want, n)
			}
			return
		}
	}
	t.Errorf("no one-leader-per-term note among %q", notes)
}

// TestRealRefusesLargeClusters: a file with more nodes than real mode can
// start is refused, by file and key, before anything starts.
func TestRealRefusesLargeClusters(t *testing.T) {
	sc, err := scenarios.ParseFile("../scenarios/scale-10k-workers.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = scenarios.RunReal(sc, scenarios.Options{})
	if err == nil || !strings.Contains(err.Error(), "../scenarios/scale-10k-workers.yaml: cluster: ") || !errors.Is(err, scenarios.ErrNotReal) {
		t.Fatalf("RunReal(scale-10k-workers.yaml) = %v, want a refusal naming file and key", err)
	}
}

// troubles keeps the node headers and the warning and error lines of the
// nodes' logs, and the last lines of each node's.
func troubles(logs string) string {
	var out []string
	var tail []string
	for line := range strings.Lines(logs) {
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "== "):
			out = append(out, tail...)
			tail = nil
			out = append(out, line)
		case strings.Contains(line, "level=WARN"), strings.Contains(line, "level=ERROR"):
			out = append(out, line)
		default:
			tail = append(tail, line)
			if len(tail) > 10 {
				tail = tail[1:]
			}
		}
	}
	return strings.Join(append(out, tail...), "\n")
}
