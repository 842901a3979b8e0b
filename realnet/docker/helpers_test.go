package docker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/swarmsim/swarmsim/engine/env"
)

// waitLimit bounds how long a test waits for an event before it calls the
// executor stuck. It is a liveness bound, not a speed assertion.
const waitLimit = 30 * time.Second

var daemon struct {
	once sync.Once
	cli  *client.Client
	err  error
}

// dockerClient returns a client for the local daemon, or skips the test
// with one line when no daemon answers within a few seconds.
func dockerClient(t *testing.T) *client.Client {
	t.Helper()
	daemon.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		daemon.cli, daemon.err = Connect(ctx)
	})
	if daemon.err != nil {
		host := client.DefaultDockerHost
		if c, err := client.New(client.FromEnv); err == nil {
			host = c.DaemonHost()
		}
		t.Skipf("docker: no daemon answered at %s: skipping", host)
	}
	return daemon.cli
}

// uniqueName returns prefix-<random hex>, so that every test's node,
// images and containers are its own.
func uniqueName(t *testing.T, prefix string) string {
	t.Helper()
	var b [5]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return prefix + "-" + hex.EncodeToString(b[:])
}

// buildImage builds a workload image under a fresh tag and removes it when
// the test ends.
func buildImage(t *testing.T, cli *client.Client, name string, b Behaviour) string {
	t.Helper()
	tag := uniqueName(t, "swarmsim-test-"+name) + ":1"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := BuildWorkloadImage(ctx, cli, tag, b); err != nil {
		t.Fatalf("build image: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := cli.ImageRemove(ctx, tag, client.ImageRemoveOptions{Force: true, PruneChildren: true})
		if err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("cleanup: remove image %s: %v", tag, err)
		}
	})
	return tag
}

// testLoop is a node loop: one goroutine runs posted functions in order.
type testLoop struct {
	mu    sync.Mutex
	queue []func()
	wake  chan struct{}
	done  chan struct{}
}

func newTestLoop(t *testing.T) *testLoop {
	l := &testLoop{wake: make(chan struct{}, 1), done: make(chan struct{})}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-l.wake:
			case <-l.done:
				return
			}
			for {
				l.mu.Lock()
				if len(l.queue) == 0 {
					l.mu.Unlock()
					break
				}
				f := l.queue[0]
				l.queue = l.queue[1:]
				l.mu.Unlock()
				f()
			}
		}
	}()
	t.Cleanup(func() { close(l.done); <-stopped })
	return l
}

func (l *testLoop) Post(f func()) {
	l.mu.Lock()
	l.queue = append(l.queue, f)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// node is one executor under test with what it reported.
type node struct {
	t      *testing.T
	cli    *client.Client
	id     env.NodeID
	loop   *testLoop
	ex     *Executor
	events chan env.ContainerEvent
	seen   []env.ContainerEvent
}

// newNode makes an executor for a fresh node ID and removes the node's
// containers (found by its label, so only this test's) when the test ends.
func newNode(t *testing.T, cli *client.Client) *node {
	t.Helper()
	id := env.NodeID(uniqueName(t, "n"))
	t.Cleanup(func() { removeNodeContainers(t, cli, id) })
	return startNode(t, cli, id)
}

// startNode makes an executor for node id (a restarted swarmd is a new
// executor for the same ID).
func startNode(t *testing.T, cli *client.Client, id env.NodeID) *node {
	t.Helper()
	n := &node{t: t, cli: cli, id: id, loop: newTestLoop(t), events: make(chan env.ContainerEvent, 256)}
	ex, err := New(cli, n.loop, id, Options{CallTimeout: 20 * time.Second, PullTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	n.ex = ex
	t.Cleanup(func() { ex.Close() })
	done := make(chan struct{})
	n.loop.Post(func() {
		ex.SetEventHandler(func(ev env.ContainerEvent) { n.events <- ev })
		close(done)
	})
	<-done
	return n
}

// do runs f on the node's loop, where the engine calls the executor.
func (n *node) do(f func(ex *Executor)) {
	n.loop.Post(func() { f(n.ex) })
}

// waitFor returns the next event of task that matches, skipping others. A
// ContainerFailed it was not waiting for fails the test.
func (n *node) waitFor(taskID, what string, match func(env.ContainerEvent) bool) env.ContainerEvent {
	n.t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		select {
		case ev := <-n.events:
			n.seen = append(n.seen, ev)
			if ev.TaskID != taskID {
				continue
			}
			if match(ev) {
				return ev
			}
			if ev.State == env.ContainerFailed {
				n.t.Fatalf("task %s: waiting for %s, got failure: %s (events: %s)", taskID, what, ev.Err, n.history())
			}
		case <-deadline.C:
			n.t.Fatalf("task %s: no %s within %v (events: %s)", taskID, what, waitLimit, n.history())
		}
	}
}

func (n *node) waitState(taskID string, s env.ContainerState) env.ContainerEvent {
	n.t.Helper()
	return n.waitFor(taskID, s.String(), func(ev env.ContainerEvent) bool { return ev.State == s })
}

func (n *node) history() string {
	var b strings.Builder
	for _, ev := range n.seen {
		fmt.Fprintf(&b, "[%s %s code=%d health=%d err=%q] ", ev.TaskID, ev.State, ev.ExitCode, ev.Health, ev.Err)
	}
	return b.String()
}

// list calls List on the loop and returns what it reported.
func (n *node) list() []env.ContainerStatus {
	n.t.Helper()
	got := make(chan []env.ContainerStatus, 1)
	n.do(func(ex *Executor) { ex.List(func(s []env.ContainerStatus) { got <- s }) })
	select {
	case s := <-got:
		return s
	case <-time.After(waitLimit):
		n.t.Fatalf("List did not answer within %v", waitLimit)
		return nil
	}
}

// waitLog waits until the output of the node's container for task holds
// text:
// the workload prints a line once its signal handlers are in place, and a
// signal sent before that meets the Go runtime's default instead (as PID 1,
// an exit with code 2).
func (n *node) waitLog(task, text string) {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	for {
		res, err := n.cli.ContainerList(ctx, client.ContainerListOptions{
			All:     true,
			Filters: client.Filters{}.Add("label", LabelNodeID+"="+string(n.id)).Add("label", LabelTaskID+"="+task),
		})
		if err == nil && len(res.Items) == 1 {
			if rc, err := n.cli.ContainerLogs(ctx, res.Items[0].ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true}); err == nil {
				out, _ := io.ReadAll(rc)
				rc.Close()
				if strings.Contains(string(out), text) {
					return
				}
			}
		}
		select {
		case <-ctx.Done():
			n.t.Fatalf("the container of %s on %s did not print %q within %v", task, n.id, text, waitLimit)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func removeNodeContainers(t *testing.T, cli *client.Client, id env.NodeID) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := cli.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: client.Filters{}.Add("label", LabelNodeID+"="+string(id)),
	})
	if err != nil {
		t.Errorf("cleanup: list containers of %s: %v", id, err)
		return
	}
	for _, c := range res.Items {
		if c.Labels[LabelNodeID] != string(id) {
			continue
		}
		_, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		if err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("cleanup: remove container %s: %v", c.ID, err)
		}
	}
}
