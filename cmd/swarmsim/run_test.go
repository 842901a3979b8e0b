package main

import (
	"bytes"
	"strings"
	"testing"
)

// A seed given on the command line is the one the header and the summary
// name, and the summary no longer lists the file's default seed as used.
func TestRunSaysWhichSeedRan(t *testing.T) {
	var out bytes.Buffer
	cmd := runCmd()
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs([]string{"--seed", "7", "../../scenarios/leader-crash.yaml"})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	s := out.String()
	if !strings.Contains(s, ", seed 7, up to") || !strings.Contains(s, "(seed 7)") {
		t.Errorf("the output does not name seed 7:\n%s", s)
	}
	if strings.Contains(s, "seed=1") {
		t.Errorf("the summary says the default seed was used:\n%s", s)
	}
}
