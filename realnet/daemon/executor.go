package daemon

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/realnet"
	"github.com/swarmsim/swarmsim/realnet/docker"
)

// Executor names for Options.Executor.
const (
	ExecutorAuto   = "auto"
	ExecutorDocker = "docker"
	ExecutorReject = "reject"
	ExecutorMemory = "memory"
)

// newExecutor picks the node's executor. "auto" uses Docker when a daemon
// answers within a few seconds and otherwise rejects every task with the
// reason, so that a machine without Docker still runs a manager (its
// tasks are REJECTED, and the scheduler places them elsewhere).
func newExecutor(ctx context.Context, kind string, loop *realnet.Loop, id env.NodeID, log *slog.Logger) (env.Executor, func()) {
	switch kind {
	case ExecutorMemory:
		log.Info("executor: in memory (containers are simulated, nothing runs)")
		return NewMemoryExecutor(loop), func() {}
	case ExecutorReject:
		return NewRejectingExecutor(loop, "this node runs no containers (swarmd --executor reject)"), func() {}
	}
	wait := 5 * time.Second
	if kind == ExecutorDocker {
		// Docker was asked for by name: a busy daemon (many containers
		// starting at once, as in an e2e run) gets longer to answer
		// before the node settles for rejecting every task.
		wait = 30 * time.Second
	}
	cctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	cli, err := docker.Connect(cctx)
	if err == nil {
		var ex *docker.Executor
		ex, err = docker.New(cli, loop, id, docker.Options{Logger: log})
		if err == nil {
			log.Info("executor: docker", "host", cli.DaemonHost())
			return ex, func() { ex.Close(); cli.Close() }
		}
		cli.Close()
	}
	reason := "no container runtime on this node: " + err.Error()
	if kind == ExecutorDocker {
		log.Error("executor: docker unavailable; tasks will be rejected", "err", err)
	} else {
		log.Warn("executor: docker unavailable; tasks will be rejected", "err", err)
	}
	return NewRejectingExecutor(loop, reason), func() {}
}

// RejectingExecutor fails every task at Prepare with a reason (a node
// without a container runtime); it has no containers.
type RejectingExecutor struct {
	loop    env.Loop
	reason  string
	handler func(env.ContainerEvent)
}

// NewRejectingExecutor returns an executor that rejects every task with
// reason.
func NewRejectingExecutor(loop env.Loop, reason string) *RejectingExecutor {
	return &RejectingExecutor{loop: loop, reason: reason}
}

func (e *RejectingExecutor) SetEventHandler(h func(env.ContainerEvent)) { e.handler = h }

func (e *RejectingExecutor) Prepare(spec env.ContainerSpec) {
	e.emit(env.ContainerEvent{TaskID: spec.TaskID, State: env.ContainerFailed, Err: e.reason})
}

func (e *RejectingExecutor) Start(taskID string) {
	e.emit(env.ContainerEvent{TaskID: taskID, State: env.ContainerFailed, Err: e.reason})
}

func (e *RejectingExecutor) Stop(taskID string, _ time.Duration) {
	e.emit(env.ContainerEvent{TaskID: taskID, State: env.ContainerExited})
}

func (e *RejectingExecutor) Remove(taskID string) {
	e.emit(env.ContainerEvent{TaskID: taskID, State: env.ContainerRemoved})
}

func (e *RejectingExecutor) List(done func([]env.ContainerStatus)) {
	e.loop.Post(func() { done(nil) })
}

func (e *RejectingExecutor) emit(ev env.ContainerEvent) {
	e.loop.Post(func() {
		if e.handler != nil {
			e.handler(ev)
		}
	})
}

// MemoryExecutor pretends to run containers: Prepare and Start succeed,
// a container runs until it is stopped, and it exits 0. Tests and
// demonstrations of the control plane use it on machines without Docker.
// Its containers die with the process.
type MemoryExecutor struct {
	loop    env.Loop
	handler func(env.ContainerEvent)
	state   map[string]env.ContainerState // loop-owned
}

// NewMemoryExecutor returns an executor with no containers.
func NewMemoryExecutor(loop env.Loop) *MemoryExecutor {
	return &MemoryExecutor{loop: loop, state: map[string]env.ContainerState{}}
}

func (e *MemoryExecutor) SetEventHandler(h func(env.ContainerEvent)) { e.handler = h }

func (e *MemoryExecutor) Prepare(spec env.ContainerSpec) {
	e.set(spec.TaskID, env.ContainerPrepared)
}

func (e *MemoryExecutor) Start(taskID string) { e.set(taskID, env.ContainerRunning) }

func (e *MemoryExecutor) Stop(taskID string, _ time.Duration) { e.set(taskID, env.ContainerExited) }

func (e *MemoryExecutor) Remove(taskID string) { e.set(taskID, env.ContainerRemoved) }

func (e *MemoryExecutor) List(done func([]env.ContainerStatus)) {
	e.loop.Post(func() {
		ids := slices.Sorted(maps.Keys(e.state))
		out := make([]env.ContainerStatus, 0, len(ids))
		for _, id := range ids {
			out = append(out, env.ContainerStatus{TaskID: id, State: e.state[id]})
		}
		done(out)
	})
}

func (e *MemoryExecutor) set(taskID string, s env.ContainerState) {
	e.loop.Post(func() {
		if s == env.ContainerRemoved {
			delete(e.state, taskID)
		} else {
			e.state[taskID] = s
		}
		if e.handler != nil {
			e.handler(env.ContainerEvent{TaskID: taskID, State: s})
		}
	})
}
