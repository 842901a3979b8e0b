package cpuprof

import (
	"regexp"
	"testing"
	"time"
)

//go:noinline
func spinOuter(d time.Duration) int { return spinInner(d) }

//go:noinline
func spinInner(d time.Duration) int {
	n := 0
	for end := time.Now().Add(d); time.Now().Before(end); {
		n++
	}
	return n
}

// TestRecord profiles a function that spins in two named functions and
// finds its time under the innermost stage that matches.
func TestRecord(t *testing.T) {
	stages := []Stage{
		{"inner", regexp.MustCompile(`cpuprof\.spinInner$`)},
		{"outer", regexp.MustCompile(`cpuprof\.spinOuter$`)},
	}
	shares, err := Record(stages, func() error {
		spinOuter(300 * time.Millisecond)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(shares) != 3 || shares[0].Stage != "inner" || shares[2].Stage != Other {
		t.Fatalf("%+v", shares)
	}
	// The spin dominates; "outer" gets nothing, since "inner" is nearer
	// the leaf on every sample.
	if shares[0].Percent < 50 || shares[1].Seconds != 0 {
		t.Fatalf("%+v", shares)
	}
	sum := 0.0
	for _, s := range shares {
		sum += s.Percent
	}
	if sum < 99.9 || sum > 100.1 {
		t.Fatalf("shares add up to %v%%", sum)
	}
}

// OnThread counts the CPU its function burns on its thread, and not the
// time it waits. Neither check depends on how loaded the machine is: the
// spin runs until the thread's own clock moved, and a sleep burns nothing.
func TestOnThread(t *testing.T) {
	if _, ok := ThreadCPU(); !ok {
		t.Skip("no per-thread CPU clock on this platform")
	}
	var burnt time.Duration
	d := OnThread(func() {
		t0, _ := ThreadCPU()
		for burnt < 50*time.Millisecond {
			t1, _ := ThreadCPU()
			burnt = t1 - t0
		}
	})
	if d < burnt {
		t.Fatalf("a function that burnt %v of its thread's CPU was counted %v", burnt, d)
	}
	if s := OnThread(func() { time.Sleep(100 * time.Millisecond) }); s > 50*time.Millisecond {
		t.Fatalf("a 100ms sleep was counted %v of thread CPU", s)
	}
}
