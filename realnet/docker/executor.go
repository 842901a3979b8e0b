package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"

	"github.com/swarmsim/swarmsim/engine/env"
)

// Labels the executor puts on every container it creates. LabelNodeID is
// what it finds its own containers by; a container without it is never
// touched.
const (
	LabelTaskID    = "swarmsim.task.id"
	LabelServiceID = "swarmsim.service.id"
	LabelNodeID    = "swarmsim.node.id"
)

// API is the part of the Docker Engine API the executor uses;
// *client.Client satisfies it.
type API interface {
	ImageInspect(ctx context.Context, image string, opts ...client.ImageInspectOption) (client.ImageInspectResult, error)
	ImagePull(ctx context.Context, ref string, opts client.ImagePullOptions) (client.ImagePullResponse, error)
	ContainerCreate(ctx context.Context, opts client.ContainerCreateOptions) (client.ContainerCreateResult, error)
	ContainerInspect(ctx context.Context, id string, opts client.ContainerInspectOptions) (client.ContainerInspectResult, error)
	ContainerStart(ctx context.Context, id string, opts client.ContainerStartOptions) (client.ContainerStartResult, error)
	ContainerStop(ctx context.Context, id string, opts client.ContainerStopOptions) (client.ContainerStopResult, error)
	ContainerKill(ctx context.Context, id string, opts client.ContainerKillOptions) (client.ContainerKillResult, error)
	ContainerRemove(ctx context.Context, id string, opts client.ContainerRemoveOptions) (client.ContainerRemoveResult, error)
	ContainerList(ctx context.Context, opts client.ContainerListOptions) (client.ContainerListResult, error)
	CopyToContainer(ctx context.Context, id string, opts client.CopyToContainerOptions) (client.CopyToContainerResult, error)
	Events(ctx context.Context, opts client.EventsListOptions) client.EventsResult
}

// Options tune an Executor. The zero value is usable.
type Options struct {
	// NamePrefix starts every container name: PREFIX-NODE-TASK. Default
	// "swarmsim".
	NamePrefix string
	// HealthCommand is the exec-form probe (no shell: images are FROM
	// scratch) run for a spec's HealthCheck. Default: the workload's
	// `/workload health`.
	HealthCommand []string
	// CallTimeout bounds each Docker API call. Default 30s.
	CallTimeout time.Duration
	// PullTimeout bounds pulling a missing image. Default 2m.
	PullTimeout time.Duration
	// MaxConcurrentCalls bounds how many tasks' calls are in flight at
	// once (a stop holds its slot for its grace). Default 32.
	MaxConcurrentCalls int
	// Logger hears what goes wrong. It never receives file contents or
	// environment. Default: discarded.
	Logger *slog.Logger
}

const (
	// maxPendingPerTask bounds a task's queue of calls not yet made.
	maxPendingPerTask = 64
	// maxRememberedRemoved bounds how many removed tasks the duplicate
	// filter remembers.
	maxRememberedRemoved = 4096
	// listAttempts is how often List tries before reporting nothing.
	listAttempts = 3
)

// Executor is an env.Executor on the Docker Engine API for one node.
type Executor struct {
	cli  API
	loop env.Loop
	node env.NodeID
	opts Options
	log  *slog.Logger

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// watching is closed once the event stream has been asked for, so
	// that no container is started before its events can be heard.
	watching chan struct{}
	// slots holds one token per task call in flight.
	slots chan struct{}

	mu     sync.Mutex
	queues map[string]*taskQueue
	closed bool

	// Loop-only state: touched only by functions posted to loop.
	handler      func(env.ContainerEvent)
	watchStarted bool
	last         map[string]env.ContainerEvent
	removedFIFO  []string
}

type taskQueue struct {
	ops     []func(ctx context.Context)
	running bool
}

var _ env.Executor = (*Executor)(nil)

// New returns the executor for node. It starts watching the daemon's
// events for the node's containers when it is given a handler; Close stops
// it.
func New(cli API, loop env.Loop, node env.NodeID, opts Options) (*Executor, error) {
	if cli == nil || loop == nil {
		return nil, errors.New("docker executor: nil client or loop")
	}
	if node == "" {
		return nil, errors.New("docker executor: empty node ID")
	}
	if opts.NamePrefix == "" {
		opts.NamePrefix = "swarmsim"
	}
	if len(opts.HealthCommand) == 0 {
		opts.HealthCommand = []string{WorkloadPath, "health"}
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = 30 * time.Second
	}
	if opts.PullTimeout <= 0 {
		opts.PullTimeout = 2 * time.Minute
	}
	if opts.MaxConcurrentCalls <= 0 {
		opts.MaxConcurrentCalls = 32
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Executor{
		cli:      cli,
		loop:     loop,
		node:     node,
		opts:     opts,
		log:      log.With("node", string(node)),
		ctx:      ctx,
		cancel:   cancel,
		watching: make(chan struct{}),
		slots:    make(chan struct{}, opts.MaxConcurrentCalls),
		queues:   make(map[string]*taskQueue),
		last:     make(map[string]env.ContainerEvent),
	}
	return e, nil
}

// Close stops the event watcher and abandons calls not yet made; it waits
// for the goroutines to end. Containers are left as they are, for the next
// executor of this node to adopt. Nothing is reported after Close.
func (e *Executor) Close() error {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.cancel()
	e.wg.Wait()
	return nil
}

// ContainerName is the name of a task's container on this node.
func (e *Executor) ContainerName(taskID string) string {
	return e.opts.NamePrefix + "-" + nameSafe(string(e.node)) + "-" + nameSafe(taskID)
}

// nameSafe keeps what Docker allows in a name ([a-zA-Z0-9_.-]) and
// replaces the rest. Two IDs that differ only there would share a name:
// the label check in resolve keeps that from mixing up tasks.
func nameSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '.', r == '-':
			return r
		}
		return '_'
	}, s)
}

// SetEventHandler implements env.Executor. The first call starts watching
// the daemon's events, so none can arrive before there is a handler.
func (e *Executor) SetEventHandler(h func(env.ContainerEvent)) {
	e.handler = h
	if !e.watchStarted {
		e.watchStarted = true
		e.goTracked(e.watch)
	}
}

// Prepare implements env.Executor: it makes sure the image is there (a pull
// is tried when it is not), creates the container and copies the spec's
// files into it. ContainerPrepared on success, ContainerFailed otherwise.
// A Prepare for a task whose container already exists adopts it and
// reports the state it is in.
func (e *Executor) Prepare(spec env.ContainerSpec) {
	spec = cloneSpec(spec)
	e.enqueue(spec.TaskID, func(ctx context.Context) { e.prepare(ctx, spec) })
}

// Start implements env.Executor. ContainerRunning and ContainerExited come
// from the daemon's events; ContainerFailed when the start is refused.
// Running carries HealthNone until the first health verdict (Docker sends
// no event for "starting"), then one Running event per change of verdict.
func (e *Executor) Start(taskID string) {
	e.enqueue(taskID, func(ctx context.Context) { e.start(ctx, taskID) })
}

// Stop implements env.Executor: docker stop with the grace (rounded up to
// whole seconds, the API's unit), which sends the stop signal and kills
// after the grace; a kill follows if the stop call itself fails.
// ContainerExited comes from the daemon's events. A container that never
// ran is reported ContainerExited with code 0 at once.
func (e *Executor) Stop(taskID string, grace time.Duration) {
	e.enqueue(taskID, func(ctx context.Context) { e.stop(ctx, taskID, grace) })
}

// Remove implements env.Executor: it force-removes the container (and its
// anonymous volumes): ContainerRemoved. A container already gone is
// reported ContainerRemoved too.
func (e *Executor) Remove(taskID string) {
	e.enqueue(taskID, func(ctx context.Context) { e.remove(ctx, taskID) })
}

// List implements env.Executor: it reports every container labelled with
// this node, sorted by task ID. After listAttempts failures it reports an
// empty list (and logs why): the agent then prepares its tasks again, and
// Prepare adopts any container that was in fact there.
func (e *Executor) List(done func([]env.ContainerStatus)) {
	e.goTracked(func() {
		var list []env.ContainerStatus
		var err error
		for attempt := range listAttempts {
			if attempt > 0 && !e.sleep(time.Duration(attempt)*500*time.Millisecond) {
				return
			}
			if list, err = e.list(); err == nil {
				break
			}
		}
		if err != nil {
			e.log.Error("list containers", "err", err)
			list = nil
		}
		e.post(func() { done(list) })
	})
}

// enqueue runs op after every earlier op of the same task.
func (e *Executor) enqueue(taskID string, op func(ctx context.Context)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	q := e.queues[taskID]
	if q == nil {
		q = &taskQueue{}
		e.queues[taskID] = q
	}
	if len(q.ops) >= maxPendingPerTask {
		e.log.Error("too many pending calls; dropping one", "task", taskID)
		e.emit(env.ContainerEvent{TaskID: taskID, State: env.ContainerFailed,
			Err: fmt.Sprintf("docker executor: more than %d calls pending for the task", maxPendingPerTask)})
		return
	}
	q.ops = append(q.ops, op)
	if q.running {
		return
	}
	q.running = true
	e.wg.Add(1)
	go e.drain(taskID, q)
}

func (e *Executor) drain(taskID string, q *taskQueue) {
	defer e.wg.Done()
	for {
		e.mu.Lock()
		if len(q.ops) == 0 || e.ctx.Err() != nil {
			q.running = false
			delete(e.queues, taskID)
			e.mu.Unlock()
			return
		}
		op := q.ops[0]
		q.ops = q.ops[1:]
		e.mu.Unlock()

		// Never act before the event stream was asked for (or a call's
		// time has passed trying): a start it did not hear would leave the
		// task running for ever in the agent's eyes.
		select {
		case <-e.watching:
		case <-e.ctx.Done():
			continue
		case <-time.After(e.opts.CallTimeout):
		}
		select {
		case e.slots <- struct{}{}:
		case <-e.ctx.Done():
			continue
		}
		op(e.ctx)
		<-e.slots
	}
}

// goTracked runs f on a goroutine Close waits for; false once closed.
func (e *Executor) goTracked(f func()) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		f()
	}()
	return true
}

// sleep waits d, or less if the executor closes; false if it closed.
func (e *Executor) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-e.ctx.Done():
		return false
	}
}

// post runs f on the node's loop, unless the executor is closing.
func (e *Executor) post(f func()) {
	if e.ctx.Err() != nil {
		return
	}
	e.loop.Post(f)
}

// emit reports ev on the loop. Reports may reach it twice (an event the
// stream replays after a reconnect, or a removal both seen as an event and
// answered by a call), so the loop drops a report that repeats the last one
// of the task. Prepared and Failed always go through: they answer a call
// the agent may repeat.
func (e *Executor) emit(ev env.ContainerEvent) {
	e.post(func() {
		prev, seen := e.last[ev.TaskID]
		if seen && prev == ev && ev.State != env.ContainerPrepared && ev.State != env.ContainerFailed {
			return
		}
		e.last[ev.TaskID] = ev
		if ev.State == env.ContainerRemoved && prev.State != env.ContainerRemoved {
			e.removedFIFO = append(e.removedFIFO, ev.TaskID)
			if len(e.removedFIFO) > maxRememberedRemoved {
				old := e.removedFIFO[0]
				e.removedFIFO = e.removedFIFO[1:]
				if e.last[old].State == env.ContainerRemoved {
					delete(e.last, old)
				}
			}
		}
		if e.handler != nil {
			e.handler(ev)
		}
	})
}

func (e *Executor) fail(taskID, format string, args ...any) {
	ev := env.ContainerEvent{TaskID: taskID, State: env.ContainerFailed, Err: fmt.Sprintf(format, args...)}
	e.log.Warn("task container failed", "task", taskID, "reason", ev.Err)
	e.emit(ev)
}

func (e *Executor) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, e.opts.CallTimeout)
}

func (e *Executor) prepare(ctx context.Context, spec env.ContainerSpec) {
	if spec.TaskID == "" {
		e.fail(spec.TaskID, "prepare: empty task ID")
		return
	}
	if spec.Image == "" {
		e.fail(spec.TaskID, "prepare: empty image")
		return
	}
	files, err := filesArchive(spec.Files)
	if err != nil {
		e.fail(spec.TaskID, "prepare: %v", err)
		return
	}
	if err := e.ensureImage(ctx, spec.Image); err != nil {
		if ctx.Err() == nil {
			e.fail(spec.TaskID, "%v", err)
		}
		return
	}

	name := e.ContainerName(spec.TaskID)
	cctx, cancel := e.callCtx(ctx)
	created, err := e.cli.ContainerCreate(cctx, client.ContainerCreateOptions{
		Name:       name,
		Config:     e.containerConfig(spec),
		HostConfig: hostConfig(spec),
	})
	cancel()
	if cerrdefs.IsConflict(err) {
		e.adopt(ctx, spec.TaskID, name)
		return
	}
	if err != nil {
		if ctx.Err() == nil {
			e.fail(spec.TaskID, "create container %q: %v", name, err)
		}
		return
	}
	for _, w := range created.Warnings {
		e.log.Warn("create container", "task", spec.TaskID, "warning", w)
	}

	if files != nil {
		cctx, cancel := e.callCtx(ctx)
		_, err := e.cli.CopyToContainer(cctx, created.ID, client.CopyToContainerOptions{
			DestinationPath: "/",
			Content:         files,
		})
		cancel()
		if err != nil {
			// A container without its files must not be adopted later as
			// prepared: take it away. Its destroy event reports Removed
			// after this Failed.
			rctx, rcancel := e.callCtx(e.ctx)
			_, rerr := e.cli.ContainerRemove(rctx, created.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
			rcancel()
			if rerr != nil && !cerrdefs.IsNotFound(rerr) {
				e.log.Error("remove half-prepared container", "task", spec.TaskID, "err", rerr)
			}
			e.fail(spec.TaskID, "copy %d files into container %q: %v", len(spec.Files), name, err)
			return
		}
	}
	e.emit(env.ContainerEvent{TaskID: spec.TaskID, State: env.ContainerPrepared})
}

// ensureImage inspects the image and, when it is missing, tries a pull.
func (e *Executor) ensureImage(ctx context.Context, image string) error {
	cctx, cancel := e.callCtx(ctx)
	_, err := e.cli.ImageInspect(cctx, image)
	cancel()
	if err == nil {
		return nil
	}
	if !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("inspect image %q: %w", image, err)
	}
	pctx, cancel := context.WithTimeout(ctx, e.opts.PullTimeout)
	defer cancel()
	resp, err := e.cli.ImagePull(pctx, image, client.ImagePullOptions{})
	if err == nil {
		err = resp.Wait(pctx)
		resp.Close()
	}
	if err != nil {
		return fmt.Errorf("image %q not found locally and could not be pulled: %w", image, err)
	}
	return nil
}

func (e *Executor) containerConfig(spec env.ContainerSpec) *container.Config {
	labels := make(map[string]string, len(spec.Labels)+3)
	maps.Copy(labels, spec.Labels)
	// Ours last: a spec label cannot disguise whose container this is.
	labels[LabelTaskID] = spec.TaskID
	labels[LabelServiceID] = spec.ServiceID
	labels[LabelNodeID] = string(e.node)
	cfg := &container.Config{
		Image: spec.Image,
		// Command is the arguments to the image's entrypoint (the whole
		// command when the image has none), like `docker run IMAGE CMD...`.
		Cmd:    spec.Command,
		Env:    spec.Env,
		Labels: labels,
	}
	if h := spec.Health; h != nil {
		cfg.Healthcheck = &container.HealthConfig{
			Test:        append([]string{"CMD"}, e.opts.HealthCommand...),
			Interval:    atLeastMilli(h.Interval),
			Timeout:     atLeastMilli(h.Timeout),
			StartPeriod: atLeastMilli(h.StartPeriod),
			Retries:     max(h.Retries, 0),
		}
	}
	return cfg
}

// atLeastMilli rounds a positive duration below Docker's 1ms minimum up to
// it; 0 keeps meaning "the daemon's default".
func atLeastMilli(d time.Duration) time.Duration {
	if d > 0 && d < time.Millisecond {
		return time.Millisecond
	}
	return max(d, 0)
}

func hostConfig(spec env.ContainerSpec) *container.HostConfig {
	return &container.HostConfig{
		// The orchestrator restarts tasks, never the daemon.
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled},
		Resources: container.Resources{
			NanoCPUs: spec.NanoCPUs,
			Memory:   spec.MemoryBytes,
		},
	}
}

// filesArchive packs a spec's files into a tar to extract at "/" of the
// created container, before it starts. They land in the container's own
// writable layer on the daemon's disk and go with the container on Remove.
// A tmpfs would keep secrets off disk, but Docker cannot copy into a
// container's tmpfs before it runs (the mount only exists then), and
// copying after start races the process reading them; a bind mount from
// a host tmpfs needs swarmd to share a filesystem with the daemon, which a
// swarmd in a container does not. Files are root-owned, mode 0444 (as
// SwarmKit's default). Contents are never logged.
func filesArchive(files map[string][]byte) (io.Reader, error) {
	if len(files) == 0 {
		return nil, nil
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(0, 0)
	for _, target := range slices.Sorted(maps.Keys(files)) {
		if !path.IsAbs(target) || path.Clean(target) != target || target == "/" {
			return nil, fmt.Errorf("file target %q: must be a clean absolute path", target)
		}
		data := files[target]
		hdr := &tar.Header{
			Name:     strings.TrimPrefix(target, "/"),
			Typeflag: tar.TypeReg,
			Mode:     0o444,
			Size:     int64(len(data)),
			ModTime:  mtime,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("file target %q: %w", target, err)
		}
		if _, err := tw.Write(data); err != nil {
			return nil, fmt.Errorf("file target %q: %w", target, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return &buf, nil
}

// errNotOurs means a container has the task's name but not our labels.
var errNotOurs = errors.New("container is not managed by this node")

// resolve finds a task's container by name and checks that it is ours.
func (e *Executor) resolve(ctx context.Context, taskID string) (container.InspectResponse, error) {
	cctx, cancel := e.callCtx(ctx)
	defer cancel()
	res, err := e.cli.ContainerInspect(cctx, e.ContainerName(taskID), client.ContainerInspectOptions{})
	if err != nil {
		return container.InspectResponse{}, err
	}
	c := res.Container
	var labels map[string]string
	if c.Config != nil {
		labels = c.Config.Labels
	}
	if labels[LabelNodeID] != string(e.node) || labels[LabelTaskID] != taskID {
		return container.InspectResponse{}, fmt.Errorf("container %q: %w", e.ContainerName(taskID), errNotOurs)
	}
	return c, nil
}

// adopt reports the state of an existing container of the task, found when
// creating it again.
func (e *Executor) adopt(ctx context.Context, taskID, name string) {
	c, err := e.resolve(ctx, taskID)
	if err != nil {
		if ctx.Err() == nil {
			e.fail(taskID, "create container %q: name taken: %v", name, err)
		}
		return
	}
	st := statusOf(taskID, c)
	e.log.Info("adopted existing container", "task", taskID, "state", st.State.String())
	e.emit(env.ContainerEvent{TaskID: taskID, State: st.State, ExitCode: st.ExitCode, Health: st.Health})
}

func (e *Executor) start(ctx context.Context, taskID string) {
	c, err := e.resolve(ctx, taskID)
	if err != nil {
		if ctx.Err() == nil {
			e.fail(taskID, "start: %v", err)
		}
		return
	}
	cctx, cancel := e.callCtx(ctx)
	_, err = e.cli.ContainerStart(cctx, c.ID, client.ContainerStartOptions{})
	cancel()
	if err != nil && ctx.Err() == nil {
		e.fail(taskID, "start container %q: %v", e.ContainerName(taskID), err)
	}
}

func (e *Executor) stop(ctx context.Context, taskID string, grace time.Duration) {
	c, err := e.resolve(ctx, taskID)
	if cerrdefs.IsNotFound(err) {
		e.emit(env.ContainerEvent{TaskID: taskID, State: env.ContainerRemoved})
		return
	}
	if err != nil {
		if ctx.Err() == nil {
			e.fail(taskID, "stop: %v", err)
		}
		return
	}
	if c.State != nil && c.State.Status == container.StateCreated {
		// It never ran, so no die event will come.
		e.emit(env.ContainerEvent{TaskID: taskID, State: env.ContainerExited})
		return
	}
	if c.State == nil || !c.State.Running {
		return // its die event was reported when it exited
	}
	secs := int((max(grace, 0) + time.Second - 1) / time.Second)
	sctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+e.opts.CallTimeout)
	_, err = e.cli.ContainerStop(sctx, c.ID, client.ContainerStopOptions{Timeout: &secs})
	cancel()
	if err == nil || cerrdefs.IsNotFound(err) || ctx.Err() != nil {
		return
	}
	e.log.Warn("stop failed; killing", "task", taskID, "err", err)
	kctx, cancel := e.callCtx(ctx)
	_, kerr := e.cli.ContainerKill(kctx, c.ID, client.ContainerKillOptions{Signal: "SIGKILL"})
	cancel()
	if kerr != nil && !cerrdefs.IsNotFound(kerr) && !cerrdefs.IsConflict(kerr) && ctx.Err() == nil {
		// Conflict is "not running": it ended between the calls.
		e.fail(taskID, "stop container %q: %v; kill: %v", e.ContainerName(taskID), err, kerr)
	}
}

func (e *Executor) remove(ctx context.Context, taskID string) {
	c, err := e.resolve(ctx, taskID)
	if cerrdefs.IsNotFound(err) {
		e.emit(env.ContainerEvent{TaskID: taskID, State: env.ContainerRemoved})
		return
	}
	if err != nil {
		if ctx.Err() == nil {
			e.fail(taskID, "remove: %v", err)
		}
		return
	}
	cctx, cancel := e.callCtx(ctx)
	_, err = e.cli.ContainerRemove(cctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	cancel()
	if err != nil && !cerrdefs.IsNotFound(err) {
		if ctx.Err() == nil {
			e.fail(taskID, "remove container %q: %v", e.ContainerName(taskID), err)
		}
		return
	}
	// The destroy event says so too; the duplicate is dropped on the loop.
	e.emit(env.ContainerEvent{TaskID: taskID, State: env.ContainerRemoved})
}

func (e *Executor) nodeFilter() client.Filters {
	return client.Filters{}.Add("label", LabelNodeID+"="+string(e.node))
}

func (e *Executor) list() ([]env.ContainerStatus, error) {
	cctx, cancel := e.callCtx(e.ctx)
	defer cancel()
	res, err := e.cli.ContainerList(cctx, client.ContainerListOptions{All: true, Filters: e.nodeFilter()})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var out []env.ContainerStatus
	for _, s := range res.Items {
		taskID := s.Labels[LabelTaskID]
		if taskID == "" || s.Labels[LabelNodeID] != string(e.node) {
			continue
		}
		// The summary has neither exit code nor (at API 1.41) health.
		ins, err := e.cli.ContainerInspect(cctx, s.ID, client.ContainerInspectOptions{})
		if cerrdefs.IsNotFound(err) {
			continue // removed since the list
		}
		if err != nil {
			return nil, fmt.Errorf("inspect container %s: %w", s.ID, err)
		}
		out = append(out, statusOf(taskID, ins.Container))
	}
	slices.SortFunc(out, func(a, b env.ContainerStatus) int { return strings.Compare(a.TaskID, b.TaskID) })
	return out, nil
}

// statusOf maps a container's inspected state to the engine's.
func statusOf(taskID string, c container.InspectResponse) env.ContainerStatus {
	st := env.ContainerStatus{TaskID: taskID, State: env.ContainerUnknown}
	if c.State == nil {
		return st
	}
	switch c.State.Status {
	case container.StateCreated:
		st.State = env.ContainerPrepared
	case container.StateRunning, container.StatePaused, container.StateRestarting:
		st.State = env.ContainerRunning
	case container.StateExited, container.StateDead, container.StateRemoving:
		st.State = env.ContainerExited
		st.ExitCode = c.State.ExitCode
	}
	if c.State.Health != nil && st.State == env.ContainerRunning {
		st.Health = healthOf(string(c.State.Health.Status))
	}
	return st
}

func healthOf(s string) env.Health {
	switch container.HealthStatus(strings.TrimSpace(s)) {
	case container.Starting:
		return env.HealthStarting
	case container.Healthy:
		return env.HealthHealthy
	case container.Unhealthy:
		return env.HealthUnhealthy
	}
	return env.HealthNone
}

// eventReplay is how far before the newest event seen the executor asks
// the daemon to replay its events when it subscribes again.
const eventReplay = 5 * time.Second

// eventKey names one daemon event, for telling a replayed event from a
// new one.
type eventKey struct {
	id     string
	action events.Action
	nano   int64
}

// watch follows the daemon's events for this node's containers until
// Close. After an error it subscribes again from eventReplay before the
// newest event seen (the daemon replays its recent events) and drops the
// events it already handled, so a reconnect loses nothing the daemon
// still remembers. Events do not arrive in the order of their times: the
// daemon stamps an event before it publishes it, so two containers
// starting at once can publish their starts in either order. An event is
// a duplicate only if the same one, to the nanosecond, was seen.
func (e *Executor) watch() {
	var once sync.Once
	ready := func() { once.Do(func() { close(e.watching) }) }
	defer ready()

	filters := e.nodeFilter().
		Add("type", string(events.ContainerEventType)).
		Add("event", string(events.ActionStart), string(events.ActionDie),
			string(events.ActionHealthStatus), string(events.ActionDestroy))
	var newest int64
	seen := map[eventKey]bool{}
	backoff := 100 * time.Millisecond
	for e.ctx.Err() == nil {
		opts := client.EventsListOptions{Filters: filters}
		if newest > 0 {
			since := max(newest-int64(eventReplay), 0)
			opts.Since = fmt.Sprintf("%d.%09d", since/1e9, since%1e9)
		}
		res := e.cli.Events(e.ctx, opts)
		// Events returns once the daemon answered (or the call failed).
		ready()
		err := func() error {
			for {
				select {
				case m := <-res.Messages:
					backoff = 100 * time.Millisecond
					k := eventKey{m.Actor.ID, m.Action, m.TimeNano}
					if seen[k] {
						continue
					}
					seen[k] = true
					newest = max(newest, m.TimeNano)
					if len(seen) > 4096 {
						// Keep what a replay can bring back.
						for k := range seen {
							if k.nano < newest-2*int64(eventReplay) {
								delete(seen, k)
							}
						}
					}
					e.onEvent(m)
				case err := <-res.Err:
					return err
				case <-e.ctx.Done():
					return e.ctx.Err()
				}
			}
		}()
		if e.ctx.Err() != nil {
			return
		}
		e.log.Warn("docker event stream broke; resubscribing", "err", err, "after", backoff)
		if !e.sleep(backoff) {
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// onEvent turns one daemon event into a ContainerEvent.
func (e *Executor) onEvent(m events.Message) {
	attrs := m.Actor.Attributes
	taskID := attrs[LabelTaskID]
	if m.Type != events.ContainerEventType || taskID == "" || attrs[LabelNodeID] != string(e.node) {
		return
	}
	ev := env.ContainerEvent{TaskID: taskID}
	action := string(m.Action)
	switch {
	case m.Action == events.ActionStart:
		ev.State = env.ContainerRunning
	case m.Action == events.ActionDie:
		ev.State = env.ContainerExited
		code, err := strconv.Atoi(attrs["exitCode"])
		if err != nil {
			e.log.Warn("die event without an exit code", "task", taskID, "exitCode", attrs["exitCode"])
			code = -1
		}
		ev.ExitCode = code
	case strings.HasPrefix(action, string(events.ActionHealthStatus)):
		ev.State = env.ContainerRunning
		_, status, _ := strings.Cut(action, ":")
		ev.Health = healthOf(status)
		if ev.Health == env.HealthNone {
			return // "running" from an exec probe on newer daemons: no verdict
		}
	case m.Action == events.ActionDestroy:
		ev.State = env.ContainerRemoved
	default:
		return
	}
	e.emit(ev)
}

func cloneSpec(s env.ContainerSpec) env.ContainerSpec {
	s.Command = slices.Clone(s.Command)
	s.Env = slices.Clone(s.Env)
	s.Labels = maps.Clone(s.Labels)
	s.Files = maps.Clone(s.Files)
	if s.Health != nil {
		h := *s.Health
		s.Health = &h
	}
	return s
}
