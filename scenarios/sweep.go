package scenarios

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// ParseSeeds reads a seed list: "7", "1..200", or several joined by
// commas ("1..10,42").
func ParseSeeds(s string) ([]uint64, error) {
	var out []uint64
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "..")
		a, err := strconv.ParseUint(lo, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("seeds %q: %q is not a seed", s, lo)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 64); err != nil {
				return nil, fmt.Errorf("seeds %q: %q is not a seed", s, hi)
			}
		}
		if b < a {
			return nil, fmt.Errorf("seeds %q: range %d..%d runs backwards", s, a, b)
		}
		if b-a >= 1_000_000 {
			return nil, fmt.Errorf("seeds %q: more than a million seeds", s)
		}
		for x := a; x <= b; x++ {
			out = append(out, x)
		}
	}
	return out, nil
}

// FormatSeeds writes seeds compactly, as ParseSeeds reads them.
func FormatSeeds(seeds []uint64) string {
	var parts []string
	for i := 0; i < len(seeds); {
		j := i
		for j+1 < len(seeds) && seeds[j+1] == seeds[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, strconv.FormatUint(seeds[i], 10))
		} else {
			parts = append(parts, fmt.Sprintf("%d..%d", seeds[i], seeds[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// SweepChunk is how many seeds one child process runs: enough to pay for
// its start, few enough to keep every worker busy to the end.
const SweepChunk = 8

// Sweep runs a scenario file under many seeds, jobs child processes at a
// time (each simulation needs a process of its own: crypto/rand.Reader is
// swapped process-wide while one runs). command makes the child that runs
// the given seeds and prints one ResultJSON per line (`swarmsim run FILE
// --seeds S --json`). progress, when set, hears every result as it comes.
// Results come back in seed order.
func Sweep(seeds []uint64, jobs int, command func(seeds string) *exec.Cmd, progress func(ResultJSON)) ([]ResultJSON, error) {
	jobs = max(jobs, 1)
	chunks := make(chan []uint64)
	go func() {
		for i := 0; i < len(seeds); i += SweepChunk {
			chunks <- seeds[i:min(i+SweepChunk, len(seeds))]
		}
		close(chunks)
	}()
	var (
		mu       sync.Mutex
		results  []ResultJSON
		firstErr error
		wg       sync.WaitGroup
	)
	for range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for chunk := range chunks {
				got, err := runChild(command(FormatSeeds(chunk)), chunk)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				results = append(results, got...)
				if progress != nil {
					for _, r := range got {
						progress(r)
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	slices.SortFunc(results, func(a, b ResultJSON) int {
		switch {
		case a.Seed < b.Seed:
			return -1
		case a.Seed > b.Seed:
			return 1
		}
		return 0
	})
	return results, firstErr
}

func runChild(cmd *exec.Cmd, seeds []uint64) ([]ResultJSON, error) {
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("sweep: start %s: %w", cmd.Path, err)
	}
	var got []ResultJSON
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r ResultJSON
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.Scenario != "" {
			got = append(got, r)
		}
	}
	werr := cmd.Wait()
	if len(got) != len(seeds) {
		return got, fmt.Errorf("sweep: seeds %s: child gave %d results of %d (%v): %s",
			FormatSeeds(seeds), len(got), len(seeds), werr, strings.TrimSpace(stderr.String()))
	}
	return got, nil
}
