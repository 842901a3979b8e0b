package scenarios

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/swarmsim/swarmsim/engine/agent"
	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/controlapi"
	"github.com/swarmsim/swarmsim/engine/dispatcher"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/manager"
	"github.com/swarmsim/swarmsim/engine/raft"
	"github.com/swarmsim/swarmsim/engine/store"
	"github.com/swarmsim/swarmsim/realnet/realcluster"
	"github.com/swarmsim/swarmsim/sim"
	"github.com/swarmsim/swarmsim/sim/cluster"
	"google.golang.org/protobuf/proto"
)

// Options are how a run is made.
type Options struct {
	// Seed overrides the file's seed.
	Seed *uint64
	// Out receives one line per step; nil prints nothing.
	Out io.Writer
	// Trace receives the event trace; nil writes none.
	Trace io.Writer
	// Metrics receives metric samples in virtual time; nil writes none.
	Metrics io.Writer
	// MetricsInterval is the virtual time between samples; 0 means
	// DefaultMetricsInterval.
	MetricsInterval time.Duration
	// Wall reads the wall clock for the summary; nil: time.Now.
	Wall func() time.Time
	// Log receives the nodes' logs (debug level and up), stamped with
	// virtual time; nil logs nothing. In real mode: every node's swarmd
	// output, written at the end of the run.
	Log io.Writer
	// RealImages, in real mode, is an image set built beforehand
	// (RealImagesFor) that holds every image the file names; nil builds
	// one for the run and removes it after.
	RealImages *realcluster.Images
}

// RunSimulation runs sc in the simulator.
func RunSimulation(sc *Scenario, opt Options) (*Result, error) {
	seed := sc.Seed
	if opt.Seed != nil {
		seed = *opt.Seed
	}
	wall := opt.Wall
	if wall == nil {
		wall = time.Now
	}
	start := wall()
	w, err := newSimWorld(sc, seed, opt)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	var res *Result
	if w.setupErr != nil {
		st := w.Stats()
		res = &Result{Scenario: sc, Seed: seed, Failure: fmt.Sprintf("at %s: %v", FormatDuration(w.Now()), w.setupErr),
			Virtual: w.Now(), Wall: wall().Sub(start), Events: st.Events, TraceHash: st.TraceHash, Notes: st.Notes}
	} else {
		res = NewRunner(sc, w, opt.Out, wall).Run(seed)
	}
	if err := w.finishMetrics(); err != nil {
		return res, err
	}
	if err := w.k.TraceErr(); err != nil {
		return res, fmt.Errorf("writing the trace: %w", err)
	}
	return res, nil
}

// labelNodes gives nodes their labels from the file, through the control
// API as an operator would (docker node update --label-add), once each has
// registered.
func (w *SimWorld) labelNodes(names []string, done func(error)) {
	var next func(i int)
	next = func(i int) {
		if i == len(names) {
			done(nil)
			return
		}
		m := w.c.Machine(names[i])
		if len(w.check.shadow.NodesByName(names[i])) == 0 {
			w.k.Schedule(pollEvery, sim.KindStep, func() { next(i) })
			return
		}
		// Setting labels read afresh: asking again is the same edit.
		w.leaderRetry(func(mgr *manager.Manager, _ bool, done func(error)) {
			ctl := mgr.Control()
			n, err := ctl.GetNode(names[i])
			if err != nil {
				done(err)
				return
			}
			spec := proto.Clone(n.GetSpec()).(*api.NodeSpec)
			spec.Labels = m.Shape.Labels
			ctl.UpdateNode(n.GetId(), n.GetMeta().GetVersion(), spec, func(_ *api.Node, err error) { done(err) })
		}, func(err error) {
			if errors.Is(err, store.ErrSequenceConflict) || errors.Is(err, controlapi.ErrConflict) {
				next(i) // the node changed meanwhile (it registered again): read it again
				return
			}
			if err != nil {
				done(fmt.Errorf("labelling %s: %w", names[i], err))
				return
			}
			next(i + 1)
		})
	}
	next(0)
}

// SimWorld is a scenario's cluster in the simulator.
type SimWorld struct {
	sc      *Scenario
	k       *sim.Kernel
	c       *cluster.Cluster
	check   *checker
	chooser *sim.Rand
	restore func()
	clients *clients

	setupErr error
	notes    []string
	sec      *securityState
	// specs are the services' current specs in the file's terms, which
	// update steps change key by key.
	specs map[string]Service
	// metrics samples the run for Options.Metrics (metrics.go).
	metrics *simMetrics
}

// NewSimWorld builds sc's cluster on a kernel seeded with seed and starts
// it. The world owns crypto/rand.Reader until Close.
func NewSimWorld(sc *Scenario, seed uint64, trace io.Writer) (*SimWorld, error) {
	return newSimWorld(sc, seed, Options{Trace: trace})
}

func newSimWorld(sc *Scenario, seed uint64, opt Options) (*SimWorld, error) {
	k := sim.NewKernel(seed)
	if opt.Trace != nil {
		k.SetTrace(opt.Trace)
	}
	w := &SimWorld{sc: sc, k: k, chooser: k.NewRand("scenario/selectors"), specs: map[string]Service{}}
	w.sec = newSecurityState(w)
	w.restore = k.Activate()
	w.check = newChecker(w.Now, sc.Check, kernelClock{k})

	cl := sc.Cluster
	cfg := cluster.ClusterConfig{
		Network:  simLink(sc.Network),
		DiskSync: sim.Range(cl.Disk.Sync),
		Executor: sim.ExecutorConfig{
			Start:           sim.Range(sc.Executor.Start),
			Fail:            sc.Executor.Fail,
			FailImages:      sc.Executor.FailImages,
			UnhealthyImages: sc.Executor.UnhealthyImages,
			OnChange:        w.check.containerChanged,
		},
		Raft: raft.Config{
			Tick:            cl.Raft.Tick,
			ElectionTicks:   cl.Raft.ElectionTicks,
			HeartbeatTicks:  cl.Raft.HeartbeatTicks,
			SnapshotEntries: cl.Raft.SnapshotEvery,
		},
		Dispatcher: dispatcher.Config{
			HeartbeatPeriod: cl.Dispatcher.Heartbeat,
			DownAfter:       cl.Dispatcher.DownAfter,
		},
		Agent: agent.Config{DownAfter: cl.Dispatcher.DownAfter},
		Cluster: &api.ClusterSpec{
			Name: sc.Name,
			Raft: &api.RaftConfig{
				Tick:           int64(cl.Raft.Tick),
				ElectionTicks:  uint64(cl.Raft.ElectionTicks),
				HeartbeatTicks: uint64(cl.Raft.HeartbeatTicks),
				SnapshotEvery:  cl.Raft.SnapshotEvery,
			},
			Dispatcher:       &api.DispatcherConfig{HeartbeatPeriod: int64(cl.Dispatcher.Heartbeat)},
			Ca:               &api.CAConfig{NodeCertExpiry: int64(cl.CA.CertExpiry)},
			TaskHistoryLimit: uint64(cl.TaskHistory),
			Autolock:         cl.Autolock,
		},
		RaftObserver: w.check,
		OnDecision:   w.sec.onDecision,
	}
	if opt.Log != nil {
		cfg.Logger = slog.New(slog.NewTextHandler(opt.Log, &slog.HandlerOptions{
			Level: slog.LevelDebug,
			ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey && len(groups) == 0 {
					return slog.String("t", FormatClock(k.Now()))
				}
				return a
			},
		}))
	}
	for _, x := range sc.Executor.Exits {
		cfg.Executor.Exits = append(cfg.Executor.Exits, sim.ExecutorExit{Image: x.Image, After: sim.Range(x.After), Code: x.Code})
	}
	w.c = cluster.NewCluster(k, cfg)

	var managers, workers []string
	shapes := map[string]cluster.NodeShape{}
	for _, n := range cl.InitialNodes() {
		shapes[n.Name] = simShape(n.Resources, n.Labels)
		if n.Manager {
			managers = append(managers, n.Name)
		} else {
			workers = append(workers, n.Name)
		}
	}
	if err := w.c.Bootstrap(managers, workers, shapes); err != nil {
		w.Close()
		return nil, err
	}
	if sc.Clients != nil {
		w.clients = newClients(w, *sc.Clients)
	}
	w.startMetrics(opt)
	w.setup()
	return w, nil
}

// setup creates the file's secrets, configs and services once a leader
// is elected, as the steps expect to find them, and starts the clients.
// The steps' clock starts at 0 regardless: `at` is time since the start.
func (w *SimWorld) setup() {
	if w.clients != nil {
		w.clients.start()
	}
	var calls []func(done func(error))
	var labelled []string
	for _, n := range w.sc.Cluster.InitialNodes() {
		if len(n.Labels) > 0 {
			labelled = append(labelled, n.Name)
		}
	}
	if len(labelled) > 0 {
		calls = append(calls, func(done func(error)) { w.labelNodes(labelled, done) })
	}
	for _, s := range w.sc.Secrets {
		calls = append(calls, w.secretCall(Secret(s)))
	}
	for _, c := range w.sc.Configs {
		calls = append(calls, w.configCall(Config(c)))
	}
	for _, svc := range w.sc.Services {
		calls = append(calls, w.createCall(svc))
	}
	if len(calls) == 0 {
		return
	}
	finished := false
	var run func(i int)
	run = func(i int) {
		if i == len(calls) {
			finished = true
			return
		}
		calls[i](func(err error) {
			if err != nil {
				w.setupErr = fmt.Errorf("setting up the file's secrets, configs and services: %w", err)
				finished = true
				return
			}
			run(i + 1)
		})
	}
	run(0)
	w.k.RunUntil(w.sc.Duration, func() bool { return finished })
	if !finished {
		w.setupErr = errors.New("setting up the file's services: no leader accepted them within the run's duration")
	}
}

// Close gives crypto/rand.Reader back.
func (w *SimWorld) Close() {
	if w.restore != nil {
		w.restore()
		w.restore = nil
	}
}

// Kernel is the world's simulation kernel.
func (w *SimWorld) Kernel() *sim.Kernel { return w.k }

// Cluster is the world's simulated cluster.
func (w *SimWorld) Cluster() *cluster.Cluster { return w.c }

// Now implements World.
func (w *SimWorld) Now() time.Duration { return w.k.Now() }

// RunUntil implements World.
func (w *SimWorld) RunUntil(t time.Duration, stop func() bool) bool {
	return !w.k.RunUntil(t, stop)
}

// Chooser implements World.
func (w *SimWorld) Chooser() Chooser { return w.chooser }

// Violation implements World.
func (w *SimWorld) Violation() *Violation { return w.check.broken }

// Stats implements World. It also runs the end-of-run checks.
func (w *SimWorld) Stats() WorldStats {
	notes := slices.Clone(w.notes)
	notes = append(notes, w.sec.securityNotes()...)
	if w.clients != nil {
		notes = append(notes, w.clients.finish()...)
	}
	return WorldStats{Events: w.k.Processed(), TraceHash: w.k.TraceHash(), Notes: notes}
}

// Nodes implements World.
func (w *SimWorld) Nodes() []NodeState {
	var out []NodeState
	for _, m := range w.c.Machines() {
		out = append(out, NodeState{
			Name:    m.Name,
			Manager: m.Manager,
			Up:      m.Status == cluster.NodeUp,
			Crashed: m.Status == cluster.NodeCrashed,
			Stopped: m.Status == cluster.NodeStopped,
			Removed: m.Status == cluster.NodeRemoved,
		})
	}
	return out
}

// Leader implements World.
func (w *SimWorld) Leader() string {
	if m, ok := w.c.Leader(); ok {
		return m.Name
	}
	return ""
}

// leaderManager is the leader's manager, or nil.
func (w *SimWorld) leaderManager() *manager.Manager {
	if m, ok := w.c.Leader(); ok && m.Engine != nil {
		return m.Engine.Manager()
	}
	return nil
}

// Apply implements World.
func (w *SimWorld) Apply(a Action, targets []string, done func(error)) {
	each := func(f func(string) error) {
		for _, t := range targets {
			if err := f(t); err != nil {
				done(err)
				return
			}
		}
		done(nil)
	}
	switch a := a.(type) {
	case Crash:
		each(w.c.Crash)
	case Restart:
		each(w.c.Restart)
	case Stop:
		each(w.c.Stop)
	case Start:
		each(w.c.Start)
	case Partition:
		var groups [][]*sim.Node
		cur := []*sim.Node{}
		for _, t := range targets {
			if t == "|" {
				groups = append(groups, cur)
				cur = []*sim.Node{}
				continue
			}
			cur = append(cur, w.c.Machine(t).Kernel)
		}
		groups = append(groups, cur)
		w.c.Net.Partition(groups)
		done(nil)
	case Isolate:
		for _, t := range targets {
			w.c.Net.Isolate(w.c.Machine(t).Kernel)
		}
		done(nil)
	case Heal:
		w.c.Net.Heal()
		done(nil)
	case Link:
		i := slices.Index(targets, "|")
		model := simLink(a.Model)
		for _, from := range targets[:i] {
			for _, to := range targets[i+1:] {
				if from != to {
					w.c.Net.SetLink(w.c.Machine(from).Kernel, w.c.Machine(to).Kernel, model)
				}
			}
		}
		done(nil)
	case ClockSkew:
		each(func(name string) error { return w.c.Skew(name, a.By) })
	case AddManager:
		w.addManager(a.Name, done)
	case RemoveManager:
		w.removeManager(targets[0], done)
	case AddWorker:
		shape := simShape(a.Resources, a.Labels)
		if _, err := w.c.AddWorker(a.Name, shape); err != nil {
			done(err)
			return
		}
		if len(a.Labels) > 0 {
			w.labelNodes([]string{a.Name}, done)
			return
		}
		done(nil)
	case RemoveWorker:
		// The worker leaves (its machine goes away) and the operator
		// removes its node, as `docker swarm leave` then `docker node rm`.
		var next func(i int)
		next = func(i int) {
			if i == len(targets) {
				done(nil)
				return
			}
			if err := w.c.Remove(targets[i]); err != nil {
				done(err)
				return
			}
			w.leaderRetry(func(mgr *manager.Manager, retried bool, d func(error)) {
				mgr.Control().RemoveNode(targets[i], true, func(err error) { d(doneIf(err, retried, controlapi.ErrNotFound)) })
			}, func(err error) {
				if err != nil {
					done(fmt.Errorf("remove node %s: %w", targets[i], err))
					return
				}
				next(i + 1)
			})
		}
		next(0)
	default:
		if !w.applyService(a, targets, done) && !w.applyAutolock(a, targets, done) && !w.applySecurity(a, targets, done) {
			done(fmt.Errorf("%s: not supported in the simulator yet", a.Kind()))
		}
	}
}

// addManager starts a new manager machine that asks the running managers
// to join; the step finishes once it votes.
func (w *SimWorld) addManager(name string, done func(error)) {
	shape := simShape(Resources{NanoCPUs: DefaultNanoCPUs, MemoryBytes: DefaultMemoryBytes}, nil)
	m, err := w.c.AddManager(name, shape)
	if err != nil {
		done(err)
		return
	}
	// Poll the leader's membership until the new member votes.
	var poll func()
	poll = func() {
		if lm := w.leaderManager(); lm != nil {
			for _, mb := range lm.Raft().Members() {
				if mb.RaftID == m.RaftID() && !mb.Learner {
					done(nil)
					return
				}
			}
		}
		w.k.Schedule(pollEvery, sim.KindStep, poll)
	}
	poll()
}

// removeManager asks the leader to remove name from the raft group; once
// it is out, the machine leaves the cluster.
func (w *SimWorld) removeManager(name string, done func(error)) {
	lm, ok := w.c.Leader()
	if !ok {
		done(errors.New("no leader to ask"))
		return
	}
	lm.Kernel.Post(func() {
		mgr := lm.Engine.Manager()
		mgr.RemoveManager(env.NodeID(name), func(err error) {
			if err != nil {
				done(fmt.Errorf("remove manager %s: %w", name, err))
				return
			}
			done(w.c.Remove(name))
		})
	})
}

// Holds implements World.
func (w *SimWorld) Holds(c Condition) (bool, string) {
	switch c := c.(type) {
	case Leader:
		l := w.Leader()
		switch {
		case l == "":
			return false, "no leader"
		case c.Node == "":
			return true, l
		case c.Not:
			return l != c.Node, "leader is " + l
		default:
			return l == c.Node, "leader is " + l
		}
	case Managers:
		lm := w.leaderManager()
		if lm == nil {
			return false, "no leader"
		}
		voters := 0
		for _, mb := range lm.Raft().Members() {
			if !mb.Learner {
				voters++
			}
		}
		return voters == c.N, fmt.Sprintf("%d voters", voters)
	case NodesReady:
		n := 0
		for nd := range w.check.shadow.EachNode() {
			if nd.GetStatus().GetState() == api.NodeState_NODE_STATE_READY && !nd.GetRemoved() {
				n++
			}
		}
		return n == c.N, fmt.Sprintf("%d ready", n)
	case NodeTasks:
		name := w.resolveOne(c.Node)
		m := w.c.Machine(name)
		if m == nil {
			return false, "no node " + name
		}
		n := m.Executor.NumRunning()
		return n == c.N, fmt.Sprintf("%s runs %d", name, n)
	}
	if ok, what, handled := w.holdsService(c); handled {
		return ok, what
	}
	if ok, what, handled := w.holdsAutolock(c); handled {
		return ok, what
	}
	if ok, what, handled := w.holdsSecurity(c); handled {
		return ok, what
	}
	return false, fmt.Sprintf("%s: not supported in the simulator yet", c)
}

func (w *SimWorld) resolveOne(sel Selector) string {
	var cands []Candidate
	for _, n := range w.Nodes() {
		cands = append(cands, Candidate{Name: n.Name, Manager: n.Manager})
	}
	names := sel.Resolve(cands, w.Leader(), w.chooser)
	if len(names) == 0 {
		return ""
	}
	return names[0]
}

// ---- conversions

func simLink(m LinkModel) sim.LinkModel {
	return sim.LinkModel{Latency: sim.Range(m.Latency), Loss: m.Loss, Duplicate: m.Duplicate, Reorder: m.Reorder}
}

func simShape(r Resources, labels map[string]string) cluster.NodeShape {
	return cluster.NodeShape{NanoCPUs: r.NanoCPUs, MemoryBytes: r.MemoryBytes, Labels: labels}
}

// kernelClock is the checker's clock: its store stamps nothing (it only
// applies), but a store needs one.
type kernelClock struct{ k *sim.Kernel }

func (c kernelClock) Now() time.Time { return sim.Epoch.Add(c.k.Now()) }

func (c kernelClock) Monotonic() time.Duration { return c.k.Now() }

func (c kernelClock) AfterFunc(d time.Duration, f func()) env.Timer {
	return kernelTimer{c.k, c.k.Schedule(d, sim.KindTimer, f)}
}

type kernelTimer struct {
	k  *sim.Kernel
	id sim.TimerID
}

func (t kernelTimer) Stop() bool { return t.k.Cancel(t.id) }
