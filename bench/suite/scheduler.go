package suite

import (
	"fmt"
	"runtime"
	"time"

	"github.com/swarmsim/swarmsim/bench/cpuprof"

	"github.com/swarmsim/swarmsim/bench/report"
	"github.com/swarmsim/swarmsim/bench/schedbench"
)

const tasksPerNode = 10

// schedTarget is the tasks placed per second wanted at the largest size.
const schedTarget = 50000

func (o *Options) schedNodes() []int {
	if o.Quick {
		return []int{1000}
	}
	return []int{1000, 10000, 100000}
}

// schedCost estimates a run's wall seconds (setup included), for the
// progress display.
func schedCost(nodes int) float64 { return float64(nodes) * 4e-4 }

func planScheduler(o *Options) {
	for _, n := range o.schedNodes() {
		o.Progress.Plan(len(schedbench.Variants)*o.Seeds, float64(len(schedbench.Variants)*o.Seeds)*schedCost(n))
	}
}

func runScheduler(o *Options) (*report.Report, error) {
	nodes := o.schedNodes()
	r := &report.Report{
		Title:   "tasks placed per second, with and without constraints and spread",
		Columns: []string{"nodes", "variant", "tasks_per_node", "tasks"},
		Order: []string{"tasks_per_second", "growth_exponent", "placement_seconds", "tasks_per_thread_second", "tasks_per_cpu_second",
			"allocs_per_task", "bytes_per_task", "setup_seconds", "growth_fit_r2"},
	}
	type agg struct{ rate, cpu, thread, elapsed, allocs, bytes, setup []float64 }
	res := map[string]map[int]*agg{}
	for _, seed := range o.seedList() {
		for _, n := range nodes {
			for _, v := range schedbench.Variants {
				o.Progress.Stage(fmt.Sprintf("scheduler nodes=%s variant=%s run=%d", sizeName(n), v, seed))
				b, thread, err := schedRun(n, v)
				if err != nil {
					return nil, fmt.Errorf("scheduler %d nodes %s: %w", n, v, err)
				}
				o.Progress.Done(schedCost(n))
				if res[v] == nil {
					res[v] = map[int]*agg{}
				}
				a := res[v][n]
				if a == nil {
					a = &agg{}
					res[v][n] = a
				}
				a.rate = append(a.rate, b.TasksPerSecond)
				a.cpu = append(a.cpu, float64(b.Tasks)/b.CPU.Seconds())
				if thread > 0 {
					a.thread = append(a.thread, float64(b.Tasks)/thread.Seconds())
				}
				a.elapsed = append(a.elapsed, b.Elapsed.Seconds())
				a.allocs = append(a.allocs, float64(b.Allocs)/float64(b.Tasks))
				a.bytes = append(a.bytes, float64(b.Bytes)/float64(b.Tasks))
				a.setup = append(a.setup, b.Setup.Seconds())
				p := schedParams(n, v)
				r.Samples = append(r.Samples,
					report.NewFigure("tasks_per_second", b.TasksPerSecond, "tasks/s", p),
					report.NewFigure("placement_seconds", b.Elapsed.Seconds(), "s", p),
					report.NewFigure("tasks_per_cpu_second", float64(b.Tasks)/b.CPU.Seconds(), "tasks/cpu-s", p))
			}
		}
	}
	var series []report.Series
	var growth []report.Series
	var fits []report.PowerFit
	for _, v := range schedbench.Variants {
		sr := report.Series{Name: v}
		gr := report.Series{Name: v}
		for _, n := range nodes {
			a, p := res[v][n], schedParams(n, v)
			f := r.Add("tasks_per_second", report.Median(a.rate), "tasks/s", p)
			r.Add("tasks_per_cpu_second", report.Median(a.cpu), "tasks/cpu-s", p)
			var tf report.Figure
			if len(a.thread) > 0 {
				tf = r.Add("tasks_per_thread_second", report.Median(a.thread), "tasks/thread-s", p)
			}
			el := r.Add("placement_seconds", report.Median(a.elapsed), "s", p)
			r.Add("allocs_per_task", report.Median(a.allocs), "allocs/task", p)
			r.Add("bytes_per_task", report.Median(a.bytes), "B/task", p)
			r.Add("setup_seconds", report.Median(a.setup), "s", p)
			sr.X, sr.Y = append(sr.X, float64(n)), append(sr.Y, f.Value)
			gr.X, gr.Y = append(gr.X, float64(n)), append(gr.Y, el.Value)
			if n == 100000 {
				t := report.Target{
					What:   fmt.Sprintf("≥ %d tasks placed per second at 100k nodes (%s)", schedTarget, v),
					Figure: f, Met: f.Value >= schedTarget,
				}
				if !t.Met && tf.Value > 0 {
					t.Note = fmt.Sprintf("per second of the scheduler thread's CPU time, which other load on the machine (load average %.1f at the start) does not slow, the rate was %s tasks/s",
						o.Machine.LoadAverage, report.FormatValue(tf.Value))
					if tf.Value >= schedTarget {
						t.Note += ": the code meets the target when it has a CPU to itself; the wall-clock figure missed it for want of one"
					}
				}
				r.Targets = append(r.Targets, t)
			}
		}
		series, growth = append(series, sr), append(growth, gr)
		if len(nodes) >= 2 {
			fit, err := report.FitPower(gr.X, gr.Y)
			if err != nil {
				return nil, err
			}
			fits = append(fits, fit)
			gp := report.P("variant", v, "tasks_per_node", tasksPerNode, "nodes", sizeRange(nodes))
			r.Add("growth_exponent", fit.Exponent, "k", gp)
			r.Add("growth_fit_r2", fit.R2, "r2", gp)
		}
	}
	for _, v := range schedbench.Variants {
		n := nodes[len(nodes)-1]
		f, _ := r.Find("tasks_per_second", report.P("nodes", n, "variant", v))
		line := fmt.Sprintf("%s: %s tasks/s at %s nodes × %d tasks", v, report.FormatValue(f.Value), sizeName(n), tasksPerNode)
		if g, ok := r.Find("growth_exponent", report.P("variant", v)); ok && g.Unit == "k" {
			line += fmt.Sprintf("; placement time grows as nodes^%s", report.FormatValue(g.Value))
		}
		r.Headline = append(r.Headline, line)
	}
	r.Plots = append(r.Plots, withFile(report.LinePlot(fmt.Sprintf("Tasks placed per second (%d tasks per node)", tasksPerNode),
		"nodes", "tasks/s", len(nodes) > 1, false, series, nil), "scheduler-throughput.svg"))
	if len(fits) > 0 {
		r.Plots = append(r.Plots, withFile(report.LinePlot("Placement time against node count, with power-law fits",
			"nodes", "placement time (s)", true, true, growth, fits), "scheduler-growth.svg"))
	}
	r.Notes = append(r.Notes,
		fmt.Sprintf(`**Workload** (bench/schedbench, the scheduler's Go benchmark too): a store holding N ready nodes (8 CPUs, 32 GiB each) and one replicated service with %d×N pending tasks (0.1 CPU, 128 MiB each). *plain*: every node is eligible. *constraints*: node.labels.tier==frontend (half the nodes), engine.labels.os==linux and node.role!=manager, so every decision checks three constraints and half the nodes take every task. *spread*: a placement preference over node.labels.zone, three zones. The scheduler is the manager's (same New and Start); its decisions are committed through the store's real codec and Apply by a synchronous loopback proposer, so raft and the network are not involved. The run checks that every task is assigned, as evenly as the variant promises.`, tasksPerNode),
		`**Figures.** placement_seconds runs from the scheduler's Start over a store where every task is pending to the moment the last assignment has applied: reading the store, deciding, encoding, applying. tasks_per_second divides the tasks by it (wall clock); tasks_per_thread_second divides by the CPU time of the thread that ran the scheduler (its work and the GC assists it paid, not the background GC nor the time it waited for a CPU), which other work on the machine does not slow; tasks_per_cpu_second divides by the whole process's CPU time over the same span (every thread, the garbage collector's too). The wall-clock and process figures come from bench/schedbench exactly as its RunBenchmark measures them; the suite calls its Prepare, Place and Verify itself only to time the thread. setup_seconds (building the store) is not part of either. growth_exponent is k of placement_seconds ≈ c·nodes^k, fitted by least squares on log-log axes (gonum/stat) over the sizes run: 1 means the cost per task stays flat as the cluster grows (the tasks grow with the nodes); growth_fit_r2 says how well a power law fits.`,
		fmt.Sprintf("**Runs.** %d run(s) per size and variant, one after another in one process; figures are medians.", o.Seeds),
	)
	return r, nil
}

func schedParams(nodes int, variant string) map[string]any {
	return report.P("nodes", nodes, "variant", variant, "tasks_per_node", tasksPerNode, "tasks", nodes*tasksPerNode)
}

// schedRun is schedbench.RunBenchmark with the scheduler's thread CPU time
// measured too: the same Prepare, the same timed Place, the same Verify.
func schedRun(nodes int, variant string) (schedbench.BenchResult, time.Duration, error) {
	t0 := time.Now()
	c, err := schedbench.Prepare(nodes, tasksPerNode, variant, nil)
	if err != nil {
		return schedbench.BenchResult{}, 0, err
	}
	r := schedbench.BenchResult{Variant: variant, Nodes: nodes, TasksPerNode: tasksPerNode, Tasks: nodes * tasksPerNode, Setup: time.Since(t0)}
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	cpu0 := schedbench.CPUTime()
	start := time.Now()
	thread := cpuprof.OnThread(c.Place)
	r.Elapsed = time.Since(start)
	r.CPU = schedbench.CPUTime() - cpu0
	runtime.ReadMemStats(&m1)
	r.Allocs = m1.Mallocs - m0.Mallocs
	r.Bytes = m1.TotalAlloc - m0.TotalAlloc
	r.TasksPerSecond = float64(r.Tasks) / r.Elapsed.Seconds()
	r.Stats = c.Scheduler.Stats()
	r.Assigned, err = c.Verify()
	return r, thread, err
}
