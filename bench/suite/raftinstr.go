package suite

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strconv"
	"sync"

	"github.com/swarmsim/swarmsim/bench/raftbench"
	"github.com/swarmsim/swarmsim/bench/report"
)

// The instruction counts: each path's writes run in a child process under
// valgrind's callgrind, which counts the instructions the process ran,
// garbage collection off (GOGC=off) so that its cycles do not fall
// differently from one run to the next. Each path runs twice, with
// instrCounts[0] and [1] writes after the same set-up; the difference
// over the extra writes is the count per write, the set-up cancelling
// out. Unlike the wall-clock rates, a count does not move with the other
// load of the machine: two runs of one binary agree within a fraction of
// a percent.
var instrCounts = [2]int{20000, 60000}

// raftPaths are the paths whose instructions are counted.
var raftPaths = []string{"store-unbatched", "store-batched", "raw"}

// raftWrites is the raft-writes child job: one cluster of the path (its
// writes in flight and 16-byte values as the wall-clock runs), n writes.
func raftWrites(managers int, path string, n, payload int) (int, error) {
	switch path {
	case "raw":
		rc, err := raftbench.NewRawCluster(managers, max(payload, 1), raftWindow)
		if err != nil {
			return 0, err
		}
		m, err := rc.Write(n)
		return m.Writes, err
	case "store-unbatched", "store-batched":
		sc, err := raftbench.NewStoreCluster(raftbench.Config{Managers: managers, Latency: rawLatency, DiskSync: raftDisk,
			Batched: path == "store-batched", Window: raftWindow, Seed: 1})
		if err != nil {
			return 0, err
		}
		defer sc.Close()
		m, err := sc.Write(n)
		return m.Writes, err
	}
	return 0, fmt.Errorf("raft-writes: unknown path %q", path)
}

var collected = regexp.MustCompile(`Collected : (\d+)`)

// raftInstructions adds instructions_per_write for every path and
// store_to_raw_instruction_ratio, when valgrind is installed and the
// benchmark runs child processes; it notes why it did not otherwise.
func raftInstructions(r *report.Report, s raftSizes, o *Options, payloads map[int]int) error {
	if o.Quick {
		return nil
	}
	vg, err := exec.LookPath("valgrind")
	if err != nil || o.Child == nil {
		r.Notes = append(r.Notes, "**Instructions.** Not counted in this run: it needs valgrind on the PATH and child processes (swarmsim bench).")
		return nil
	}
	count := func(managers int, path string, n int) (uint64, error) {
		child := o.Child("raft-writes", "-managers", strconv.Itoa(managers), "-path", path,
			"-writes", strconv.Itoa(n), "-payload", strconv.Itoa(payloads[managers]))
		cmd := exec.Command(vg, append([]string{"--tool=callgrind", "--callgrind-out-file=/dev/null", child.Path}, child.Args[1:]...)...)
		// Go's preemption signals trip callgrind: none are sent.
		cmd.Env = append(child.Environ(), "GOGC=off", "GODEBUG=asyncpreemptoff=1", "GOMAXPROCS=1")
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = io.Discard, &stderr
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("bench: callgrind %s, %d managers, %d writes: %w: %s", path, managers, n, err, lastLines(stderr.String()))
		}
		m := collected.FindStringSubmatch(stderr.String())
		if m == nil {
			return 0, fmt.Errorf("bench: callgrind %s, %d managers: no instruction count in %q", path, managers, lastLines(stderr.String()))
		}
		return strconv.ParseUint(m[1], 10, 64)
	}
	type key struct {
		managers int
		path     string
	}
	perWrite := map[key]float64{}
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, max(1, o.Jobs))
	var wg sync.WaitGroup
	for _, managers := range s.managers {
		for _, path := range raftPaths {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				var c [2]uint64
				for i, n := range instrCounts {
					v, err := count(managers, path, n)
					if err != nil {
						mu.Lock()
						firstErr = cmp.Or(firstErr, err)
						mu.Unlock()
						return
					}
					c[i] = v
				}
				mu.Lock()
				perWrite[key{managers, path}] = float64(int64(c[1]-c[0])) / float64(instrCounts[1]-instrCounts[0])
				mu.Unlock()
			}()
		}
	}
	o.Progress.Stage("raft instruction counts (callgrind)")
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	for _, managers := range s.managers {
		raw := perWrite[key{managers, "raw"}]
		for _, path := range raftPaths {
			v := perWrite[key{managers, path}]
			p := report.P("managers", managers, "path", path)
			if path != "raw" {
				p["latency"] = latencyName(rawLatency)
			}
			r.Add("instructions_per_write", report.Round(v), "instructions", p)
			if path != "raw" && v > 0 {
				mode := path[len("store-"):]
				r.Add("store_to_raw_instruction_ratio", report.Round(100*raw/v), "%",
					report.P("managers", managers, "mode", mode, "latency", latencyName(rawLatency)))
			}
		}
	}
	r.Notes = append(r.Notes, fmt.Sprintf("**Instructions.** instructions_per_write counts the instructions of one write under valgrind's callgrind: each path (%s links for the store) runs in a child process with garbage collection off, once with %d and once with %d writes after the same set-up, and the difference is divided by the %d extra writes. store_to_raw_instruction_ratio divides raw raft's count by the store path's. Wall-clock ratios can move by tens of percent from one run to the next on a shared machine; these counts do not (two runs agree within a fraction of a percent), but they leave out what instructions do not show: cache misses, and the garbage collector.",
		latencyName(rawLatency), instrCounts[0], instrCounts[1], instrCounts[1]-instrCounts[0]))
	return nil
}

// lastLines is the end of a child's stderr, for an error message.
func lastLines(s string) string {
	if len(s) > 600 {
		s = "..." + s[len(s)-600:]
	}
	return s
}
