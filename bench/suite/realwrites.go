package suite

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/swarmsim/swarmsim/bench/realwrites"
	"github.com/swarmsim/swarmsim/bench/report"
	"github.com/swarmsim/swarmsim/realnet/wal"
)

// realManagers is the raft group the realwrites benchmark runs;
// realValueBytes each write's value.
const (
	realManagers   = 3
	realValueBytes = 64
)

func (o *Options) realConfig() realwrites.Config {
	if o.Quick {
		return realwrites.Config{Managers: realManagers, Clients: []int{1, 16}, ValueBytes: realValueBytes,
			Warmup: 200 * time.Millisecond, Duration: time.Second, FsyncSamples: 50}
	}
	return realwrites.Config{Managers: realManagers, Clients: []int{1, 4, 16, 64, 256}, ValueBytes: realValueBytes,
		Warmup: 2 * time.Second, Duration: 10 * time.Second, FsyncSamples: 500}
}

// realCost estimates one measurement's wall seconds: the steps, cluster
// start-up, the fsync probes.
func realCost(c realwrites.Config) float64 {
	return float64(len(c.Clients))*(c.Warmup+c.Duration).Seconds() + 4 + float64(2*c.FsyncSamples)*3e-3
}

func planRealWrites(o *Options) {
	o.Progress.Plan(o.Seeds, float64(o.Seeds)*realCost(o.realConfig()))
}

func runRealWrites(o *Options) (*report.Report, error) {
	cfg := o.realConfig()
	r := &report.Report{
		Title:   "durable committed writes per second on real managers over loopback, against the disk's fsync floor",
		Columns: []string{"managers", "clients", "value_bytes", "when", "samples", "record_bytes"},
		Order: []string{"writes_per_second", "floor_ratio", "mean_floor_ratio", "commit_latency_p50", "commit_latency_p99", "writes_per_fsync",
			"leader_fsync_mean", "leader_fsync_busy", "cores_busy", "failed_writes", "fsync_latency_p50", "fsync_latency_p99", "fsync_latency_mean",
			"fsync_floor_writes_per_second", "fsync_mean_floor_writes_per_second"},
	}
	type agg struct {
		rate, ratio, meanRatio, perFsync, failed, cores, fsyncBusy []float64
		fsyncTime                                                  time.Duration
		fsyncCount                                                 uint64
		lat                                                        []time.Duration // pooled over runs
	}
	steps := map[int]*agg{}
	var fsyncs []time.Duration // pooled over runs
	var dir string
	for _, seed := range o.seedList() {
		o.Progress.Stage(fmt.Sprintf("realwrites managers=%d clients=%v run=%d", cfg.Managers, cfg.Clients, seed))
		res, err := realwrites.Measure(context.Background(), cfg)
		if err != nil {
			return nil, err
		}
		o.Progress.Done(realCost(cfg))
		dir = res.Dir
		fsyncs = append(fsyncs, res.Fsync...)
		floor := res.FloorWritesPerSecond()
		meanFloor := 1 / res.FsyncMean().Seconds()
		for _, s := range res.Steps {
			a := steps[s.Clients]
			if a == nil {
				a = &agg{}
				steps[s.Clients] = a
			}
			a.rate = append(a.rate, s.WritesPerSecond())
			a.ratio = append(a.ratio, s.WritesPerSecond()/floor)
			a.meanRatio = append(a.meanRatio, s.WritesPerSecond()/meanFloor)
			a.cores = append(a.cores, s.CoresBusy())
			a.fsyncBusy = append(a.fsyncBusy, s.LeaderFsyncBusy())
			a.fsyncTime += s.LeaderFsyncTime
			a.fsyncCount += s.LeaderFsyncs
			a.perFsync = append(a.perFsync, s.WritesPerFsync())
			a.failed = append(a.failed, float64(s.Failed))
			a.lat = append(a.lat, s.Latencies...)
			p := realParams(s.Clients, cfg)
			r.Samples = append(r.Samples,
				report.NewFigure("writes_per_second", s.WritesPerSecond(), "writes/s", p),
				report.NewFigure("floor_ratio", s.WritesPerSecond()/floor, "x", report.P("managers", cfg.Managers, "clients", s.Clients)))
		}
	}
	slices.Sort(fsyncs)
	fsyncP50 := realwrites.Quantile(fsyncs, 0.5)
	floor := 1 / fsyncP50.Seconds()
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

	rate := report.Series{Name: "committed writes/s"}
	floorLine := report.Series{Name: "sequential floor: 1 / fsync p50"}
	var cdfs []report.CDF
	for _, n := range cfg.Clients {
		a := steps[n]
		p := realParams(n, cfg)
		pk := report.P("managers", cfg.Managers, "clients", n)
		f := r.Add("writes_per_second", report.Median(a.rate), "writes/s", p)
		r.Add("floor_ratio", report.Median(a.ratio), "x", pk)
		r.Add("mean_floor_ratio", report.Median(a.meanRatio), "x", pk)
		if a.fsyncCount > 0 {
			r.Add("leader_fsync_mean", ms(a.fsyncTime/time.Duration(a.fsyncCount)), "ms", pk)
		}
		r.Add("leader_fsync_busy", report.Median(a.fsyncBusy), "fraction", pk)
		r.Add("cores_busy", report.Median(a.cores), "cores", pk)
		slices.Sort(a.lat)
		r.Add("commit_latency_p50", ms(realwrites.Quantile(a.lat, 0.5)), "ms", pk)
		r.Add("commit_latency_p99", ms(realwrites.Quantile(a.lat, 0.99)), "ms", pk)
		r.Add("writes_per_fsync", report.Median(a.perFsync), "writes/fsync", pk)
		r.Add("failed_writes", report.Median(a.failed), "writes", pk)
		rate.X, rate.Y = append(rate.X, float64(n)), append(rate.Y, f.Value)
		floorLine.X, floorLine.Y = append(floorLine.X, float64(n)), append(floorLine.Y, report.Round(floor))
		// A thinned sorted sample draws the same curve in a file small
		// enough to check in (a full run has ~10^5 writes per step).
		c := report.CDF{Name: fmt.Sprintf("%d clients", n)}
		for _, l := range thinSorted(a.lat, cdfPoints) {
			c.Values = append(c.Values, ms(l))
		}
		cdfs = append(cdfs, c)
	}
	fp := report.P("when", "before and after", "samples", len(fsyncs), "record_bytes", wal.FsyncRecordBytes)
	p50 := r.Add("fsync_latency_p50", ms(fsyncP50), "ms", fp)
	r.Add("fsync_latency_p99", ms(realwrites.Quantile(fsyncs, 0.99)), "ms", fp)
	mean := r.Add("fsync_latency_mean", ms(realwrites.Mean(fsyncs)), "ms", fp)
	fl := r.Add("fsync_floor_writes_per_second", floor, "writes/s", fp)
	mfl := r.Add("fsync_mean_floor_writes_per_second", 1/realwrites.Mean(fsyncs).Seconds(), "writes/s", fp)

	top := cfg.Clients[len(cfg.Clients)-1]
	best, _ := r.Find("writes_per_second", report.P("clients", top))
	ratio, _ := r.Find("floor_ratio", report.P("clients", top))
	one, _ := r.Find("writes_per_second", report.P("clients", cfg.Clients[0]))
	oneRatio, _ := r.Find("floor_ratio", report.P("clients", cfg.Clients[0]))
	oneLat, _ := r.Find("commit_latency_p50", report.P("clients", cfg.Clients[0]))
	meanRatio, _ := r.Find("mean_floor_ratio", report.P("clients", top))
	cores, _ := r.Find("cores_busy", report.P("clients", top))
	lfm, _ := r.Find("leader_fsync_mean", report.P("clients", top))
	lfb, _ := r.Find("leader_fsync_busy", report.P("clients", top))
	slower := ""
	if lfm.Value > 1.5*p50.Value {
		slower = ": three logs fsyncing at once on one disk, under load, wait longer than one alone"
	}
	r.Headline = append(r.Headline,
		fmt.Sprintf("%s durable writes/s at %d clients on %d managers: %s× the disk's sequential floor of %s writes/s (fsync p50 %s ms)",
			report.FormatValue(best.Value), top, cfg.Managers, report.FormatValue(ratio.Value), report.FormatValue(fl.Value), report.FormatValue(p50.Value)),
		fmt.Sprintf("%d client: %s writes/s, commit p50 %s ms (%s× the floor)",
			cfg.Clients[0], report.FormatValue(one.Value), report.FormatValue(oneLat.Value), report.FormatValue(oneRatio.Value)),
	)
	r.Plots = append(r.Plots,
		withFile(report.LinePlot("Durable committed writes per second against the fsync floor", "concurrent clients", "writes/s",
			true, true, []report.Series{rate, floorLine}, nil), "realwrites-throughput.svg"),
		withFile(report.CDFPlot("Commit latency (request to acknowledgement)", "latency (ms)", true, cdfs), "realwrites-latency.svg"),
	)
	where := "a new directory under " + os.TempDir() + " (set TMPDIR to measure another disk)"
	if dir != "" && cfg.Dir != "" {
		where = dir
	}
	verdict := "above 1: group commit makes more writes durable than a log that fsyncs once per write could"
	if ratio.Value <= 1 {
		verdict = "not above 1: this run did not beat a log that fsyncs once per write"
	}
	r.Notes = append(r.Notes,
		fmt.Sprintf("**The ratio.** At %d concurrent clients the %d managers committed %s durable writes per second. One fsync of this disk takes %s ms at the median, so a log that fsyncs once per write, doing nothing else, could make at most %s writes per second durable: the ratio is %s, %s. Against the mean fsync (%s ms), which a log that fsyncs back to back pays, tail included, the floor is %s writes/s and the ratio %s (mean_floor_ratio).",
			top, cfg.Managers, report.FormatValue(best.Value), report.FormatValue(p50.Value), report.FormatValue(fl.Value), report.FormatValue(ratio.Value), verdict,
			report.FormatValue(mean.Value), report.FormatValue(mfl.Value), report.FormatValue(meanRatio.Value)),
		fmt.Sprintf("**What limits it.** At %d clients the leader's own fsyncs took %s ms on average in the window (leader_fsync_mean; the idle probe's median is %s ms%s) and its log spent %s of the window in fsync (leader_fsync_busy), while the process (managers and clients together) kept %s of the machine's %d cores busy (cores_busy; other processes ran beside it: see the load average above). Each manager has one raft Ready in flight: engine/raft stages a Ready, waits for its fsync, and only then sends its messages and takes the next Ready. So a commit pays the leader's fsync, then a follower's, in turn, plus the leader's fsync of the next batch that started meanwhile; writes_per_fsync shows how many writes each of the leader's fsyncs carried. Sending the leader's appends while its own fsync runs (raft thesis §10.2.1) and keeping more than one Ready in flight (etcd raft's asynchronous storage writes) would shorten that chain; both are engine/raft changes this benchmark can measure.",
			top, report.FormatValue(lfm.Value), report.FormatValue(p50.Value), slower, report.FormatValue(lfb.Value), report.FormatValue(cores.Value), o.Machine.Cores),
		fmt.Sprintf("**Cluster.** %d swarmd managers (realnet/daemon, the daemon's own code, in this process) with the in-memory executor, on 127.0.0.1 with plain gRPC, their write-ahead logs (realnet/wal: write, fsync, then acknowledge; one fsync answers every Sync that arrived while the previous one ran) in %s on one disk, raft with the engine's defaults. All three logs share the disk and the machine's %d cores with the clients.",
			cfg.Managers, where, o.Machine.Cores),
		fmt.Sprintf("**Writes.** Each step runs N clients, each with its own gRPC connection to the leader, each calling Control.KVPut with a fresh key and a %d-byte value again as soon as the previous call answered. KVPut answers once the write is committed (in the logs of a quorum, fsynced) and applied on the leader. After %v of warm-up, writes answered in the next %v count: writes_per_second divides them by the window; commit_latency is each counted call's time from request to answer, as the client saw it. writes_per_fsync divides the counted writes by the fsyncs the leader's log made in the window: what one group commit carried. failed_writes counts calls answered with an error in the window (none on a healthy run). cores_busy is the process's CPU time (user and system, getrusage) in the window per second of it. leader_fsync_mean is the mean time of the leader's log fsyncs in the window (realnet/wal's own timing): the disk under the cluster's load, where the probe times it idle; leader_fsync_busy is the fraction of the window the leader's log spent in fsync. The steps run one after another on one cluster.",
			cfg.ValueBytes, cfg.Warmup, cfg.Duration),
		fmt.Sprintf("**The floor.** Before the cluster starts and after it stops, the same directory's disk is timed (realnet/wal.FsyncSamples): %d appends of a %d-byte record, each followed by the fsync the log uses, pooled. fsync_floor_writes_per_second is 1 / fsync p50; floor_ratio is writes_per_second divided by it (mean_floor_ratio divides by 1 / fsync mean instead). A commit here needs the leader's fsync and a follower's, which run at once on the same disk (and may share a journal commit), so one client is expected near or somewhat under the floor; more clients beat it only by sharing fsyncs. On a virtual disk the fsync latency varies from run to run and within a run (compare p50 and p99), which moves the ratio with it.",
			cfg.FsyncSamples, wal.FsyncRecordBytes),
		fmt.Sprintf("**Runs.** %d run(s), each on a fresh cluster; rates and ratios are medians over runs (each run's ratio uses its own fsync p50), latency and fsync quantiles pool every sample.", o.Seeds),
	)
	return r, nil
}

// cdfPoints bounds the points of each latency curve.
const cdfPoints = 1000

// thinSorted returns at most n samples of sorted xs at evenly spaced
// ranks, the first and the last included.
func thinSorted(xs []time.Duration, n int) []time.Duration {
	if len(xs) <= n {
		return xs
	}
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = xs[i*(len(xs)-1)/(n-1)]
	}
	return out
}

func realParams(clients int, cfg realwrites.Config) map[string]any {
	return report.P("managers", cfg.Managers, "clients", clients, "value_bytes", cfg.ValueBytes)
}
