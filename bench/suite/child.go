package suite

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/swarmsim/swarmsim/bench/cpuprof"
	"github.com/swarmsim/swarmsim/bench/failover"
	"github.com/swarmsim/swarmsim/bench/scale"
	"github.com/swarmsim/swarmsim/scenarios"
)

// A child runs one job and prints one JSON object per line on stdout:
// {"progress": F} now and then, and one {"result": ...} per trial or run.
type childLine struct {
	Progress *float64        `json:"progress,omitempty"`
	Result   json.RawMessage `json:"result,omitempty"`
	Error    string          `json:"error,omitempty"`
}

// profiled is a scale-profile job's result.
type profiled struct {
	Result scale.Result    `json:"result"`
	Shares []cpuprof.Share `json:"shares"`
}

// job is one unit of work that may run in a child process.
type job struct {
	kind     string // failover-leader, failover-worker, scale
	args     []string
	weight   float64
	results  int // result lines expected
	onResult func(json.RawMessage) error
}

// ChildMain runs the job args describe and writes its lines to w. The
// command's hidden child subcommand calls it; it is the other end of
// runJobs.
func ChildMain(args []string, w io.Writer) error {
	if len(args) == 0 {
		return errors.New("bench child: no job")
	}
	enc := json.NewEncoder(w)
	emit := func(v any) error {
		data, err := json.Marshal(v)
		if err != nil {
			return err
		}
		return enc.Encode(childLine{Result: data})
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	seeds := fs.String("seeds", "1", "")
	election := fs.Int("election", 0, "")
	file := fs.String("scenario", "", "")
	workers := fs.Int("workers", 0, "")
	virtual := fs.Duration("virtual", scale.DefaultVirtual, "")
	seed := fs.Uint64("seed", 1, "")
	managers := fs.Int("managers", 3, "")
	path := fs.String("path", "", "")
	writes := fs.Int("writes", 0, "")
	payload := fs.Int("payload", 0, "")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("bench child %s: %w", args[0], err)
	}
	switch args[0] {
	case "failover-leader", "failover-worker":
		sc, err := loadScenario(*file)
		if err != nil {
			return err
		}
		list, err := scenarios.ParseSeeds(*seeds)
		if err != nil {
			return err
		}
		// A failed trial is a result too (with its error), so that one
		// bad seed among thousands is reported, not fatal.
		for _, s := range list {
			var res any
			if args[0] == "failover-leader" {
				r, err := failover.RunLeaderTrial(failover.WithElection(sc, *election), s)
				if err != nil {
					r.Err = err.Error()
				}
				res = r
			} else {
				r, err := failover.RunWorkerTrial(sc, s)
				if err != nil {
					r.Err = err.Error()
				}
				res = r
			}
			if err := emit(res); err != nil {
				return err
			}
		}
		return nil
	case "scale":
		res, err := scale.Run(*workers, *virtual, *seed, func(f float64) {
			_ = enc.Encode(childLine{Progress: &f})
		})
		if err != nil {
			return enc.Encode(childLine{Error: err.Error()})
		}
		return emit(res)
	case "raft-writes":
		n, err := raftWrites(*managers, *path, *writes, *payload)
		if err != nil {
			return enc.Encode(childLine{Error: err.Error()})
		}
		return emit(n)
	case "scale-profile":
		res, shares, err := scale.Profile(*workers, *virtual, *seed)
		if err != nil {
			return enc.Encode(childLine{Error: err.Error()})
		}
		return emit(profiled{Result: res, Shares: shares})
	}
	return fmt.Errorf("bench child: unknown job %q", args[0])
}

// loadScenario reads the failover scenario: file, or the built-in one.
func loadScenario(file string) (*scenarios.Scenario, error) {
	if file == "" {
		return failover.DefaultScenario()
	}
	return scenarios.ParseFile(file)
}

// runJobs runs jobs, up to jobs at a time, in child processes when
// o.Child is set and one after another in this process otherwise. It
// feeds every result to its job's onResult, in each job's order, and
// reports progress.
func (o *Options) runJobs(jobs []job, parallel int) error {
	if o.Child == nil {
		for _, j := range jobs {
			var buf bytes.Buffer
			if err := ChildMain(append([]string{j.kind}, j.args...), &buf); err != nil {
				return err
			}
			if err := o.consume(j, &buf); err != nil {
				return err
			}
		}
		return nil
	}
	parallel = max(1, parallel)
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	queue := make(chan job)
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range queue {
				mu.Lock()
				failed := firstErr != nil
				mu.Unlock()
				if failed {
					continue
				}
				err := o.runChild(j, &mu)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	for _, j := range jobs {
		queue <- j
	}
	close(queue)
	wg.Wait()
	return firstErr
}

func (o *Options) runChild(j job, mu *sync.Mutex) error {
	cmd := o.Child(append([]string{j.kind}, j.args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("bench: start child %s: %w", j.kind, err)
	}
	err = o.consumeLocked(j, out, mu)
	werr := cmd.Wait()
	if err != nil {
		return err
	}
	if werr != nil {
		return fmt.Errorf("bench: child %s %s: %w: %s", j.kind, strings.Join(j.args, " "), werr, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// consume reads a job's lines in this process.
func (o *Options) consume(j job, r io.Reader) error {
	var mu sync.Mutex
	return o.consumeLocked(j, r, &mu)
}

// consumeLocked reads a job's lines, calling onResult under mu.
func (o *Options) consumeLocked(j job, r io.Reader, mu *sync.Mutex) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	got := 0
	per := j.weight / float64(max(1, j.results))
	shown := 0.0 // weight already reported through progress lines
	for sc.Scan() {
		var line childLine
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return fmt.Errorf("bench: child %s: bad line %q: %w", j.kind, sc.Text(), err)
		}
		switch {
		case line.Error != "":
			return fmt.Errorf("bench: %s", line.Error)
		case line.Progress != nil:
			w := *line.Progress * j.weight
			if w > shown {
				o.Progress.Advance(w - shown)
				shown = w
			}
		case line.Result != nil:
			mu.Lock()
			err := j.onResult(line.Result)
			mu.Unlock()
			if err != nil {
				return err
			}
			got++
			if j.results > 1 {
				o.Progress.Done(per)
			} else {
				o.Progress.Done(j.weight - shown)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if got != j.results {
		return fmt.Errorf("bench: child %s %s gave %d results of %d", j.kind, strings.Join(j.args, " "), got, j.results)
	}
	return nil
}
