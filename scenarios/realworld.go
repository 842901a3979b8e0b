package scenarios

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	moby "github.com/moby/moby/client"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/realnet"
	"github.com/swarmsim/swarmsim/realnet/docker"
	"github.com/swarmsim/swarmsim/realnet/realcluster"
	"github.com/swarmsim/swarmsim/realnet/rpc"
)

// ErrNotReal: a scenario uses something real mode cannot do. RunReal
// refuses such a file before it starts anything.
var ErrNotReal = errors.New("not supported with --real")

// RealSupport lists, one error per use, what in sc real mode cannot do:
// "scenarios/x.yaml:12: step clock_skew: not supported with --real". Nil
// when the whole file can run for real.
func RealSupport(sc *Scenario) []error {
	var errs []error
	at := func(line int, what string) {
		errs = append(errs, fmt.Errorf("%s:%d: %s: %w", sc.File, line, what, ErrNotReal))
	}
	paired := false
	n := len(sc.Cluster.InitialNodes())
	for _, st := range sc.Steps {
		switch a := st.Action.(type) {
		case Crash, Restart, Stop, Start, Isolate, Heal,
			Create, Remove, Scale, Update, Rollback, Secret, Config,
			Drain, Pause, Activate, Promote, Demote, FailTasks,
			RemoveManager, RemoveWorker, RotateJoinToken, RotateRootCA,
			Autolock, RotateUnlockKey, Unlock, Compromise, ClockSkew, Link:
		case AddManager, AddWorker, JoinWithOldToken:
			n++
		case Partition:
			paired = true
		case Expect:
			for _, c := range a.Conditions {
				switch c.(type) {
				case Leader, Managers, NodesReady, Running, Completed, NodeTasks, Converged, RootRotated,
					Locked, Unlocked:
				default:
					at(st.Line, "expect "+strings.SplitN(c.String(), "=", 2)[0])
				}
			}
		default:
			at(st.Line, "step "+a.Kind())
		}
	}
	if paired && n > realcluster.MaxNodesPaired || n > realcluster.MaxNodes {
		errs = append(errs, fmt.Errorf("%s: cluster: %d nodes, with those steps add: %w (at most %d, or %d with partition steps)",
			sc.File, n, ErrNotReal, realcluster.MaxNodes, realcluster.MaxNodesPaired))
	}
	return errs
}

// gives says whether the file sets key itself, rather than leaving it to
// the defaults.
func gives(sc *Scenario, key string) bool {
	return !slices.ContainsFunc(sc.Defaults, func(d string) bool { return strings.HasPrefix(d, key) })
}

// setsNetwork says whether the file gives a model for every link
// (network:), which real mode then applies in each swarmd's transport.
func setsNetwork(sc *Scenario) bool {
	return gives(sc, "network.latency") || sc.Network.Loss > 0 || sc.Network.Duplicate > 0 || sc.Network.Reorder
}

// realIgnored lists the settings the file gives (not those it left to
// the defaults) that have no real counterpart.
func realIgnored(sc *Scenario) []string {
	given := func(key string) bool { return gives(sc, key) }
	var out []string
	if given("executor.start") {
		out = append(out, "executor.start (containers start as fast as Docker starts them)")
	}
	if sc.Executor.Fail > 0 {
		out = append(out, "executor.fail")
	}
	if given("cluster.disk.sync") {
		out = append(out, "cluster.disk.sync")
	}
	if given("cluster.ca.cert_expiry") {
		out = append(out, "cluster.ca.cert_expiry")
	}
	for i := range sc.Cluster.Workers {
		if given(fmt.Sprintf("cluster.workers[%d].resources", i)) {
			out = append(out, "worker resources (nodes report the machine's)")
			break
		}
	}
	return out
}

// realImage is the local tag real mode gives a scenario's image: a name
// of the run's own, so that no image of the machine is ever replaced.
func realImage(run, image string) string {
	if image == "" {
		return ""
	}
	return "swarmsim-" + run + "/" + image
}

// scenarioImages lists every image the file names, with the behaviour
// its executor settings give it.
func scenarioImages(sc *Scenario) map[string]docker.Behaviour {
	out := map[string]docker.Behaviour{}
	add := func(img string) {
		if img == "" {
			return
		}
		var b docker.Behaviour
		if slices.Contains(sc.Executor.FailImages, img) {
			b.FailAtStart = true
		}
		if slices.Contains(sc.Executor.UnhealthyImages, img) {
			b.Unhealthy = true
		}
		for _, x := range sc.Executor.Exits {
			if x.Image == img {
				b.ExitAfter, b.ExitCode = x.After.Min, x.Code
				if x.After.Max > x.After.Min {
					b.ExitAfterMax = x.After.Max
				}
			}
		}
		out[img] = b
	}
	for _, s := range sc.Services {
		add(s.Image)
	}
	for _, st := range sc.Steps {
		switch a := st.Action.(type) {
		case Create:
			add(a.Service.Image)
		case Update:
			add(a.Spec.Image)
		}
	}
	return out
}

// RealImagesFor is the image set real mode builds for the given files,
// labelled and named under run: the swarmd image and one workload image
// per image the files name. Options.RealImages takes a set built once
// for several runs.
func RealImagesFor(run string, scs ...*Scenario) *realcluster.Images {
	im := &realcluster.Images{Run: run, Swarmd: "swarmsim-" + run + "/swarmd:latest", Workloads: map[string]docker.Behaviour{}}
	for _, sc := range scs {
		for img, b := range scenarioImages(sc) {
			im.Workloads[realImage(run, img)] = b
		}
	}
	return im
}

// RealImage is the local tag real mode runs image under, in the image
// set of run (RealImagesFor).
func RealImage(run, image string) string { return realImage(run, image) }

// RunReal runs sc against real swarmd containers on Docker: it refuses a
// file that uses anything real mode cannot do, builds the images, starts
// the cluster, runs the steps in wall-clock time, and removes every
// container, network and image it created.
func RunReal(sc *Scenario, opt Options) (*Result, error) {
	if errs := RealSupport(sc); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	seed := sc.Seed
	if opt.Seed != nil {
		seed = *opt.Seed
	}
	wall := opt.Wall
	if wall == nil {
		wall = time.Now
	}
	realcluster.DisableRyuk()
	realcluster.Quiet()
	ctx := context.Background()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	cli, err := docker.Connect(cctx)
	cancel()
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	im := opt.RealImages
	if im == nil {
		im = RealImagesFor(realcluster.NewRunID(), sc)
		bctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		err = im.Build(bctx, cli)
		cancel()
		defer func() {
			cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			_ = realcluster.RemoveImages(cctx, cli, im.Run)
		}()
		if err != nil {
			return nil, err
		}
	} else {
		for img := range scenarioImages(sc) {
			if _, ok := im.Workloads[realImage(im.Run, img)]; !ok {
				return nil, fmt.Errorf("%s: image %s is not among the prebuilt images (Options.RealImages)", sc.File, img)
			}
		}
	}
	w, err := NewRealWorld(ctx, cli, sc, im.Run, seed, im.Swarmd)
	if err != nil {
		return nil, err
	}
	defer func() {
		if opt.Log != nil {
			w.writeLogs(opt.Log)
		}
		_ = w.Close()
	}()
	var res *Result
	if err := w.setup(); err != nil {
		res = &Result{Scenario: sc, Seed: seed, Failure: fmt.Sprintf("at %s: %v", FormatDuration(w.Now()), err),
			Virtual: w.Now(), Wall: wall().Sub(w.wallStart), Notes: w.Stats().Notes}
	} else {
		res = NewRunner(sc, w, opt.Out, wall).Run(seed)
	}
	return res, nil
}

// AbortReal removes every cluster, network and image real runs of this
// process created and have not removed yet: a command calls it when it is
// interrupted mid-run.
func AbortReal(ctx context.Context) error { return realcluster.CloseAll(ctx) }

// RealWorld is a scenario's cluster as swarmd containers on Docker. Time
// is wall-clock time since the cluster answered; expectations are checked
// through the managers' control API and Docker's own view of the task
// containers.
type RealWorld struct {
	sc        *Scenario
	cli       *moby.Client
	c         *realcluster.Cluster
	run       string // the image set's run: images are named under it
	start     time.Time
	wallStart time.Time
	chooser   seeded

	mu      sync.Mutex
	state   map[string]*NodeState
	order   []string
	specs   map[string]Service
	broken  *Violation
	notes   []string
	lastChk time.Time
	// What the sampled invariants remember: who said it led each term,
	// and each service's replica bound at the last sample.
	leaders map[uint64]string
	bounds  map[string]int
	// digests are the applied-entry digests the managers reported, by
	// block, with the first manager to report each.
	digests map[blockKey]blockSeen
	// shared counts the blocks that two managers or more reported.
	shared int
	// oldTokens are the join tokens rotate_join_token replaced, by role.
	oldTokens map[string]string
	// skews are the clock_skew steps' last word on each node's clock:
	// a machine's clock, which its daemon is told again when it restarts.
	skews map[string]time.Duration
	// links are the link steps' last word on each link (from, to): the
	// sender's daemon is told again when it restarts.
	links map[[2]string]LinkModel
	// networkLinks counts the links given the file's network model.
	networkLinks int
	// unlockKey is the cluster's unlock key as the last autolock or
	// rotate_unlock_key step was told it ("" while autolock is off), as
	// an operator keeps it.
	unlockKey string
	// oldRootKey is the key ID of the root the last rotate_root_ca
	// replaced (nil before any).
	oldRootKey []byte
	// clients are the file's clients (nil without): they start once the
	// file's services are set up, and stop when the run's summary is
	// asked for (Stats).
	clients *realClients
}

// NewRealWorld starts sc's cluster (images must be built: the swarmd
// image swarmdImage and every image of the file under the names of the
// image set imageRun, RealImage).
func NewRealWorld(ctx context.Context, cli *moby.Client, sc *Scenario, imageRun string, seed uint64, swarmdImage string) (*RealWorld, error) {
	w := &RealWorld{sc: sc, cli: cli, run: imageRun, wallStart: time.Now(), chooser: seeded{rand.New(rand.NewPCG(seed, 0x7265616c))},
		state: map[string]*NodeState{}, specs: map[string]Service{}, leaders: map[uint64]string{}, bounds: map[string]int{},
		digests: map[blockKey]blockSeen{}, oldTokens: map[string]string{}, skews: map[string]time.Duration{}, links: map[[2]string]LinkModel{}}
	cfg := realcluster.Config{
		Run: realcluster.NewRunID(), Image: swarmdImage,
		RaftTick: sc.Cluster.Raft.Tick, ElectionTicks: sc.Cluster.Raft.ElectionTicks, SnapshotEvery: sc.Cluster.Raft.SnapshotEvery,
		HeartbeatPeriod: sc.Cluster.Dispatcher.Heartbeat, Autolock: sc.Cluster.Autolock,
	}
	for _, st := range sc.Steps {
		if _, ok := st.Action.(Partition); ok {
			cfg.Paired = true
		}
	}
	for _, n := range sc.Cluster.InitialNodes() {
		cfg.Nodes = append(cfg.Nodes, realcluster.NodeSpec{Name: n.Name, Manager: n.Manager})
		w.state[n.Name] = &NodeState{Name: n.Name, Manager: n.Manager, Up: true}
		w.order = append(w.order, n.Name)
	}
	c, err := realcluster.Start(ctx, cli, cfg)
	if err != nil {
		return nil, err
	}
	w.c = c
	if sc.Cluster.Autolock {
		// Keep the key, as an operator keeps what init printed, once every
		// manager's disk is wrapped under it.
		actx, cancel := context.WithTimeout(ctx, time.Minute)
		err := w.setUnlockKey(actx, func(ctx context.Context, ctl rpc.ControlClient) (*rpc.UnlockKey, error) {
			return ctl.GetUnlockKey(ctx, &rpc.Empty{})
		})
		cancel()
		if err != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
			defer cancel()
			return nil, errors.Join(fmt.Errorf("cluster.autolock: %w", err), c.Close(cctx))
		}
	}
	w.start = time.Now()
	w.notes = append(w.notes, "real mode: swarmd containers on Docker, wall-clock time")
	if ign := realIgnored(sc); len(ign) > 0 {
		w.notes = append(w.notes, "ignored in real mode: "+strings.Join(ign, ", "))
	}
	w.notes = append(w.notes, "invariants checked in real mode, sampled every second: task-on-one-node (from Docker), one-leader-per-term (from the terms each manager led since it started), committed-stays-committed (from the managers' digests of the entries they applied), replicas-bounded (from the leader's store); at the end, linearizable (on the clients' history, when the file has clients)")
	if sc.Clients != nil {
		w.clients = newRealClients(*sc.Clients, seed, w.Now, w.upManagers, func(name string) kvAPI { return w.c.Node(name).Control() })
	}
	return w, nil
}

// Close removes the cluster's containers and networks.
func (w *RealWorld) Close() error {
	if w.clients != nil {
		w.clients.stop(false)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return w.c.Close(ctx)
}

func (w *RealWorld) writeLogs(out io.Writer) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, n := range w.c.Nodes() {
		s, err := w.c.Logs(ctx, n.Spec.Name)
		if err != nil {
			fmt.Fprintf(out, "== %s: no logs: %v\n", n.Spec.Name, err)
			continue
		}
		fmt.Fprintf(out, "== %s\n%s\n", n.Spec.Name, s)
	}
}

// Cluster is the world's running cluster.
func (w *RealWorld) Cluster() *realcluster.Cluster { return w.c }

// Now implements World.
func (w *RealWorld) Now() time.Duration { return time.Since(w.start) }

// RunUntil implements World: it sleeps in short steps, sampling the
// task containers for the invariant every second.
func (w *RealWorld) RunUntil(t time.Duration, stop func() bool) bool {
	for {
		if stop != nil && stop() {
			return true
		}
		now := w.Now()
		if now >= t {
			return false
		}
		w.sample()
		time.Sleep(min(100*time.Millisecond, t-now))
	}
}

// sample checks, once a second, the invariants real mode can see from
// outside: task-on-one-node on Docker's view (no task runs in containers
// on two nodes); one-leader-per-term on the terms each manager says it
// led since it started (no two managers lead in one term);
// committed-stays-committed on the managers' digests of what they
// applied; replicas-bounded on the leader's store (as the simulator's
// checker counts it). Samples of Docker's containers and of the leader's
// store can miss a short-lived breach; what they report did happen.
func (w *RealWorld) sample() {
	if time.Since(w.lastChk) < time.Second {
		return
	}
	w.lastChk = time.Now()
	if w.checks(TaskOnOneNode) {
		w.sampleContainers()
	}
	if !w.checks(OneLeaderPerTerm) && !w.checks(ReplicasBounded) && !w.checks(CommittedStaysCommitted) {
		return
	}
	sts := w.statuses()
	if w.checks(OneLeaderPerTerm) {
		w.sampleLeaders(askManagers(w, sts, func(ctx context.Context, d rpc.DaemonClient) (*rpc.LedTermsResponse, error) {
			return d.LedTerms(ctx, &rpc.Empty{})
		}))
	}
	if w.checks(CommittedStaysCommitted) {
		w.sampleDigests(askManagers(w, sts, func(ctx context.Context, d rpc.DaemonClient) (*rpc.AppliedDigestsResponse, error) {
			return d.AppliedDigests(ctx, &rpc.Empty{})
		}))
	}
	if l, _ := w.leaderOf(sts); l != "" && w.checks(ReplicasBounded) {
		w.sampleReplicas(w.c.Node(l).Control())
	}
}

func (w *RealWorld) violate(inv Invariant, format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.broken == nil {
		w.broken = &Violation{Invariant: inv, At: w.Now(), Detail: fmt.Sprintf(format, args...)}
	}
}

func (w *RealWorld) sampleContainers() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tasks, err := w.c.TaskContainers(ctx)
	if err != nil {
		return
	}
	on := map[string]string{}
	for _, t := range tasks {
		if !t.Running || t.TaskID == "" {
			continue
		}
		if prev, ok := on[t.TaskID]; ok && prev != t.Node {
			w.violate(TaskOnOneNode, "task %s runs on %s and %s", t.TaskID, prev, t.Node)
			return
		}
		on[t.TaskID] = t.Node
	}
}

// sampleLeaders records which manager led in which term, from every
// term each has led since it started (Daemon.LedTerms), so that even a
// leadership too short for any sample to see is checked.
func (w *RealWorld) sampleLeaders(mls []managerAnswer[rpc.LedTermsResponse]) {
	for _, m := range mls {
		for _, term := range m.resp.GetTerms() {
			if prev, ok := w.leaders[term]; ok && prev != m.name {
				w.violate(OneLeaderPerTerm, "%s and %s both led term %d", prev, m.name, term)
				return
			}
			w.leaders[term] = m.name
		}
	}
}

// managerAnswer is one manager's answer to a question of its daemon.
type managerAnswer[T any] struct {
	name string
	resp *T
}

// managerDigests is one manager's applied-entry digests.
type managerDigests = managerAnswer[rpc.AppliedDigestsResponse]

// askManagers asks the managers that answered their status a question of
// their daemon (on the local socket), at once, and returns the answers
// that came.
func askManagers[T any](w *RealWorld, sts []managerStatus, ask func(context.Context, rpc.DaemonClient) (*T, error)) []managerAnswer[T] {
	names := make([]string, len(sts))
	for i, m := range sts {
		names[i] = m.name
	}
	var out []managerAnswer[T]
	for i, r := range askEach(names, func(ctx context.Context, name string) (*T, error) {
		return ask(ctx, w.c.Node(name).Daemon())
	}) {
		if r != nil {
			out = append(out, managerAnswer[T]{names[i], r})
		}
	}
	return out
}

// blockKey names a block of applied entries: its size and last index.
type blockKey struct{ size, last uint64 }

type blockSeen struct {
	hash   uint64
	node   string // the first to report it
	shared bool   // another manager reported it too
}

// sampleDigests compares the digests of applied entries each manager
// reports with those reported before, by any manager at any time: a block
// that hashes differently was applied as different entries, by two
// managers or by one before and after it restarted from its disk.
func (w *RealWorld) sampleDigests(mds []managerDigests) {
	for _, m := range mds {
		size := m.resp.GetBlock()
		for _, d := range m.resp.GetDigests() {
			k := blockKey{size, d.GetLastIndex()}
			seen, ok := w.digests[k]
			switch {
			case !ok:
				w.digests[k] = blockSeen{hash: d.GetHash(), node: m.name}
			case seen.hash != d.GetHash():
				w.violate(CommittedStaysCommitted, "%s applied entries %d to %d differently from what %s applied there",
					m.name, k.last-size+1, k.last, seen.node)
				return
			case !seen.shared && m.name != seen.node:
				seen.shared = true
				w.digests[k] = seen
				w.shared++
			}
		}
	}
}

// sampleReplicas counts each replicated service's running tasks in the
// leader's store against replicaBound, holding the old bound while a
// scale-down's excess tasks stop (as the simulator's checker does).
func (w *RealWorld) sampleReplicas(ctl rpc.ControlClient) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	svcs, err := ctl.ListServices(ctx, &rpc.ListServicesRequest{})
	if err != nil {
		return
	}
	tasks, err := ctl.ListTasks(ctx, &rpc.ListTasksRequest{})
	if err != nil {
		return
	}
	running := map[string]int{}
	for _, t := range tasks.GetTasks() {
		if countsAsRunning(t) {
			running[t.GetServiceId()]++
		}
	}
	list := svcs.GetServices()
	slices.SortFunc(list, func(a, b *api.Service) int { return strings.Compare(a.GetId(), b.GetId()) })
	for _, svc := range list {
		spec := svc.GetSpec()
		if spec.GetReplicated() == nil {
			continue
		}
		id, n := svc.GetId(), running[svc.GetId()]
		bound := replicaBound(spec)
		if held, ok := w.bounds[id]; ok && bound < held && n > bound {
			bound = held // a scale-down under way
		}
		w.bounds[id] = bound
		if n > bound {
			w.violate(ReplicasBounded, "service %s has %d tasks running; replicas %d + update parallelism allow %d",
				spec.GetName(), n, spec.GetReplicated().GetReplicas(), bound)
			return
		}
	}
}

func (w *RealWorld) checks(inv Invariant) bool {
	return len(w.sc.Check) == 0 || slices.Contains(w.sc.Check, inv)
}

// Nodes implements World.
func (w *RealWorld) Nodes() []NodeState {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]NodeState, 0, len(w.order))
	for _, n := range w.order {
		out = append(out, *w.state[n])
	}
	return out
}

// Chooser implements World.
func (w *RealWorld) Chooser() Chooser { return w.chooser }

// Violation implements World.
func (w *RealWorld) Violation() *Violation {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.broken
}

// Stats implements World. It samples the invariants a last time (what
// happened since the last second's sample counts too), then stops the
// clients and checks their history.
func (w *RealWorld) Stats() WorldStats {
	w.lastChk = time.Time{}
	w.sample()
	w.mu.Lock()
	notes := slices.Clone(w.notes)
	w.mu.Unlock()
	if w.checks(OneLeaderPerTerm) {
		led := map[string]bool{}
		for _, name := range w.leaders {
			led[name] = true
		}
		notes = append(notes, fmt.Sprintf("one-leader-per-term: %d terms led, by %d managers", len(w.leaders), len(led)))
	}
	if setsNetwork(w.sc) {
		notes = append(notes, fmt.Sprintf("network: the file's link model set on %d links, in the sending swarmd's transport", w.networkLinks))
	}
	if w.checks(CommittedStaysCommitted) {
		notes = append(notes, fmt.Sprintf("committed-stays-committed: %d blocks of applied entries reported, %d of them by two managers or more",
			len(w.digests), w.shared))
	}
	if w.clients != nil {
		cn, broken := w.clients.stop(w.checks(Linearizable))
		if broken != "" {
			w.violate(Linearizable, "%s", broken)
		}
		notes = append(notes, cn...)
	}
	return WorldStats{Notes: notes}
}

// upManagers lists the managers up now, in the run's order.
func (w *RealWorld) upManagers() []string {
	var out []string
	for _, n := range w.Nodes() {
		if n.Manager && n.Up && !n.Removed {
			out = append(out, n.Name)
		}
	}
	return out
}

// ---- what the managers say

type managerStatus struct {
	name string
	st   *rpc.StatusResponse
}

// statuses asks every running manager for its status, at once.
func (w *RealWorld) statuses() []managerStatus {
	names := w.upManagers()
	var out []managerStatus
	for i, st := range askEach(names, func(ctx context.Context, name string) (*rpc.StatusResponse, error) {
		return w.c.Node(name).Daemon().Status(ctx, &rpc.Empty{})
	}) {
		if st != nil {
			out = append(out, managerStatus{names[i], st})
		}
	}
	return out
}

// askEach calls f for every name at once, each call bounded by 2 s, and
// returns the answers in the order of names (nil where none came).
func askEach[T any](names []string, f func(ctx context.Context, name string) (*T, error)) []*T {
	out := make([]*T, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if r, err := f(ctx, name); err == nil {
				out[i] = r
			}
		})
	}
	wg.Wait()
	return out
}

// managerCount is how many managers the cluster has (up or not).
func (w *RealWorld) managerCount() int {
	n := 0
	for _, s := range w.Nodes() {
		if s.Manager && !s.Removed {
			n++
		}
	}
	return n
}

// leader is the leader a quorum of managers names, and the leader's own
// status ("" and nil when there is none).
func (w *RealWorld) leader() (string, *rpc.StatusResponse) {
	return w.leaderOf(w.statuses())
}

// leaderOf is leader on statuses already asked for.
func (w *RealWorld) leaderOf(sts []managerStatus) (string, *rpc.StatusResponse) {
	votes := map[string]int{}
	for _, m := range sts {
		if l := m.st.GetLeader(); l != "" {
			votes[l]++
		}
	}
	quorum := w.managerCount()/2 + 1
	for id, v := range votes {
		if v < quorum {
			continue
		}
		for _, m := range sts {
			if m.st.GetNodeId() == id && m.st.GetIsLeader() {
				return m.name, m.st
			}
		}
	}
	return "", nil
}

// Leader implements World.
func (w *RealWorld) Leader() string {
	l, _ := w.leader()
	return l
}

// control calls f on the leader's control API, retrying while no leader
// answers or the one asked is no longer leader, until ctx ends. retried
// tells f whether an earlier attempt may have been applied.
func (w *RealWorld) control(ctx context.Context, f func(ctx context.Context, ctl rpc.ControlClient, retried bool) error) error {
	return w.controlOn(ctx, func(ctx context.Context, n *realcluster.Node, retried bool) error {
		return f(ctx, n.Control(), retried)
	})
}

// controlOn is control for a call that needs more of the leader than its
// control API (its daemon, its certificate): f gets the leader's node,
// each attempt bounded by 10 s.
func (w *RealWorld) controlOn(ctx context.Context, f func(ctx context.Context, n *realcluster.Node, retried bool) error) error {
	return w.onLeader(ctx, retryControl, func(ctx context.Context, l string, _ *rpc.StatusResponse, retried bool) error {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return f(cctx, w.c.Node(l), retried)
	})
}

// retryControl: the codes of a control call worth trying again on the
// next leader (no leader, not the leader, timed out, lost a race).
func retryControl(c codes.Code) bool {
	switch c {
	case codes.Unavailable, codes.FailedPrecondition, codes.DeadlineExceeded, codes.Aborted:
		return true
	}
	return false
}

// onLeader calls f with the leader a quorum of managers names and its
// status, again while none is known or f fails with a code retry accepts,
// until ctx ends; retried tells f whether an earlier attempt may have
// been applied.
func (w *RealWorld) onLeader(ctx context.Context, retry func(codes.Code) bool, f func(ctx context.Context, leader string, st *rpc.StatusResponse, retried bool) error) error {
	retried := false
	for {
		var err error
		if l, st := w.leader(); l == "" {
			err = errors.New("no leader")
		} else {
			if err = f(ctx, l, st, retried); err == nil {
				return nil
			}
			if !retry(status.Code(err)) {
				return err
			}
			retried = true
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// stepContext bounds a step by what is left of the run.
func (w *RealWorld) stepContext() (context.Context, context.CancelFunc) {
	left := w.sc.Duration - w.Now()
	if left < time.Second {
		left = time.Second
	}
	return context.WithTimeout(context.Background(), left)
}

// ---- setup and steps

// setup labels the nodes, and creates the file's secrets, configs and
// services, as SimWorld.setup does.
func (w *RealWorld) setup() error {
	ctx, cancel := w.stepContext()
	defer cancel()
	if err := w.defaultLinks(ctx, slices.Clone(w.order)); err != nil {
		return err
	}
	for _, n := range w.sc.Cluster.InitialNodes() {
		if len(n.Labels) == 0 {
			continue
		}
		if err := w.labelNode(ctx, n.Name, n.Labels); err != nil {
			return fmt.Errorf("labelling %s: %w", n.Name, err)
		}
	}
	for _, s := range w.sc.Secrets {
		if err := w.createSecret(ctx, Secret(s)); err != nil {
			return err
		}
	}
	for _, c := range w.sc.Configs {
		if err := w.createConfig(ctx, Config(c)); err != nil {
			return err
		}
	}
	for _, s := range w.sc.Services {
		if err := w.createService(ctx, s); err != nil {
			return fmt.Errorf("setting up the file's services: %w", err)
		}
	}
	if w.clients != nil {
		w.clients.start()
	}
	return nil
}

func (w *RealWorld) labelNode(ctx context.Context, name string, labels map[string]string) error {
	// The node registers once it has a session: wait for it.
	return w.control(ctx, func(ctx context.Context, ctl rpc.ControlClient, _ bool) error {
		n, err := ctl.GetNode(ctx, &rpc.Ref{Ref: name})
		if status.Code(err) == codes.NotFound {
			return status.Error(codes.Unavailable, "not registered yet")
		}
		if err != nil {
			return err
		}
		spec := proto.Clone(n.GetSpec()).(*api.NodeSpec)
		spec.Labels = labels
		_, err = ctl.UpdateNode(ctx, &rpc.UpdateNodeRequest{Ref: n.GetId(), Version: n.GetMeta().GetVersion(), Spec: spec})
		return err
	})
}

func alreadyDone(err error, retried bool, code codes.Code) error {
	if retried && status.Code(err) == code {
		return nil
	}
	return err
}

func (w *RealWorld) createSecret(ctx context.Context, s Secret) error {
	return w.control(ctx, func(ctx context.Context, ctl rpc.ControlClient, retried bool) error {
		_, err := ctl.CreateSecret(ctx, &api.SecretSpec{Name: s.Name, Data: []byte(s.Data)})
		return alreadyDone(err, retried, codes.AlreadyExists)
	})
}

func (w *RealWorld) createConfig(ctx context.Context, c Config) error {
	return w.control(ctx, func(ctx context.Context, ctl rpc.ControlClient, retried bool) error {
		_, err := ctl.CreateConfig(ctx, &api.ConfigSpec{Name: c.Name, Data: []byte(c.Data)})
		return alreadyDone(err, retried, codes.AlreadyExists)
	})
}

// spec is the api spec of svc with its image under the run's name.
func (w *RealWorld) spec(svc Service) *api.ServiceSpec {
	spec := ServiceSpec(svc)
	spec.GetTask().GetContainer().Image = realImage(w.run, svc.Image)
	return spec
}

func (w *RealWorld) createService(ctx context.Context, svc Service) error {
	err := w.control(ctx, func(ctx context.Context, ctl rpc.ControlClient, retried bool) error {
		_, err := ctl.CreateService(ctx, &rpc.CreateServiceRequest{Spec: w.spec(svc)})
		return alreadyDone(err, retried, codes.AlreadyExists)
	})
	if err == nil {
		w.mu.Lock()
		w.specs[svc.Name] = svc
		w.mu.Unlock()
	}
	return err
}

// skewClock tells n's daemon how far its clock is off (on its local
// socket): the daemon's wall clock, not the machine's, moves.
func (w *RealWorld) skewClock(ctx context.Context, n string, by time.Duration) error {
	if _, err := w.c.Node(n).Daemon().SkewClock(ctx, &rpc.SkewClockRequest{By: int64(by)}); err != nil {
		return fmt.Errorf("skewing %s's clock: %w", n, err)
	}
	return nil
}

// retell tells a restarted node's daemon what the steps made of its
// machine, which the daemon forgot: how far its clock is off, and the
// links it sends on.
func (w *RealWorld) retell(ctx context.Context, n string) error {
	if by := w.skews[n]; by != 0 {
		if err := w.skewClock(ctx, n, by); err != nil {
			return err
		}
	}
	var tos []string
	for k := range w.links {
		if k[0] == n {
			tos = append(tos, k[1])
		}
	}
	slices.Sort(tos)
	for _, to := range tos {
		if err := w.setLink(ctx, n, to, w.links[[2]string{n, to}]); err != nil {
			return err
		}
	}
	return nil
}

// defaultLinks gives every link to and from the nodes named the file's
// network model (when it sets one), except those a link step set. The
// nodes joined before: their joins ran on plain links.
func (w *RealWorld) defaultLinks(ctx context.Context, names []string) error {
	if !setsNetwork(w.sc) {
		return nil
	}
	w.mu.Lock()
	all := slices.Clone(w.order)
	w.mu.Unlock()
	for _, n := range names {
		for _, o := range all {
			if o == n {
				continue
			}
			for _, k := range [][2]string{{n, o}, {o, n}} {
				if _, ok := w.links[k]; ok {
					continue
				}
				w.links[k] = w.sc.Network
				if w.isUp(k[0]) {
					if err := w.setLink(ctx, k[0], k[1], w.sc.Network); err != nil {
						return err
					}
					w.networkLinks++
				}
			}
		}
	}
	return nil
}

// setLink makes the messages from's daemon sends to's suffer m (on
// from's local socket): raft, the dispatcher's and the CA's messages.
func (w *RealWorld) setLink(ctx context.Context, from, to string, m LinkModel) error {
	req := &rpc.SetLinkFaultRequest{
		To:      w.c.Node(to).ID(),
		Latency: int64(m.Latency.Min), Jitter: int64(m.Latency.Max - m.Latency.Min),
		Loss: m.Loss, Duplicate: m.Duplicate, Reorder: m.Reorder,
	}
	if _, err := w.c.Node(from).Daemon().SetLinkFault(ctx, req); err != nil {
		return fmt.Errorf("link %s -> %s: %w", from, to, err)
	}
	return nil
}

func (w *RealWorld) isUp(name string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.state[name].Up
}

func (w *RealWorld) setState(name string, f func(*NodeState)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f(w.state[name])
}

// Apply implements World. Steps run to their end before Apply returns.
func (w *RealWorld) Apply(a Action, targets []string, done func(error)) {
	ctx, cancel := w.stepContext()
	defer cancel()
	done(w.apply(ctx, a, targets))
}

func (w *RealWorld) apply(ctx context.Context, a Action, targets []string) error {
	each := func(f func(string) error) error {
		for _, t := range targets {
			if err := f(t); err != nil {
				return err
			}
		}
		return nil
	}
	switch a := a.(type) {
	case Crash:
		return each(func(n string) error {
			if err := w.c.Kill(ctx, n); err != nil {
				return err
			}
			w.setState(n, func(s *NodeState) { s.Up, s.Crashed = false, true })
			return nil
		})
	case Stop:
		return each(func(n string) error {
			if err := w.c.Stop(ctx, n); err != nil {
				return err
			}
			w.setState(n, func(s *NodeState) { s.Up, s.Stopped = false, true })
			return nil
		})
	case Restart, Start:
		return each(func(n string) error {
			if err := w.c.Restart(ctx, n); err != nil {
				return err
			}
			w.setState(n, func(s *NodeState) { s.Up, s.Crashed, s.Stopped = true, false, false })
			return w.retell(ctx, n)
		})
	case Link:
		i := slices.Index(targets, "|")
		for _, from := range targets[:i] {
			for _, to := range targets[i+1:] {
				if from == to {
					continue
				}
				w.links[[2]string{from, to}] = a.Model
				if !w.isUp(from) {
					continue // told when it restarts
				}
				if err := w.setLink(ctx, from, to, a.Model); err != nil {
					return err
				}
			}
		}
		return nil
	case ClockSkew:
		return each(func(n string) error {
			w.skews[n] = a.By
			if !w.isUp(n) {
				return nil // told when it restarts
			}
			return w.skewClock(ctx, n, a.By)
		})
	case Partition:
		var groups [][]string
		cur := []string{}
		for _, t := range targets {
			if t == "|" {
				groups = append(groups, cur)
				cur = []string{}
				continue
			}
			cur = append(cur, t)
		}
		groups = append(groups, cur)
		for i := range groups {
			for j := i + 1; j < len(groups); j++ {
				for _, x := range groups[i] {
					for _, y := range groups[j] {
						if x == y {
							continue
						}
						if err := w.c.Cut(ctx, x, y); err != nil {
							return err
						}
					}
				}
			}
		}
		return nil
	case Isolate:
		return each(func(n string) error { return w.c.Isolate(ctx, n) })
	case Heal:
		return w.c.Heal(ctx)
	case Create:
		return w.createService(ctx, a.Service)
	case Secret:
		return w.createSecret(ctx, a)
	case Config:
		return w.createConfig(ctx, a)
	case Remove:
		return w.control(ctx, func(ctx context.Context, ctl rpc.ControlClient, retried bool) error {
			_, err := ctl.RemoveService(ctx, &rpc.Ref{Ref: a.Service})
			return alreadyDone(err, retried, codes.NotFound)
		})
	case Scale:
		err := w.control(ctx, func(ctx context.Context, ctl rpc.ControlClient, _ bool) error {
			_, err := ctl.ScaleService(ctx, &rpc.ScaleServiceRequest{Ref: a.Service, Replicas: uint64(a.Replicas)})
			return err
		})
		if err == nil {
			w.mu.Lock()
			svc := w.specs[a.Service]
			svc.Replicas = a.Replicas
			w.specs[a.Service] = svc
			w.mu.Unlock()
		}
		return err
	case Update:
		w.mu.Lock()
		svc := w.specs[a.Service]
		w.mu.Unlock()
		a.Apply(&svc)
		spec := w.spec(svc)
		err := w.control(ctx, func(ctx context.Context, ctl rpc.ControlClient, retried bool) error {
			cur, err := ctl.GetService(ctx, &rpc.Ref{Ref: a.Service})
			if err != nil {
				return err
			}
			if retried && proto.Equal(cur.GetSpec(), spec) {
				return nil
			}
			_, err = ctl.UpdateService(ctx, &rpc.UpdateServiceRequest{Ref: a.Service, Version: cur.GetMeta().GetVersion(), Spec: spec})
			return err
		})
		if err == nil {
			w.mu.Lock()
			w.specs[a.Service] = svc
			w.mu.Unlock()
		}
		return err
	case Rollback:
		var g rollbackGuard
		return w.control(ctx, func(ctx context.Context, ctl rpc.ControlClient, retried bool) error {
			cur, err := ctl.GetService(ctx, &rpc.Ref{Ref: a.Service})
			if err != nil {
				return err
			}
			if g.applied(cur, retried) {
				return nil
			}
			_, err = ctl.RollbackService(ctx, &rpc.Ref{Ref: a.Service})
			return err
		})
	case Drain:
		return each(func(n string) error { return w.editNode(ctx, n, rpc.NodeEdit_NODE_EDIT_DRAIN) })
	case Pause:
		return each(func(n string) error { return w.editNode(ctx, n, rpc.NodeEdit_NODE_EDIT_PAUSE) })
	case Activate:
		return each(func(n string) error { return w.editNode(ctx, n, rpc.NodeEdit_NODE_EDIT_ACTIVATE) })
	case Promote:
		return each(func(n string) error {
			if err := w.editNode(ctx, n, rpc.NodeEdit_NODE_EDIT_PROMOTE); err != nil {
				return err
			}
			w.setState(n, func(s *NodeState) { s.Manager = true })
			return w.waitVoter(ctx, n, true)
		})
	case Demote:
		return each(func(n string) error {
			if err := w.editNode(ctx, n, rpc.NodeEdit_NODE_EDIT_DEMOTE); err != nil {
				return err
			}
			if err := w.waitVoter(ctx, n, false); err != nil {
				return err
			}
			w.setState(n, func(s *NodeState) { s.Manager = false })
			return nil
		})
	case FailTasks:
		return w.failTasks(ctx, a)
	case AddManager:
		return w.addNode(ctx, a.Name, true, nil)
	case AddWorker:
		return w.addNode(ctx, a.Name, false, a.Labels)
	case RemoveManager:
		return each(func(n string) error { return w.removeManager(ctx, n) })
	case RemoveWorker:
		return each(func(n string) error { return w.removeWorker(ctx, n) })
	case RotateJoinToken:
		return w.rotateJoinToken(ctx, a.Role)
	case JoinWithOldToken:
		return w.joinWithOldToken(ctx, a.Name)
	case RotateRootCA:
		return w.rotateRootCA(ctx)
	case Autolock:
		return w.setUnlockKey(ctx, func(ctx context.Context, ctl rpc.ControlClient) (*rpc.UnlockKey, error) {
			return ctl.SetAutolock(ctx, &rpc.SetAutolockRequest{Autolock: a.On})
		})
	case RotateUnlockKey:
		return w.setUnlockKey(ctx, func(ctx context.Context, ctl rpc.ControlClient) (*rpc.UnlockKey, error) {
			return ctl.RotateUnlockKey(ctx, &rpc.RotateUnlockKeyRequest{})
		})
	case Unlock:
		return w.unlock(ctx, targets)
	case Compromise:
		return w.compromise(ctx, targets[0])
	}
	return fmt.Errorf("%s: %w", a.Kind(), ErrNotReal)
}

// addNode starts a new node that joins through the leader; a manager
// counts once it votes, a worker once it registered (and is labelled).
func (w *RealWorld) addNode(ctx context.Context, name string, mgr bool, labels map[string]string) error {
	never := func(codes.Code) bool { return false } // a node started is not started again
	err := w.onLeader(ctx, never, func(ctx context.Context, l string, _ *rpc.StatusResponse, _ bool) error {
		return w.c.Add(ctx, realcluster.NodeSpec{Name: name, Manager: mgr}, l)
	})
	if err != nil {
		return fmt.Errorf("add %s: %w", name, err)
	}
	w.mu.Lock()
	w.state[name] = &NodeState{Name: name, Manager: mgr, Up: true}
	w.order = append(w.order, name)
	w.mu.Unlock()
	if err := w.defaultLinks(ctx, []string{name}); err != nil {
		return err
	}
	if mgr {
		return w.waitVoter(ctx, name, true)
	}
	if len(labels) > 0 {
		return w.labelNode(ctx, name, labels)
	}
	return nil
}

// removeManager asks the leader to take name out of raft (a leader
// hands its leadership over first), then the node's machine goes away.
func (w *RealWorld) removeManager(ctx context.Context, name string) error {
	id := w.c.Node(name).ID()
	retry := func(c codes.Code) bool {
		return c == codes.Unavailable || c == codes.DeadlineExceeded || c == codes.Aborted
	}
	err := w.onLeader(ctx, retry, func(ctx context.Context, l string, st *rpc.StatusResponse, _ bool) error {
		if !slices.ContainsFunc(st.GetMembers(), func(m *rpc.RaftMemberStatus) bool { return m.GetNodeId() == id }) {
			return nil // out, by this call or by an earlier attempt
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err := w.c.Node(l).Daemon().RemoveManager(cctx, &rpc.Ref{Ref: id})
		return err
	})
	if err != nil {
		return fmt.Errorf("remove manager %s: %w", name, err)
	}
	return w.goAway(ctx, name)
}

// removeWorker: the worker's machine goes away and the operator removes
// its node, as `docker swarm leave` then `docker node rm --force`.
func (w *RealWorld) removeWorker(ctx context.Context, name string) error {
	if err := w.goAway(ctx, name); err != nil {
		return err
	}
	return w.control(ctx, func(ctx context.Context, ctl rpc.ControlClient, retried bool) error {
		_, err := ctl.RemoveNode(ctx, &rpc.RemoveNodeRequest{Ref: name, Force: true})
		return alreadyDone(err, retried, codes.NotFound)
	})
}

// rotateJoinToken rotates role's join token through the leader, keeping
// the old one for join_with_old_token.
func (w *RealWorld) rotateJoinToken(ctx context.Context, role string) error {
	var old string
	err := w.controlOn(ctx, func(ctx context.Context, n *realcluster.Node, retried bool) error {
		cur, err := n.Daemon().JoinTokens(ctx, &rpc.Empty{})
		if err != nil {
			return err
		}
		tok := cur.GetWorker()
		if role == "manager" {
			tok = cur.GetManager()
		}
		if retried && old != "" && tok != old {
			return nil // the earlier attempt rotated it
		}
		old = tok
		_, err = n.Control().RotateJoinToken(ctx, &rpc.RotateJoinTokenRequest{Role: role})
		return err
	})
	if err != nil {
		return fmt.Errorf("rotate the %s join token: %w", role, err)
	}
	w.mu.Lock()
	w.oldTokens[role] = old
	w.mu.Unlock()
	return nil
}

// joinWithOldToken starts a worker that presents the rotated worker
// token: the step fails if it gets in, and finishes once it gave up.
func (w *RealWorld) joinWithOldToken(ctx context.Context, name string) error {
	w.mu.Lock()
	old := w.oldTokens["worker"]
	w.mu.Unlock()
	if old == "" {
		return errors.New("join_with_old_token: the worker token was never rotated")
	}
	l, _ := w.leader()
	if l == "" {
		return errors.New("join_with_old_token: no leader to join through")
	}
	joined, out, err := w.c.TryJoin(ctx, realcluster.NodeSpec{Name: name}, l, old)
	w.mu.Lock()
	w.state[name] = &NodeState{Name: name, Up: joined, Removed: !joined}
	w.order = append(w.order, name)
	w.mu.Unlock()
	switch {
	case err != nil:
		return err
	case joined:
		return fmt.Errorf("%s joined with a rotated token", name)
	}
	if nodes, err := w.listNodes(ctx); err == nil {
		for _, n := range nodes {
			if n.GetDescription().GetHostname() == name {
				return fmt.Errorf("%s, refused, has a node in the store (%s)", name, n.GetId())
			}
		}
	}
	w.mu.Lock()
	w.notes = append(w.notes, fmt.Sprintf("security: %s, joining with a rotated token, was refused: %s", name, lastLine(out)))
	w.mu.Unlock()
	return nil
}

// rotateRootCA starts a root rotation through the leader, noting the
// root it replaces: the one that signed the certificate the leader
// presents.
func (w *RealWorld) rotateRootCA(ctx context.Context) error {
	var old []byte
	err := w.controlOn(ctx, func(ctx context.Context, n *realcluster.Node, retried bool) error {
		if old == nil {
			cert, err := n.PresentedCertificate(ctx)
			if err != nil {
				return status.Error(codes.Unavailable, err.Error())
			}
			old = cert.AuthorityKeyId
		}
		_, err := n.Control().RotateRootCA(ctx, &rpc.Empty{})
		if retried && status.Code(err) == codes.FailedPrecondition {
			return nil // the earlier attempt started it: a rotation is under way
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("rotate the root CA: %w", err)
	}
	w.mu.Lock()
	w.oldRootKey = old
	w.mu.Unlock()
	return nil
}

// rootRotated holds when every node that has not left presents a
// certificate of one root, and not of the root the last rotation
// replaced.
func (w *RealWorld) rootRotated() (bool, string) {
	w.mu.Lock()
	old := w.oldRootKey
	w.mu.Unlock()
	if old == nil {
		return false, "no root rotation was started"
	}
	var names []string
	for _, n := range w.Nodes() {
		if !n.Removed {
			names = append(names, n.Name)
		}
	}
	certs := askEach(names, func(ctx context.Context, name string) (*x509.Certificate, error) {
		return w.c.Node(name).PresentedCertificate(ctx)
	})
	var behind []string
	roots := map[string]bool{}
	for i, c := range certs {
		switch {
		case c == nil:
			behind = append(behind, names[i]+" (no answer)")
		case bytes.Equal(c.AuthorityKeyId, old):
			behind = append(behind, names[i])
		default:
			roots[string(c.AuthorityKeyId)] = true
		}
	}
	switch {
	case len(behind) > 0:
		return false, fmt.Sprintf("%d of %d nodes on the new root (not %s)", len(names)-len(behind), len(names), strings.Join(behind, ", "))
	case len(roots) > 1:
		return false, fmt.Sprintf("the %d nodes present certificates of %d roots", len(names), len(roots))
	}
	return true, fmt.Sprintf("all %d nodes present a certificate of the new root", len(names))
}

// setUnlockKey turns autolock on or off, or rotates the unlock key,
// through the leader's control API, keeps the key it answers, and finishes
// once every running, unlocked manager says its disk keys are wrapped
// under that key (under none with autolock off) and synced: a crash from
// then on comes back locked with it.
func (w *RealWorld) setUnlockKey(ctx context.Context, call func(context.Context, rpc.ControlClient) (*rpc.UnlockKey, error)) error {
	var key string
	err := w.control(ctx, func(ctx context.Context, ctl rpc.ControlClient, _ bool) error {
		k, err := call(ctx, ctl)
		key = k.GetUnlockKey()
		return err
	})
	if err != nil {
		return err
	}
	w.mu.Lock()
	w.unlockKey = key
	w.mu.Unlock()
	want := realnet.UnlockKeyFingerprint(key)
	for {
		behind := []string{}
		for _, m := range w.statuses() {
			if m.st.GetLocked() || m.st.GetRole() != "manager" {
				continue
			}
			if m.st.GetUnlockKeyFingerprint() != want || !m.st.GetKeysDurable() {
				behind = append(behind, m.name)
			}
		}
		if len(behind) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not re-wrap their keys: %w", strings.Join(behind, ", "), ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// unlock gives each locked manager of targets the unlock key through its
// local socket, as `swarmd unlock` does, and fails if none was locked.
func (w *RealWorld) unlock(ctx context.Context, targets []string) error {
	w.mu.Lock()
	key := w.unlockKey
	w.mu.Unlock()
	if key == "" {
		return errors.New("autolock is off: there is no unlock key to give")
	}
	unlocked := 0
	for _, name := range targets {
		d := w.c.Node(name).Daemon()
		st, err := d.Status(ctx, &rpc.Empty{})
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if !st.GetLocked() {
			continue
		}
		if _, err := d.Unlock(ctx, &rpc.UnlockRequest{Key: key}); err != nil {
			return fmt.Errorf("unlock %s: %w", name, err)
		}
		unlocked++
	}
	if unlocked == 0 {
		return fmt.Errorf("none of %s is locked", strings.Join(targets, ", "))
	}
	return nil
}

// lockState evaluates `locked: X` and `unlocked: X` on X's own status.
func (w *RealWorld) lockState(ctx context.Context, sel Selector, wantLocked bool) (bool, string) {
	names := sel.Resolve(w.candidates(), w.Leader(), w.chooser)
	if len(names) == 0 {
		return false, "no node " + sel.String()
	}
	name := names[0]
	st, err := w.c.Node(name).Daemon().Status(ctx, &rpc.Empty{})
	switch {
	case err != nil:
		return false, name + ": " + err.Error()
	case st.GetLocked():
		return wantLocked, name + " is locked"
	case st.GetRole() != "manager":
		return false, name + " runs no manager"
	}
	return !wantLocked, name + " is unlocked"
}

// compromise steals name's certificate and key from its disk and, under
// that identity, calls every control API method and every daemon method
// but Status on every manager's network port, over mutual TLS: each must
// be refused (PermissionDenied or Unauthenticated). A call that reaches no
// one proves nothing; one that gets any other answer is a breach. Real
// mode probes the RPC surface only: the simulator's compromise also
// speaks raft and forges manager answers on the nodes' streams.
func (w *RealWorld) compromise(ctx context.Context, name string) error {
	creds, err := w.c.StealCredentials(name)
	if err != nil {
		return fmt.Errorf("compromise %s: %w", name, err)
	}
	if creds.Role() == env.RoleManager {
		return fmt.Errorf("compromise %s: a manager's certificate may call everything; compromise a worker", name)
	}
	tc := realnet.NewNodeTLS(creds, "", nil).Config()
	var methods []string
	for _, sd := range []grpc.ServiceDesc{rpc.Control_ServiceDesc, rpc.Daemon_ServiceDesc} {
		for _, m := range sd.Methods {
			if full := "/" + sd.ServiceName + "/" + m.MethodName; full != rpc.Daemon_Status_FullMethodName {
				methods = append(methods, full)
			}
		}
	}
	var sent, refused, lost int
	var breaches []string
	for _, mg := range w.upManagers() {
		if mg == name {
			continue
		}
		conn, err := grpc.NewClient(w.c.Node(mg).Addr(), realnet.DialOptions(tc, 0)...)
		if err != nil {
			return fmt.Errorf("compromise %s: %w", name, err)
		}
		for _, m := range methods {
			cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			err := conn.Invoke(cctx, m, &rpc.Empty{}, &rpc.Empty{})
			cancel()
			sent++
			switch status.Code(err) {
			case codes.PermissionDenied, codes.Unauthenticated:
				refused++
			case codes.Unavailable, codes.DeadlineExceeded:
				lost++
			default:
				breaches = append(breaches, fmt.Sprintf("%s on %s: %v", m, mg, err))
			}
		}
		conn.Close()
	}
	w.mu.Lock()
	w.notes = append(w.notes, fmt.Sprintf("security: compromise of %s at %s: %d calls sent to the managers' network ports, %d refused, %d reached no one",
		name, FormatDuration(w.Now()), sent, refused, lost))
	w.mu.Unlock()
	switch {
	case len(breaches) > 0:
		return fmt.Errorf("the attacker holding %s's certificate got through: %s", name, strings.Join(breaches, "; "))
	case refused == 0:
		return fmt.Errorf("compromise %s: none of the attacker's %d calls was answered: the step proves nothing", name, sent)
	}
	return nil
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// goAway kills a node's container and its tasks for good.
func (w *RealWorld) goAway(ctx context.Context, name string) error {
	if err := w.c.Kill(ctx, name); err != nil {
		return err
	}
	w.setState(name, func(s *NodeState) { s.Up, s.Removed = false, true })
	return nil
}

func (w *RealWorld) editNode(ctx context.Context, name string, edit rpc.NodeEdit) error {
	return w.control(ctx, func(ctx context.Context, ctl rpc.ControlClient, _ bool) error {
		_, err := ctl.UpdateNode(ctx, &rpc.UpdateNodeRequest{Ref: name, Edit: edit})
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	})
}

// waitVoter waits until the leader's raft membership has name as a voter
// (voter true) or not at all.
func (w *RealWorld) waitVoter(ctx context.Context, name string, voter bool) error {
	id := w.c.Node(name).ID()
	for {
		if _, st := w.leader(); st != nil {
			found, learner := false, false
			for _, m := range st.GetMembers() {
				if m.GetNodeId() == id {
					found, learner = true, m.GetLearner()
				}
			}
			if voter && found && !learner || !voter && !found {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: raft membership did not change: %w", name, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// failTasks kills count running containers of the service (SIGKILL: they
// exit with an error), chosen by the seed.
func (w *RealWorld) failTasks(ctx context.Context, a FailTasks) error {
	var svcID string
	if err := w.control(ctx, func(ctx context.Context, ctl rpc.ControlClient, _ bool) error {
		s, err := ctl.GetService(ctx, &rpc.Ref{Ref: a.Service})
		svcID = s.GetId()
		return err
	}); err != nil {
		return err
	}
	tasks, err := w.c.TaskContainers(ctx)
	if err != nil {
		return err
	}
	running := slices.DeleteFunc(tasks, func(t realcluster.TaskContainer) bool { return !t.Running || t.ServiceID != svcID })
	if len(running) < a.Count {
		return fmt.Errorf("service %s has %d running containers, fewer than %d to fail", a.Service, len(running), a.Count)
	}
	for range a.Count {
		j := int(w.chooser.r.Int64N(int64(len(running))))
		if err := w.c.KillTask(ctx, running[j].ContainerID); err != nil {
			return err
		}
		running = slices.Delete(running, j, j+1)
	}
	return nil
}

// ---- conditions

// Holds implements World.
func (w *RealWorld) Holds(c Condition) (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
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
		_, st := w.leader()
		if st == nil {
			return false, "no leader"
		}
		voters := 0
		for _, m := range st.GetMembers() {
			if !m.GetLearner() {
				voters++
			}
		}
		return voters == c.N, fmt.Sprintf("%d voters", voters)
	case NodesReady:
		nodes, err := w.listNodes(ctx)
		if err != nil {
			return false, err.Error()
		}
		n := 0
		for _, nd := range nodes {
			if nd.GetStatus().GetState() == api.NodeState_NODE_STATE_READY && !nd.GetRemoved() {
				n++
			}
		}
		return n == c.N, fmt.Sprintf("%d ready", n)
	case NodeTasks:
		names := c.Node.Resolve(w.candidates(), w.Leader(), w.chooser)
		if len(names) == 0 {
			return false, "no node " + c.Node.String()
		}
		tasks, err := w.c.TaskContainers(ctx)
		if err != nil {
			return false, err.Error()
		}
		n := 0
		for _, t := range tasks {
			if t.Node == names[0] && t.Running {
				n++
			}
		}
		return n == c.N, fmt.Sprintf("%s runs %d", names[0], n)
	case Running:
		svc, tasks, nodes, err := w.serviceState(ctx, c.Service)
		if err != nil {
			return false, err.Error()
		}
		if svc == nil {
			return c.N == 0, "no such service"
		}
		n := 0
		for _, t := range tasks {
			if countsAsRunning(t) && w.taskMatches(t, nodes, c.Image, c.On) {
				n++
			}
		}
		return n == c.N, fmt.Sprintf("%d running", n) + w.notRunning(tasks)
	case Completed:
		svc, tasks, nodes, err := w.serviceState(ctx, c.Service)
		if err != nil {
			return false, err.Error()
		}
		if svc == nil {
			return c.N == 0, "no such service"
		}
		done := map[string]bool{}
		for _, t := range tasks {
			if t.GetStatus().GetState() == api.TaskState_TASK_STATE_COMPLETE && w.taskMatches(t, nodes, c.Image, c.On) {
				key := t.GetNodeId()
				if svc.GetSpec().GetReplicatedJob() != nil {
					key = fmt.Sprint(t.GetSlot())
				}
				done[key] = true
			}
		}
		return len(done) == c.N, fmt.Sprintf("%d completed", len(done))
	case Converged:
		return w.converged(ctx)
	case RootRotated:
		return w.rootRotated()
	case Locked:
		return w.lockState(ctx, c.Node, true)
	case Unlocked:
		return w.lockState(ctx, c.Node, false)
	}
	return false, fmt.Sprintf("%s: %v", c, ErrNotReal)
}

func (w *RealWorld) candidates() []Candidate {
	var out []Candidate
	for _, n := range w.Nodes() {
		out = append(out, Candidate{Name: n.Name, Manager: n.Manager})
	}
	return out
}

// read calls f on the leader's control API once (conditions are polled:
// no retries).
func (w *RealWorld) read(ctx context.Context, f func(ctl rpc.ControlClient) error) error {
	l, _ := w.leader()
	if l == "" {
		return errors.New("no leader")
	}
	return f(w.c.Node(l).Control())
}

func (w *RealWorld) listNodes(ctx context.Context) (map[string]*api.Node, error) {
	out := map[string]*api.Node{}
	err := w.read(ctx, func(ctl rpc.ControlClient) error {
		res, err := ctl.ListNodes(ctx, &rpc.ListNodesRequest{})
		for _, n := range res.GetNodes() {
			out[n.GetId()] = n
		}
		return err
	})
	return out, err
}

// serviceState reads a service (nil if there is none), its tasks and the
// nodes.
func (w *RealWorld) serviceState(ctx context.Context, name string) (*api.Service, []*api.Task, map[string]*api.Node, error) {
	var svc *api.Service
	var tasks []*api.Task
	err := w.read(ctx, func(ctl rpc.ControlClient) error {
		s, err := ctl.GetService(ctx, &rpc.Ref{Ref: name})
		if status.Code(err) == codes.NotFound {
			return nil
		}
		if err != nil {
			return err
		}
		svc = s
		res, err := ctl.ListTasks(ctx, &rpc.ListTasksRequest{Service: s.GetId()})
		tasks = res.GetTasks()
		return err
	})
	if err != nil || svc == nil {
		return nil, nil, nil, err
	}
	nodes, err := w.listNodes(ctx)
	return svc, tasks, nodes, err
}

func (w *RealWorld) taskMatches(t *api.Task, nodes map[string]*api.Node, image string, on *Constraint) bool {
	if image != "" && t.GetSpec().GetContainer().GetImage() != realImage(w.run, image) {
		return false
	}
	if on != nil {
		con, err := api.ParseConstraint(on.String())
		if err != nil || !con.Matches(nodes[t.GetNodeId()]) {
			return false
		}
	}
	return true
}

// notRunning describes, for a failed expectation, the tasks the cluster
// wants running that do not run (at most 4): "" when there are none.
func (w *RealWorld) notRunning(tasks []*api.Task) string {
	var parts []string
	for _, t := range tasks {
		if t.GetDesiredState() > api.TaskState_TASK_STATE_RUNNING || countsAsRunning(t) {
			continue
		}
		if len(parts) == 4 {
			parts = append(parts, "...")
			break
		}
		node := w.c.NameOf(t.GetNodeId())
		if node == "" {
			node = "no node"
		}
		d := fmt.Sprintf("slot %d on %s: %s, desired %s", t.GetSlot(), node,
			strings.TrimPrefix(t.GetStatus().GetState().String(), "TASK_STATE_"),
			strings.TrimPrefix(t.GetDesiredState().String(), "TASK_STATE_"))
		if m := t.GetStatus().GetErr(); m != "" {
			d += " (" + m + ")"
		} else if m := t.GetStatus().GetMessage(); m != "" {
			d += " (" + m + ")"
		}
		parts = append(parts, d)
	}
	if len(parts) == 0 {
		return ""
	}
	return "; not running: " + strings.Join(parts, "; ")
}

// converged: every service runs what its spec asks for (see
// SimWorld.serviceConverged).
func (w *RealWorld) converged(ctx context.Context) (bool, string) {
	var services []*api.Service
	if err := w.read(ctx, func(ctl rpc.ControlClient) error {
		res, err := ctl.ListServices(ctx, &rpc.ListServicesRequest{})
		services = res.GetServices()
		return err
	}); err != nil {
		return false, err.Error()
	}
	slices.SortFunc(services, func(a, b *api.Service) int { return strings.Compare(a.GetSpec().GetName(), b.GetSpec().GetName()) })
	for _, s := range services {
		svc, tasks, nodes, err := w.serviceState(ctx, s.GetId())
		if err != nil {
			return false, err.Error()
		}
		if svc == nil {
			continue
		}
		spec := svc.GetSpec()
		current, running, done := 0, 0, 0
		for _, t := range tasks {
			cur := proto.Equal(t.GetSpec(), spec.GetTask())
			if countsAsRunning(t) {
				running++
				if cur {
					current++
				}
			}
			if cur && t.GetStatus().GetState() == api.TaskState_TASK_STATE_COMPLETE {
				done++
			}
		}
		name := spec.GetName()
		switch {
		case spec.GetReplicated() != nil:
			want := int(spec.GetReplicated().GetReplicas())
			if current != want || running != want {
				return false, fmt.Sprintf("%s: %d of %d running at the current spec", name, current, want)
			}
		case spec.GetGlobal() != nil:
			cons, _ := api.ParseConstraints(spec.GetTask().GetPlacement().GetConstraints())
			want := 0
			for _, id := range slices.Sorted(maps.Keys(nodes)) {
				nd := nodes[id]
				if !nd.GetRemoved() && nd.GetStatus().GetState() == api.NodeState_NODE_STATE_READY &&
					nd.GetSpec().GetAvailability() == api.NodeAvailability_NODE_AVAILABILITY_ACTIVE && api.MatchesAll(cons, nd) {
					want++
				}
			}
			if current != want {
				return false, fmt.Sprintf("%s: %d of %d nodes run it", name, current, want)
			}
		case spec.GetReplicatedJob() != nil:
			want := int(spec.GetReplicatedJob().GetTotalCompletions())
			if done < want {
				return false, fmt.Sprintf("%s: %d of %d completed", name, done, want)
			}
		}
	}
	return true, ""
}

// seeded is the selectors' Chooser, from the run's seed.
type seeded struct{ r *rand.Rand }

func (s seeded) Int63n(n int64) int64 { return s.r.Int64N(n) }
func (s seeded) Float64() float64     { return s.r.Float64() }
