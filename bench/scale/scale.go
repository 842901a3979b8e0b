package scale

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/swarmsim/swarmsim/bench/cpuprof"
	"github.com/swarmsim/swarmsim/scenarios"
)

// Managers is the number of managers of every run.
const Managers = 5

// DefaultVirtual is how long each run simulates.
const DefaultVirtual = 10 * time.Minute

// MemoryLimit is the Go runtime's soft memory limit during a run (unless
// GOMEMLIMIT sets one): the target is 100k workers in less than 8 GiB,
// and with the default GOGC the heap may grow to twice what is live
// before a collection; near the limit the collector runs more often
// instead. Smaller runs never come near it.
const MemoryLimit = 7 << 30

// Scenario is the file a run simulates: Managers managers and workers
// workers with the scenario format's defaults (SwarmKit's: raft tick 1s,
// dispatcher heartbeat 5s, 1ms links and fsyncs, containers start in 1s),
// one global service on the workers, and an expectation every virtual
// minute that every worker still runs its task.
func Scenario(workers int, virtual time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, `name: scale-%d
about: >
  %d managers and %d workers, each worker heartbeating to the leader and
  running one task of a global service, for %s of virtual time.
duration: %s
cluster:
  managers: %d
  workers:
    - count: %d
services:
  - name: work
    image: work:1
    mode: global
    constraints: [node.role==worker]
steps:
  - expect: {service: work, running: %d, within: %s}
`, workers, Managers, workers, scenarios.FormatDuration(virtual), scenarios.FormatDuration(virtual),
		Managers, workers, workers, scenarios.FormatDuration(virtual))
	for t := time.Minute; t <= virtual; t += time.Minute {
		fmt.Fprintf(&b, "  - at: %s\n    expect: {service: work, running: %d, within: 1s}\n", scenarios.FormatDuration(t), workers)
	}
	if virtual%time.Minute != 0 {
		fmt.Fprintf(&b, "  - at: %s\n    expect: {service: work, running: %d, within: 1s}\n", scenarios.FormatDuration(virtual), workers)
	}
	return b.String()
}

// Result is what one run measured.
type Result struct {
	Workers int           `json:"workers"`
	Seed    uint64        `json:"seed"`
	Virtual time.Duration `json:"virtual_ns"`
	// Wall and CPU cover the whole run: building the cluster, setting up
	// the service and simulating (CPU counts every thread: the garbage
	// collector's too).
	Wall time.Duration `json:"wall_ns"`
	CPU  time.Duration `json:"cpu_ns"`
	// Thread is the CPU time of the thread that ran the simulation
	// (cpuprof.OnThread): what an idle machine would show as wall time,
	// give or take the garbage collector, whatever else runs on this one.
	Thread time.Duration `json:"thread_ns"`
	Events uint64        `json:"events"`
	// Converged is the virtual time at which every worker ran its task.
	Converged time.Duration `json:"converged_ns"`
	// PeakHeap is the largest Go heap (objects, live or not yet swept)
	// seen by sampling every 50ms; PeakRSS the process's peak resident
	// set (VmHWM), meaningful when the process ran nothing else.
	PeakHeap uint64 `json:"peak_heap_bytes"`
	PeakRSS  uint64 `json:"peak_rss_bytes"`
	// TraceHash identifies the run: the same for every run of one size.
	TraceHash string `json:"trace_hash"`
}

// Nodes is the number of simulated machines.
func (r Result) Nodes() int { return r.Workers + Managers }

// Ratio is virtual time per wall time.
func (r Result) Ratio() float64 { return r.Virtual.Seconds() / r.Wall.Seconds() }

// ThreadRatio is virtual time per second of the simulating thread's CPU
// time (0 where the platform cannot say).
func (r Result) ThreadRatio() float64 {
	if r.Thread <= 0 {
		return 0
	}
	return r.Virtual.Seconds() / r.Thread.Seconds()
}

// EventsPerSecond is events run per wall second.
func (r Result) EventsPerSecond() float64 { return float64(r.Events) / r.Wall.Seconds() }

// Run simulates workers workers for virtual time with the given seed and
// measures it. progress, when set, hears the fraction of virtual time
// done after every virtual minute.
func Run(workers int, virtual time.Duration, seed uint64, progress func(float64)) (Result, error) {
	res := Result{Workers: workers, Seed: seed}
	sc, err := scenarios.Parse(fmt.Sprintf("scale-%d.yaml", workers), []byte(Scenario(workers, virtual)))
	if err != nil {
		return res, fmt.Errorf("scale: %w", err)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(MemoryLimit))
	}
	runtime.GC()
	stop := sampleHeap(&res.PeakHeap)
	var out io.Writer = io.Discard
	if progress != nil {
		steps := 0
		out = lineFunc(func() {
			steps++
			progress(min(1, float64(steps-1)/float64(len(sc.Steps)-1)))
		})
	}
	cpu0 := cpuTime()
	w0 := time.Now()
	var r *scenarios.Result
	res.Thread = cpuprof.OnThread(func() {
		r, err = scenarios.RunSimulation(sc, scenarios.Options{Out: out, Seed: &seed})
	})
	res.Wall = time.Since(w0)
	res.CPU = cpuTime() - cpu0
	stop()
	if err != nil {
		return res, fmt.Errorf("scale: %d workers: %w", workers, err)
	}
	res.PeakRSS = peakRSS()
	res.Virtual, res.Events, res.TraceHash = r.Virtual, r.Events, r.TraceHashHex()
	if len(r.Steps) > 0 {
		res.Converged = r.Steps[0].Finished
	}
	if !r.Passed {
		return res, fmt.Errorf("scale: %d workers: %s", workers, r.Failure)
	}
	return res, nil
}

// lineFunc calls f once per line written.
type lineFunc func()

func (f lineFunc) Write(p []byte) (int, error) {
	for range bytes.Count(p, []byte("\n")) {
		f()
	}
	return len(p), nil
}

// sampleHeap records the largest heap seen into peak until the returned
// function is called. It reads only the runtime's metrics, never the
// simulation, so it may run beside it.
func sampleHeap(peak *uint64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() {
		metrics.Read(s)
		if s[0].Value.Kind() == metrics.KindUint64 {
			*peak = max(*peak, s[0].Value.Uint64())
		}
	}
	go func() {
		defer wg.Done()
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				read()
				return
			case <-t.C:
				read()
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// peakRSS is the process's peak resident set size (VmHWM), or 0 where
// /proc does not say.
func peakRSS() uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseUint(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
