package suite

import (
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/swarmsim/swarmsim/bench/cpuprof"
	"github.com/swarmsim/swarmsim/bench/raftbench"
	"github.com/swarmsim/swarmsim/bench/report"
)

type raftSizes struct {
	managers  []int
	latencies []time.Duration
	// warmup writes run before the measured ones on each cluster.
	warmup, writes int
	rawWarmup      int
	rawWrites      int
	// profile writes: the store path's (unbatched; batched takes twice as
	// many) and raw's, run under the CPU profiler to split the time.
	profileWrites, rawProfileWrites int
}

func (o *Options) raftSizes() raftSizes {
	if o.Quick {
		return raftSizes{[]int{3}, []time.Duration{time.Millisecond}, 100, 500, 200, 2000, 50000, 150000}
	}
	return raftSizes{
		managers:  []int{3, 5},
		latencies: []time.Duration{100 * time.Microsecond, time.Millisecond, 10 * time.Millisecond},
		// As many writes as raw's: a run of 30,000 lasted 50ms batched,
		// too short to tell a change of a few percent from noise here.
		warmup: 20000, writes: 200000,
		rawWarmup: 20000, rawWrites: 200000,
		profileWrites: 150000, rawProfileWrites: 600000,
	}
}

// Estimated wall seconds per write, for the progress display only.
const (
	storeWriteCost = 12e-6
	rawWriteCost   = 4e-6
)

// raftWindow is the writes in flight; raftDisk every manager's fsync.
const (
	raftWindow = 256
	raftDisk   = time.Millisecond
	// rawLatency is the link latency of the store runs compared with raw.
	rawLatency = time.Millisecond
)

func planRaft(o *Options) {
	s := o.raftSizes()
	stores := len(s.managers) * len(s.latencies) * 2 * o.Seeds
	raws := len(s.managers) * o.Seeds
	o.Progress.Plan(stores+raws, float64(stores)*float64(s.writes+s.warmup)*storeWriteCost+
		float64(raws)*float64(s.rawWrites+s.rawWarmup)*rawWriteCost)
	o.Progress.Plan(3*len(s.managers), float64(len(s.managers))*(float64(3*s.profileWrites)*storeWriteCost+float64(s.rawProfileWrites)*rawWriteCost))
}

func latencyName(d time.Duration) string {
	if d < time.Millisecond {
		return fmt.Sprintf("%gms", float64(d)/float64(time.Millisecond))
	}
	return d.String()
}

type raftKey struct {
	managers int
	latency  time.Duration
	batched  bool
}

type raftAgg struct {
	wall, cpu, thread, virtual, entries []float64
	latencies                           []float64 // ms, pooled over seeds
}

func runRaft(o *Options) (*report.Report, error) {
	s := o.raftSizes()
	r := &report.Report{
		Title:   "committed writes and commit latency through the store path, beside raw raft",
		Columns: []string{"managers", "path", "stage", "latency", "mode", "window", "disk_sync", "payload_bytes"},
		Order: []string{"wall_writes_per_second", "store_to_raw_ratio", "store_to_raw_thread_ratio", "store_to_raw_cpu_ratio", "store_to_raw_instruction_ratio", "instructions_per_write",
			"raw_wall_writes_per_second", "commit_latency_p50", "commit_latency_p99", "virtual_writes_per_second",
			"writes_per_thread_second", "raw_writes_per_thread_second", "writes_per_cpu_second", "raw_writes_per_cpu_second", "entries_per_write", "cpu_us_per_write", "cpu_share"},
	}
	agg := map[raftKey]*raftAgg{}
	raw := map[int][]float64{}
	rawCPU := map[int][]float64{}
	ratio := map[raftKey][]float64{}
	cpuRatio := map[raftKey][]float64{}
	threadRatio := map[raftKey][]float64{}
	rawThread := map[int][]float64{}
	payloads := map[int]int{}
	params := func(k raftKey) map[string]any {
		mode := "unbatched"
		if k.batched {
			mode = "batched"
		}
		return report.P("managers", k.managers, "latency", latencyName(k.latency), "mode", mode,
			"window", raftWindow, "disk_sync", latencyName(raftDisk))
	}
	for _, seed := range o.seedList() {
		for _, managers := range s.managers {
			storeAtRaw := map[bool]float64{}
			storeCPUAtRaw := map[bool]float64{}
			storeThreadAtRaw := map[bool]float64{}
			// The runs compared with raw come last, right before it, so
			// that the machine changes as little as it can between them.
			for _, lat := range rawLast(s.latencies) {
				for _, batched := range []bool{false, true} {
					k := raftKey{managers, lat, batched}
					p := params(k)
					o.Progress.Stage(fmt.Sprintf("raft managers=%d latency=%s %s seed=%d", managers, p["latency"], p["mode"], seed))
					m, err := storeRun(raftbench.Config{Managers: managers, Latency: lat, DiskSync: raftDisk,
						Batched: batched, Window: raftWindow, Seed: seed}, s.warmup, s.writes)
					if err != nil {
						return nil, err
					}
					o.Progress.Done(float64(s.writes+s.warmup) * storeWriteCost)
					a := agg[k]
					if a == nil {
						a = &raftAgg{}
						agg[k] = a
					}
					a.wall = append(a.wall, m.WallRate())
					a.cpu = append(a.cpu, m.CPURate())
					a.thread = append(a.thread, m.ThreadRate())
					a.virtual = append(a.virtual, m.VirtualRate())
					a.entries = append(a.entries, float64(m.Entries)/float64(m.Writes))
					for _, l := range m.Latencies {
						a.latencies = append(a.latencies, float64(l)/float64(time.Millisecond))
					}
					r.Samples = append(r.Samples,
						report.NewFigure("wall_writes_per_second", m.WallRate(), "writes/s", p),
						report.NewFigure("virtual_writes_per_second", m.VirtualRate(), "writes/s", p))
					if lat == rawLatency {
						storeAtRaw[batched] = m.WallRate()
						storeCPUAtRaw[batched] = m.CPURate()
						storeThreadAtRaw[batched] = m.ThreadRate()
						if !batched {
							payloads[managers] = int(m.Bytes / max(1, m.Entries))
						}
					}
				}
			}
			payload := payloads[managers]
			if payload == 0 {
				payload = 100
			}
			o.Progress.Stage(fmt.Sprintf("raft raw managers=%d seed=%d", managers, seed))
			rc, err := raftbench.NewRawCluster(managers, payload, raftWindow)
			if err != nil {
				return nil, err
			}
			if _, err := rc.Write(s.rawWarmup); err != nil {
				return nil, err
			}
			runtime.GC() // see storeRun
			m, err := rc.Write(s.rawWrites)
			if err != nil {
				return nil, err
			}
			o.Progress.Done(float64(s.rawWrites+s.rawWarmup) * rawWriteCost)
			raw[managers] = append(raw[managers], m.WallRate())
			rawCPU[managers] = append(rawCPU[managers], m.CPURate())
			rawThread[managers] = append(rawThread[managers], m.ThreadRate())
			rp := report.P("managers", managers, "window", raftWindow, "payload_bytes", payload)
			r.Samples = append(r.Samples, report.NewFigure("raw_wall_writes_per_second", m.WallRate(), "writes/s", rp))
			for _, batched := range []bool{false, true} {
				if v, ok := storeAtRaw[batched]; ok {
					k := raftKey{managers, rawLatency, batched}
					ratio[k] = append(ratio[k], 100*v/m.WallRate())
					cpuRatio[k] = append(cpuRatio[k], 100*storeCPUAtRaw[batched]/m.CPURate())
					if m.ThreadRate() > 0 {
						threadRatio[k] = append(threadRatio[k], 100*storeThreadAtRaw[batched]/m.ThreadRate())
					}
					r.Samples = append(r.Samples, report.NewFigure("store_to_raw_ratio", 100*v/m.WallRate(), "%", ratioParams(k, payload)))
				}
			}
		}
	}

	// Figures, in a stable order.
	for _, managers := range s.managers {
		for _, lat := range s.latencies {
			for _, batched := range []bool{false, true} {
				k := raftKey{managers, lat, batched}
				a, p := agg[k], params(k)
				lat := report.Summarize(a.latencies)
				r.Add("wall_writes_per_second", report.Median(a.wall), "writes/s", p)
				r.Add("writes_per_cpu_second", report.Median(a.cpu), "writes/cpu-s", p)
				if report.Median(a.thread) > 0 {
					r.Add("writes_per_thread_second", report.Median(a.thread), "writes/thread-s", p)
				}
				r.Add("virtual_writes_per_second", report.Median(a.virtual), "writes/s", p)
				r.Add("commit_latency_p50", lat.P50, "ms", p)
				r.Add("commit_latency_p99", lat.P99, "ms", p)
				r.Add("entries_per_write", report.Median(a.entries), "entries/write", p)
			}
		}
	}
	for _, managers := range s.managers {
		rp := report.P("managers", managers, "window", raftWindow, "payload_bytes", payloads[managers])
		r.Add("raw_wall_writes_per_second", report.Median(raw[managers]), "writes/s", rp)
		r.Add("raw_writes_per_cpu_second", report.Median(rawCPU[managers]), "writes/cpu-s", rp)
		if report.Median(rawThread[managers]) > 0 {
			r.Add("raw_writes_per_thread_second", report.Median(rawThread[managers]), "writes/thread-s", rp)
		}
		for _, batched := range []bool{false, true} {
			k := raftKey{managers, rawLatency, batched}
			f := r.Add("store_to_raw_ratio", report.Median(ratio[k]), "%", ratioParams(k, payloads[managers]))
			r.Add("store_to_raw_cpu_ratio", report.Median(cpuRatio[k]), "%", ratioParams(k, payloads[managers]))
			if len(threadRatio[k]) > 0 {
				r.Add("store_to_raw_thread_ratio", report.Median(threadRatio[k]), "%", ratioParams(k, payloads[managers]))
			}
			r.Targets = append(r.Targets, report.Target{
				What:   fmt.Sprintf("store path keeps ≥ 80%% of raw raft's writes/s (%d managers, %s)", managers, modeLabel(batched)),
				Figure: f, Met: f.Value >= 80,
			})
		}
	}
	raftPlots(r, s)
	if err := raftProfile(r, s, o); err != nil {
		return nil, err
	}
	if err := raftInstructions(r, s, o, payloads); err != nil {
		return nil, err
	}
	raftShortfall(r, s)
	raftHeadline(r, s)
	raftNotes(r, s, o)
	return r, nil
}

// rawLast is lats with rawLatency moved to the end.
func rawLast(lats []time.Duration) []time.Duration {
	out := make([]time.Duration, 0, len(lats))
	for _, l := range lats {
		if l != rawLatency {
			out = append(out, l)
		}
	}
	if len(out) < len(lats) {
		out = append(out, rawLatency)
	}
	return out
}

// raftProfile splits the CPU time of the store path (3 managers, 1ms
// links, both modes) and of raw raft into stages, per write.
func raftProfile(r *report.Report, s raftSizes, o *Options) error {
	for _, managers := range s.managers {
		if err := raftProfileOne(r, s, o, managers); err != nil {
			return err
		}
	}
	return nil
}

func raftProfileOne(r *report.Report, s raftSizes, o *Options, managers int) error {
	type run struct {
		path   string
		writes int
		shares []cpuprof.Share
	}
	var runs []run
	for _, batched := range []bool{false, true} {
		cfg := raftbench.Config{Managers: managers, Latency: rawLatency, DiskSync: raftDisk, Batched: batched, Window: raftWindow, Seed: 1}
		n := s.profileWrites
		if batched {
			n *= 2
		}
		o.Progress.Stage(fmt.Sprintf("raft profile managers=%d %s", managers, cfg.Mode()))
		sc, err := raftbench.NewStoreCluster(cfg)
		if err != nil {
			return err
		}
		if _, err := sc.Write(s.warmup); err != nil {
			sc.Close()
			return err
		}
		shares, err := sc.Profile(n)
		sc.Close()
		if err != nil {
			return err
		}
		o.Progress.Done(float64(n) * storeWriteCost)
		runs = append(runs, run{"store-" + cfg.Mode(), n, shares})
	}
	payload, _ := r.Find("raw_wall_writes_per_second", report.P("managers", managers))
	o.Progress.Stage(fmt.Sprintf("raft profile raw managers=%d", managers))
	rc, err := raftbench.NewRawCluster(managers, max(1, toInt(payload.Params["payload_bytes"])), raftWindow)
	if err != nil {
		return err
	}
	if _, err := rc.Write(s.rawWarmup); err != nil {
		return err
	}
	shares, err := rc.Profile(s.rawProfileWrites)
	if err != nil {
		return err
	}
	o.Progress.Done(float64(s.rawProfileWrites) * rawWriteCost)
	runs = append(runs, run{"raw", s.rawProfileWrites, shares})

	var groups []report.BarGroup
	for i, st := range runs[0].shares {
		g := report.BarGroup{Label: shortStage(st.Stage)}
		any := false
		for _, ru := range runs {
			us := ru.shares[i].Seconds * 1e6 / float64(ru.writes)
			g.Values = append(g.Values, us)
			any = any || us > 0
		}
		if any {
			groups = append(groups, g)
		}
	}
	for _, ru := range runs {
		total := 0.0
		for _, sh := range ru.shares {
			total += sh.Seconds
		}
		p := report.P("managers", managers, "path", ru.path, "stage", "total")
		r.Add("cpu_us_per_write", total*1e6/float64(ru.writes), "µs", p)
		for _, sh := range ru.shares {
			if sh.Seconds == 0 {
				continue
			}
			p := report.P("managers", managers, "path", ru.path, "stage", sh.Stage)
			r.Add("cpu_us_per_write", sh.Seconds*1e6/float64(ru.writes), "µs", p)
			r.Add("cpu_share", sh.Percent, "%", p)
		}
	}
	r.Plots = append(r.Plots, withFile(report.BarPlot(fmt.Sprintf("Where the CPU time of a write goes (%d managers, %s links; CPU profile)", managers, latencyName(rawLatency)),
		"CPU µs per write", []string{"store, unbatched", "store, batched", "raw RawNodes"}, groups), fmt.Sprintf("raft-cpu-%d.svg", managers)))
	return nil
}

// modeLabel says which raft configuration a mode is.
func modeLabel(batched bool) string {
	if batched {
		return "batched: raft.Config's default, a loop turn's writes packed into shared entries"
	}
	return "unbatched: raft.Config.EntryPerProposal, an entry per write"
}

// raftShortfall explains a missed store-to-raw target from the CPU split:
// what the store path spends per write beside raw raft's whole write.
func raftShortfall(r *report.Report, s raftSizes) {
	for i, t := range r.Targets {
		if t.Met {
			continue
		}
		managers := t.Figure.Params["managers"]
		us := func(path, stage string) float64 {
			f, _ := r.Find("cpu_us_per_write", report.P("managers", managers, "path", path, "stage", stage))
			return f.Value
		}
		raw := us("raw", "total")
		path := "store-" + fmt.Sprint(t.Figure.Params["mode"])
		var parts []string
		for _, st := range raftbench.StoreStages {
			if v := us(path, st.Name); v >= 0.05*us(path, "total") {
				parts = append(parts, fmt.Sprintf("%s %s µs", st.Name, report.FormatValue(v)))
			}
		}
		store := us(path, raftbench.StoreStages[0].Name) + us(path, raftbench.StoreStages[1].Name) + us(path, raftbench.StoreStages[2].Name)
		rft := us(path, "etcd raft") + us(path, "raft driver (engine/raft)")
		verdict := fmt.Sprintf("the store's work (apply on every manager, the leader's write, and their protobuf coding) is %s µs and raft's (etcd raft plus the driver) %s µs per write",
			report.FormatValue(report.Round(store)), report.FormatValue(report.Round(rft)))
		if seal := us(path, "encryption at rest (engine/crypt)"); seal > 0 {
			verdict += fmt.Sprintf("; sealing raft entries for the disk (encryption at rest, which the raw RawNodes, writing no disk, skip) is %s µs more",
				report.FormatValue(report.Round(seal)))
		}
		if store > raw/0.8 { // the whole budget: raw / store >= 80% means store <= raw / 0.8
			verdict += fmt.Sprintf("; the store's work alone exceeds what 80%% of raw raft's rate allows for everything (%s µs), so no change to the raft path can meet the target: the store's apply, write and coding must get cheaper",
				report.FormatValue(report.Round(raw/0.8)))
		}
		if tr, ok := r.Find("store_to_raw_thread_ratio", t.Figure.Params); ok {
			verdict += fmt.Sprintf(" (per thread-CPU second, which other load does not skew, the ratio was %s%%)", report.FormatValue(tr.Value))
		}
		r.Targets[i].Note = fmt.Sprintf("per write, the %s store path spends %s µs of CPU against %s µs for a whole raw raft write (%d managers, CPU profile): %s; %s.",
			t.Figure.Params["mode"], report.FormatValue(us(path, "total")), report.FormatValue(raw), managers, strings.Join(parts, ", "), verdict)
	}
}

// shortStage is a stage name short enough for a plot's axis.
func shortStage(s string) string {
	if i := strings.IndexAny(s, "(,"); i > 0 {
		return strings.TrimSpace(s[:i])
	}
	return s
}

func toInt(v any) int {
	switch v := v.(type) {
	case int:
		return v
	case float64:
		return int(v)
	}
	return 0
}

func ratioParams(k raftKey, payload int) map[string]any {
	mode := "unbatched"
	if k.batched {
		mode = "batched"
	}
	return report.P("managers", k.managers, "latency", latencyName(k.latency), "mode", mode, "payload_bytes", payload)
}

// storeRun boots a cluster, warms it up, and measures writes.
func storeRun(cfg raftbench.Config, warmup, writes int) (raftbench.Measurement, error) {
	s, err := raftbench.NewStoreCluster(cfg)
	if err != nil {
		return raftbench.Measurement{}, err
	}
	defer s.Close()
	if _, err := s.Write(warmup); err != nil {
		return raftbench.Measurement{}, err
	}
	// Every measurement, store or raw, starts from a collected heap, as Go
	// benchmarks do: otherwise one pays, in GC assists on its own thread,
	// for marking what the runs before it left behind, and the ratio of
	// the two moved by a third between runs of one build.
	runtime.GC()
	return s.Write(writes)
}

func raftHeadline(r *report.Report, s raftSizes) {
	for _, managers := range s.managers {
		get := func(name string, batched bool) report.Figure {
			mode := "unbatched"
			if batched {
				mode = "batched"
			}
			f, _ := r.Find(name, report.P("managers", managers, "latency", latencyName(rawLatency), "mode", mode))
			return f
		}
		rawF, _ := r.Find("raw_wall_writes_per_second", report.P("managers", managers))
		r.Headline = append(r.Headline, fmt.Sprintf(
			"%d managers, %s links: %s writes/s through the store path as configured by default (batched), and %s with an entry per write (unbatched), wall clock, "+
				"against %s for raw RawNodes (%s%% and %s%%); commit latency p50 %s ms, p99 %s ms (virtual)",
			managers, latencyName(rawLatency),
			report.FormatValue(get("wall_writes_per_second", true).Value), report.FormatValue(get("wall_writes_per_second", false).Value),
			report.FormatValue(rawF.Value),
			report.FormatValue(mustFind(r, "store_to_raw_ratio", managers, true).Value),
			report.FormatValue(mustFind(r, "store_to_raw_ratio", managers, false).Value),
			report.FormatValue(get("commit_latency_p50", true).Value), report.FormatValue(get("commit_latency_p99", true).Value)))
		if u, ok := r.Find("store_to_raw_instruction_ratio", report.P("managers", managers, "mode", "unbatched")); ok {
			b, _ := r.Find("store_to_raw_instruction_ratio", report.P("managers", managers, "mode", "batched"))
			r.Headline[len(r.Headline)-1] += fmt.Sprintf("; counted in instructions per write (callgrind), the store path keeps %s%% of raw raft batched and %s%% unbatched",
				report.FormatValue(b.Value), report.FormatValue(u.Value))
		}
	}
}

func mustFind(r *report.Report, name string, managers int, batched bool) report.Figure {
	mode := "unbatched"
	if batched {
		mode = "batched"
	}
	f, _ := r.Find(name, report.P("managers", managers, "mode", mode))
	return f
}

func raftPlots(r *report.Report, s raftSizes) {
	var groups []report.BarGroup
	for _, managers := range s.managers {
		for _, lat := range s.latencies {
			g := report.BarGroup{Label: fmt.Sprintf("%d mgr, %s", managers, latencyName(lat))}
			for _, mode := range []string{"unbatched", "batched"} {
				f, _ := r.Find("wall_writes_per_second", report.P("managers", managers, "latency", latencyName(lat), "mode", mode))
				g.Values = append(g.Values, f.Value)
			}
			groups = append(groups, g)
		}
	}
	r.Plots = append(r.Plots, withFile(report.BarPlot("Committed writes per wall-clock second, store path", "writes/s",
		[]string{"unbatched", "batched"}, groups), "raft-throughput.svg"))

	var vs []report.BarGroup
	for _, managers := range s.managers {
		g := report.BarGroup{Label: fmt.Sprintf("%d managers", managers)}
		f, _ := r.Find("raw_wall_writes_per_second", report.P("managers", managers))
		g.Values = append(g.Values, f.Value)
		for _, mode := range []string{"unbatched", "batched"} {
			f, _ := r.Find("wall_writes_per_second", report.P("managers", managers, "latency", latencyName(rawLatency), "mode", mode))
			g.Values = append(g.Values, f.Value)
		}
		vs = append(vs, g)
	}
	r.Plots = append(r.Plots, withFile(report.BarPlot(fmt.Sprintf("Store path (%s links) beside raw raft RawNodes", latencyName(rawLatency)), "writes/s",
		[]string{"raw RawNodes", "store, unbatched", "store, batched"}, vs), "raft-vs-raw.svg"))

	var series []report.Series
	for _, managers := range s.managers {
		for _, q := range []string{"p50", "p99"} {
			sr := report.Series{Name: fmt.Sprintf("%d managers, %s", managers, q)}
			for _, lat := range s.latencies {
				f, _ := r.Find("commit_latency_"+q, report.P("managers", managers, "latency", latencyName(lat), "mode", "unbatched"))
				sr.X = append(sr.X, float64(lat)/float64(time.Millisecond))
				sr.Y = append(sr.Y, f.Value)
			}
			series = append(series, sr)
		}
	}
	r.Plots = append(r.Plots, withFile(report.LinePlot("Commit latency (virtual), 256 writes in flight, unbatched",
		"one-way link latency (ms)", "commit latency (ms)", len(s.latencies) > 1, len(s.latencies) > 1, series, nil), "raft-latency.svg"))
}

func withFile(p report.Plot, file string) report.Plot {
	p.File = file
	return p
}

func raftNotes(r *report.Report, s raftSizes, o *Options) {
	r.Notes = append(r.Notes,
		fmt.Sprintf(`**Store path.** Each configuration boots its managers (sim/cluster, the scenarios' cluster builder) on a fresh kernel, waits for a leader, then runs %d warm-up and %d measured writes: %d clients on the leader, each calling Manager.KVWrite on its own key (16-byte values) again as soon as its previous write is acknowledged, after it applied on the leader. A write is encoded by the leader's store (Store.WriteKV, a write of one key that needs no transaction), proposed to the raft driver, persisted on each manager's simulated disk (every fsync takes %s), replicated over links of the given one-way latency, and applied to every manager's store: the others decode the entry, the leader applies the key and value it was asked to write; each store overwrites the key's stored value in place. Raft runs with the engine's defaults (100ms ticks, 10-tick elections). *batched* is raft.Config's default, which packs the proposals of one loop turn into shared entries (entries_per_write shows how many), as scenarios and swarmd run; *unbatched* sets raft.Config.EntryPerProposal, an entry per write, as raw raft is given them.`,
			s.warmup, s.writes, raftWindow, latencyName(raftDisk)),
		`**Wall and virtual figures.** wall_writes_per_second is per second of real time: the cost of the code, with every manager, the disk and the network simulated on one goroutine (writes_per_thread_second divides by the CPU time of the thread that ran the simulation instead: its own work and the GC assists it paid, not the background GC or the time it waited for a CPU, so it stays near what an idle machine shows as wall time whatever else runs; writes_per_cpu_second divides by the whole process's CPU time, every thread counted). virtual_writes_per_second and the commit latencies are in simulated time: properties of the protocol under the simulated latencies. The simulator charges no time for computation, so batching cannot change them, and with a closed loop the virtual rate is the window divided by the latency (Little's law): it says how fast 256 clients are served, not how fast raft can go.`,
		fmt.Sprintf(`**Raw raft.** etcd raft/v3 RawNodes over MemoryStorage, with the driver's raft settings, exchanging messages directly in memory (no driver, disk, network model or simulator), %d writes in flight stepped into the leader as one MsgProp per refill (as the driver steps the proposals of a loop turn), one entry per write carrying as many bytes as an unbatched store-path entry (payload_bytes), %d measured writes after %d warm-up. store_to_raw_ratio divides the store path's wall-clock rate at %s links by raw's, measured in the same run (store_to_raw_thread_ratio and store_to_raw_cpu_ratio divide the rates per thread and per process CPU second instead, which other load on the machine does not skew); the Go benchmark BenchmarkWrites in bench/raftbench reports the same pair.`,
			raftWindow, s.rawWrites, s.rawWarmup, latencyName(rawLatency)),
		fmt.Sprintf("**Seeds.** %d seed(s); rates are medians over seeds, latency quantiles pool every write of every seed.", o.Seeds),
		fmt.Sprintf("**Where the time goes.** cpu_us_per_write splits the CPU time of one more run per path and managers count (%s links; %d writes unbatched, twice as many batched, %d raw), taken under the Go CPU profiler (bench/cpuprof), into stages: each sample goes to the first stage found walking its stack from the leaf (bench/raftbench.StoreStages), so a stage holds its own code and the allocations, protobuf coding and GC assists it causes; the garbage collector's background work is a stage of its own. cpu_share is the same split in percent. These runs are not among the measured ones.",
			latencyName(rawLatency), s.profileWrites, s.rawProfileWrites),
	)
}
