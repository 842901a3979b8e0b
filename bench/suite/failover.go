package suite

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/swarmsim/swarmsim/bench/failover"
	"github.com/swarmsim/swarmsim/bench/report"
	"github.com/swarmsim/swarmsim/scenarios"
)

// Trials per child process: enough to pay for its start.
const (
	leaderChunk = 100
	workerChunk = 25
)

// Estimated wall seconds per trial, for the progress display only.
func leaderCost(electionTicks int) float64 { return 0.01 + float64(electionTicks)*1e-4 }

const workerCost = 0.1

func planFailover(o *Options) {
	n := o.Trials * o.Seeds
	for _, t := range failover.PaperElectionTicks {
		o.Progress.Plan(n, float64(n)*leaderCost(t)/float64(max(1, o.parallelism())))
	}
	o.Progress.Plan(n, float64(n)*workerCost/float64(max(1, o.parallelism())))
}

// parallelism is how many trials run at once.
func (o *Options) parallelism() int {
	if o.Child == nil {
		return 1
	}
	return o.Jobs
}

// trialSeeds lists the seeds of seed group g (1-based): trials seeds of
// their own, so groups never repeat a trial.
func (o *Options) trialSeeds(g uint64) (first, last uint64) {
	first = (g-1)*uint64(o.Trials) + 1
	return first, first + uint64(o.Trials) - 1
}

func runFailover(o *Options) (*report.Report, error) {
	sc, err := loadScenario(o.Scenario)
	if err != nil {
		return nil, err
	}
	file := o.Scenario
	if file == "" {
		file = "built-in"
	}
	managers := sc.Cluster.Managers
	type leaderKey struct {
		ticks int
		group uint64
	}
	leader := map[leaderKey][]failover.LeaderResult{}
	worker := map[uint64][]failover.WorkerResult{}

	var jobs []job
	chunks := func(g uint64, size int, f func(lo, hi uint64)) {
		first, last := o.trialSeeds(g)
		for lo := first; lo <= last; lo += uint64(size) {
			f(lo, min(last, lo+uint64(size)-1))
		}
	}
	common := []string{}
	if o.Scenario != "" {
		common = append(common, "--scenario", o.Scenario)
	}
	for _, g := range o.seedList() {
		for _, t := range failover.PaperElectionTicks {
			chunks(g, leaderChunk, func(lo, hi uint64) {
				k := leaderKey{t, g}
				jobs = append(jobs, job{
					kind:    "failover-leader",
					args:    append([]string{"--election", strconv.Itoa(t), "--seeds", fmt.Sprintf("%d..%d", lo, hi)}, common...),
					weight:  float64(hi-lo+1) * leaderCost(t) / float64(o.parallelism()),
					results: int(hi - lo + 1),
					onResult: func(data json.RawMessage) error {
						var res failover.LeaderResult
						if err := json.Unmarshal(data, &res); err != nil {
							return err
						}
						leader[k] = append(leader[k], res)
						return nil
					},
				})
			})
		}
		chunks(g, workerChunk, func(lo, hi uint64) {
			jobs = append(jobs, job{
				kind:    "failover-worker",
				args:    append([]string{"--seeds", fmt.Sprintf("%d..%d", lo, hi)}, common...),
				weight:  float64(hi-lo+1) * workerCost / float64(o.parallelism()),
				results: int(hi - lo + 1),
				onResult: func(data json.RawMessage) error {
					var res failover.WorkerResult
					if err := json.Unmarshal(data, &res); err != nil {
						return err
					}
					worker[g] = append(worker[g], res)
					return nil
				},
			})
		})
	}
	o.Progress.Stage(fmt.Sprintf("failover: %d leader and %d worker trials", len(failover.PaperElectionTicks)*o.Trials*o.Seeds, o.Trials*o.Seeds))
	if err := o.runJobs(jobs, o.Jobs); err != nil {
		return nil, err
	}

	r := &report.Report{
		Title: "time to recover from a leader crash and from a worker crash (virtual time)",
		Columns: []string{"election_timeout", "heartbeat", "tick", "managers", "workers", "dispatcher_heartbeat",
			"trials", "scenario"},
		Order: []string{"leader_failover_p50", "leader_failover_p99", "leader_failover_mean", "leader_failover_max",
			"leader_elected_p50", "leader_elected_p99", "split_vote_percent",
			"worker_failover_p50", "worker_failover_p99", "worker_failover_mean", "worker_failover_max", "worker_down_p50", "failed_trials"},
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	var failed []string // "kind seed: error", for the notes
	var cdfs []report.CDF
	for _, t := range failover.PaperElectionTicks {
		var acc, el []float64
		split := 0
		for _, g := range o.seedList() {
			rs := leader[leaderKey{t, g}]
			slices.SortFunc(rs, func(a, b failover.LeaderResult) int { return int(a.Seed) - int(b.Seed) })
			var gacc []float64
			for _, x := range rs {
				if x.Err != "" {
					failed = append(failed, fmt.Sprintf("leader trial, election timeout %dms, seed %d: %s", t, x.Seed, x.Err))
					continue
				}
				acc = append(acc, ms(x.Accepted))
				gacc = append(gacc, ms(x.Accepted))
				el = append(el, ms(x.Elected))
				if x.Terms > 1 {
					split++
				}
			}
			gs := report.Summarize(gacc)
			p := leaderParams(t, managers, len(gacc), file)
			r.Samples = append(r.Samples,
				report.NewFigure("leader_failover_p50", gs.P50, "ms", p),
				report.NewFigure("leader_failover_p99", gs.P99, "ms", p),
				report.NewFigure("leader_failover_mean", gs.Mean, "ms", p),
				report.NewFigure("leader_failover_max", gs.Max, "ms", p))
		}
		s, e := report.Summarize(acc), report.Summarize(el)
		p := leaderParams(t, managers, len(acc), file)
		r.Add("leader_failover_p50", s.P50, "ms", p)
		r.Add("leader_failover_p99", s.P99, "ms", p)
		r.Add("leader_failover_mean", s.Mean, "ms", p)
		r.Add("leader_failover_max", s.Max, "ms", p)
		r.Add("leader_elected_p50", e.P50, "ms", p)
		r.Add("leader_elected_p99", e.P99, "ms", p)
		r.Add("split_vote_percent", 100*float64(split)/float64(max(1, len(acc))), "%", p)
		r.Headline = append(r.Headline, fmt.Sprintf("election timeout %d–%dms: a new leader accepts writes %s ms after the crash at the median, %s ms at p99, %s ms at worst (%d trials)",
			t, 2*t, report.FormatValue(report.Round(s.P50)), report.FormatValue(report.Round(s.P99)), report.FormatValue(report.Round(s.Max)), len(acc)))
		cdfs = append(cdfs, report.CDF{Name: fmt.Sprintf("%d–%dms", t, 2*t), Values: acc})
	}

	var rec, down []float64
	for _, g := range o.seedList() {
		var grec []float64
		slices.SortFunc(worker[g], func(a, b failover.WorkerResult) int { return int(a.Seed) - int(b.Seed) })
		for _, x := range worker[g] {
			if x.Err != "" {
				failed = append(failed, fmt.Sprintf("worker trial, seed %d: %s", x.Seed, x.Err))
				continue
			}
			rec = append(rec, x.Recovered.Seconds())
			grec = append(grec, x.Recovered.Seconds())
			if x.Down >= 0 {
				down = append(down, x.Down.Seconds())
			}
		}
		gs := report.Summarize(grec)
		p := workerParams(sc, len(grec), file)
		r.Samples = append(r.Samples,
			report.NewFigure("worker_failover_p50", gs.P50, "s", p),
			report.NewFigure("worker_failover_p99", gs.P99, "s", p),
			report.NewFigure("worker_failover_mean", gs.Mean, "s", p),
			report.NewFigure("worker_failover_max", gs.Max, "s", p))
	}
	ws, ds := report.Summarize(rec), report.Summarize(down)
	wp := workerParams(sc, len(rec), file)
	r.Add("worker_failover_p50", ws.P50, "s", wp)
	r.Add("worker_failover_p99", ws.P99, "s", wp)
	r.Add("worker_failover_mean", ws.Mean, "s", wp)
	r.Add("worker_failover_max", ws.Max, "s", wp)
	r.Add("worker_down_p50", ds.P50, "s", wp)
	r.Headline = append(r.Headline, fmt.Sprintf("worker crash: its tasks run on other workers %s s after the crash at the median, %s s at p99 (it is marked down after %s s; %d trials)",
		report.FormatValue(report.Round(ws.P50)), report.FormatValue(report.Round(ws.P99)), report.FormatValue(report.Round(ds.P50)), len(rec)))

	total := (len(failover.PaperElectionTicks) + 1) * o.Trials * o.Seeds
	ff := r.Add("failed_trials", float64(len(failed)), "trials", report.P("trials", total, "scenario", file))
	r.Targets = append(r.Targets, report.Target{What: "every trial recovers, with no invariant broken", Figure: ff, Met: len(failed) == 0})
	if len(failed) > 0 {
		shown := failed[:min(len(failed), 20)]
		r.Notes = append(r.Notes, fmt.Sprintf("**Failed trials** (%d; left out of the distributions above; replay one with the scenario and its seed):\n\n- %s",
			len(failed), strings.Join(shown, "\n- ")))
	}
	r.Plots = append(r.Plots,
		withFile(report.CDFPlot("Leader crash → a new leader accepts writes (5 managers, 1ms ticks)",
			"time after the crash (ms, virtual)", true, cdfs), "failover-leader-cdf.svg"),
		withFile(report.CDFPlot("Worker crash → its tasks run on other workers",
			"time after the crash (s, virtual)", false, []report.CDF{{Name: "replicated tasks", Values: rec}}), "failover-worker-cdf.svg"))
	r.Notes = append(r.Notes,
		fmt.Sprintf(`**Leader trials**, after the Raft paper's leader-election experiment (Ongaro and Ousterhout, 2014, §9.3, figure 16): each trial is a fresh simulated cluster with a seed of its own, built from the scenario (%s: %d managers, %s links, %s fsyncs), whose steps run first to set it up. The managers tick every 1ms; election_timeout T sets raft's ElectionTicks, so each follower waits a random [T, 2T) ms, and the leader's heartbeat interval is T/2, as in the paper. Once a leader has acknowledged a write, the leader takes one more write and crashes at a uniformly random point of a window one heartbeat interval long (so at every phase of its heartbeat alike); the write goes out up to one fsync plus one link latency before the crash, so some followers may have it and others not, and a candidate with the shorter log cannot win. The time measured runs from the crash until a new leader (one that a quorum of managers follows and that runs the leader's subsystems) acknowledges a write through Manager.KVWrite, applied: leader_elected is the part until that leader is known. split_vote_percent counts trials whose election needed more than one term. Times are virtual: properties of the protocol under the simulated network and disk, the same on any machine.`,
			scenarioName(o.Scenario), managers, sc.Network.Latency, sc.Cluster.Disk.Sync),
		fmt.Sprintf(`**Worker trials**: the same scenario with its own raft timing; once every service runs all its replicas, a worker running tasks of a replicated service (chosen by the seed) crashes at a uniformly random point of its dispatcher heartbeat period (%s; a worker is marked down after %d missed periods). The time runs until every replicated service that had tasks on it runs all its replicas again, counting containers that actually run on machines that are up. worker_down is when the leader's store marks the worker down; the rest is the orchestrator's restart delay, scheduling and the container start (the scenario's executor start time).`,
			sc.Cluster.Dispatcher.Heartbeat, sc.Cluster.Dispatcher.DownAfter),
		fmt.Sprintf("**Trials.** %d per election timeout and %d worker trials (%d seed group(s) of %d), in child processes, %d at a time; the invariant checkers of the scenario runner watch every trial, and a trial that breaks one fails the benchmark.",
			o.Trials*o.Seeds, o.Trials*o.Seeds, o.Seeds, o.Trials, o.parallelism()),
	)
	return r, nil
}

func scenarioName(file string) string {
	if file == "" {
		return "the built-in " + failover.DefaultFile
	}
	return file
}

func leaderParams(ticks, managers, trials int, file string) map[string]any {
	return report.P("election_timeout", fmt.Sprintf("%d-%dms", ticks, 2*ticks), "heartbeat", latencyName(time.Duration(ticks/2)*failover.PaperTick),
		"tick", "1ms", "managers", managers, "trials", trials, "scenario", file)
}

func workerParams(sc *scenarios.Scenario, trials int, file string) map[string]any {
	return report.P("workers", sc.Cluster.WorkerCount(), "managers", sc.Cluster.Managers,
		"dispatcher_heartbeat", scenarios.FormatDuration(sc.Cluster.Dispatcher.Heartbeat), "trials", trials, "scenario", file)
}
