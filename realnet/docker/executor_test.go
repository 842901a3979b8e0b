package docker

import (
	"archive/tar"
	"context"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/swarmsim/swarmsim/engine/env"
)

func inspect(t *testing.T, cli *client.Client, name string) client.ContainerInspectResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := cli.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatalf("inspect %s: %v", name, err)
	}
	return res
}

// readFile copies one file out of a container.
func readFile(t *testing.T, cli *client.Client, id, p string) ([]byte, *tar.Header) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := cli.CopyFromContainer(ctx, id, client.CopyFromContainerOptions{SourcePath: p})
	if err != nil {
		t.Fatalf("copy %s out of the container: %v", p, err)
	}
	defer res.Content.Close()
	tr := tar.NewReader(res.Content)
	hdr, err := tr.Next()
	if err != nil {
		t.Fatalf("copy %s out of the container: %v", p, err)
	}
	data, err := io.ReadAll(tr)
	if err != nil {
		t.Fatal(err)
	}
	return data, hdr
}

// TestRunAndStop walks one task through its whole life: prepare (with
// limits, labels, files and a health check), start, stop with a grace,
// remove.
func TestRunAndStop(t *testing.T) {
	cli := dockerClient(t)
	t.Parallel()
	image := buildImage(t, cli, "web", Behaviour{})
	n := newNode(t, cli)

	const task = "t-run"
	spec := env.ContainerSpec{
		TaskID:      task,
		ServiceID:   "s-web",
		Image:       image,
		Labels:      map[string]string{"app": "web", LabelNodeID: "someone-else"},
		NanoCPUs:    500_000_000,
		MemoryBytes: 64 << 20,
		Health:      &env.HealthCheck{Interval: 500 * time.Millisecond, Timeout: 5 * time.Second, Retries: 3},
		Files:       map[string][]byte{"/run/secrets/db-password": []byte("hunter2")},
	}
	n.do(func(ex *Executor) { ex.Prepare(spec) })
	n.waitState(task, env.ContainerPrepared)

	c := inspect(t, cli, n.ex.ContainerName(task)).Container
	if c.HostConfig.NanoCPUs != spec.NanoCPUs || c.HostConfig.Memory != spec.MemoryBytes {
		t.Errorf("limits: NanoCPUs=%d Memory=%d, want %d and %d",
			c.HostConfig.NanoCPUs, c.HostConfig.Memory, spec.NanoCPUs, spec.MemoryBytes)
	}
	wantLabels := map[string]string{
		LabelTaskID: task, LabelServiceID: "s-web", LabelNodeID: string(n.id), "app": "web",
	}
	for k, v := range wantLabels {
		if got := c.Config.Labels[k]; got != v {
			t.Errorf("label %s = %q, want %q", k, got, v)
		}
	}
	if hc := c.Config.Healthcheck; hc == nil || !slices.Equal(hc.Test, []string{"CMD", WorkloadPath, "health"}) || hc.Retries != 3 {
		t.Errorf("healthcheck = %+v, want exec form of the workload probe with 3 retries", hc)
	}
	data, hdr := readFile(t, cli, c.ID, "/run/secrets/db-password")
	if string(data) != "hunter2" || hdr.Mode&0o777 != 0o444 {
		t.Errorf("secret file: %d bytes, mode %o; want the 7 bytes given, mode 444", len(data), hdr.Mode&0o777)
	}

	n.do(func(ex *Executor) { ex.Start(task) })
	n.waitState(task, env.ContainerRunning)
	n.waitFor(task, "healthy", func(ev env.ContainerEvent) bool { return ev.Health == env.HealthHealthy })

	n.do(func(ex *Executor) { ex.Stop(task, 10*time.Second) })
	if ev := n.waitState(task, env.ContainerExited); ev.ExitCode != 0 {
		t.Errorf("exit code after stop = %d, want 0 (the workload exits 0 on TERM)", ev.ExitCode)
	}

	n.do(func(ex *Executor) { ex.Remove(task) })
	n.waitState(task, env.ContainerRemoved)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := cli.ContainerInspect(ctx, n.ex.ContainerName(task), client.ContainerInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Errorf("inspect after Remove: err = %v, want not found", err)
	}
}

// TestExitCodes: containers that end on their own report how.
func TestExitCodes(t *testing.T) {
	cli := dockerClient(t)
	t.Parallel()
	tests := []struct {
		name string
		b    Behaviour
		want int
	}{
		{"fail-at-start", Behaviour{FailAtStart: true}, 1},
		{"exit-after", Behaviour{ExitAfter: 300 * time.Millisecond, ExitCode: 3}, 3},
	}
	n := newNode(t, cli)
	for _, tt := range tests {
		image := buildImage(t, cli, tt.name, tt.b)
		task := "t-" + tt.name
		n.do(func(ex *Executor) {
			ex.Prepare(env.ContainerSpec{TaskID: task, ServiceID: "s-" + tt.name, Image: image})
		})
		n.waitState(task, env.ContainerPrepared)
		n.do(func(ex *Executor) { ex.Start(task) })
		n.waitState(task, env.ContainerRunning)
		if ev := n.waitState(task, env.ContainerExited); ev.ExitCode != tt.want {
			t.Errorf("%s: exit code = %d, want %d", tt.name, ev.ExitCode, tt.want)
		}
	}
}

// TestStopKillsAfterGrace: a container that ignores TERM is killed once
// the grace has passed.
func TestStopKillsAfterGrace(t *testing.T) {
	cli := dockerClient(t)
	t.Parallel()
	image := buildImage(t, cli, "stubborn", Behaviour{IgnoreTerm: true})
	n := newNode(t, cli)
	const task = "t-stubborn"
	n.do(func(ex *Executor) { ex.Prepare(env.ContainerSpec{TaskID: task, Image: image}) })
	n.waitState(task, env.ContainerPrepared)
	n.do(func(ex *Executor) { ex.Start(task) })
	n.waitState(task, env.ContainerRunning)
	// Running is when the process started, not when it ignores TERM.
	n.waitLog(task, "workload: running until signalled")
	n.do(func(ex *Executor) { ex.Stop(task, time.Second) })
	if ev := n.waitState(task, env.ContainerExited); ev.ExitCode != 137 {
		t.Errorf("exit code = %d, want 137 (SIGKILL)", ev.ExitCode)
	}
}

// TestMissingImageFails: no registry answers here, so an image that is not
// on the daemon fails the task with a reason that says so.
func TestMissingImageFails(t *testing.T) {
	cli := dockerClient(t)
	t.Parallel()
	n := newNode(t, cli)
	const task = "t-missing"
	image := uniqueName(t, "swarmsim-test-missing") + ":1"
	n.do(func(ex *Executor) { ex.Prepare(env.ContainerSpec{TaskID: task, Image: image}) })
	ev := n.waitState(task, env.ContainerFailed)
	t.Logf("reason: %s", ev.Err)
	want := `image "` + image + `" not found locally and could not be pulled: `
	if !strings.Contains(ev.Err, want) {
		t.Errorf("failure reason = %q, want one containing %q", ev.Err, want)
	}
}

// TestUnhealthyReported: failing health checks reach the engine.
func TestUnhealthyReported(t *testing.T) {
	cli := dockerClient(t)
	t.Parallel()
	image := buildImage(t, cli, "sick", Behaviour{Unhealthy: true})
	n := newNode(t, cli)
	const task = "t-sick"
	n.do(func(ex *Executor) {
		ex.Prepare(env.ContainerSpec{TaskID: task, Image: image,
			Health: &env.HealthCheck{Interval: 300 * time.Millisecond, Timeout: 5 * time.Second, Retries: 1}})
	})
	n.waitState(task, env.ContainerPrepared)
	n.do(func(ex *Executor) { ex.Start(task) })
	n.waitState(task, env.ContainerRunning)
	ev := n.waitFor(task, "unhealthy", func(ev env.ContainerEvent) bool { return ev.Health == env.HealthUnhealthy })
	if ev.State != env.ContainerRunning {
		t.Errorf("unhealthy event state = %s, want running", ev.State)
	}
}

// TestRestartAdoption: a new executor for the same node (a restarted
// swarmd) lists the containers the old one left and keeps driving them.
func TestRestartAdoption(t *testing.T) {
	cli := dockerClient(t)
	t.Parallel()
	image := buildImage(t, cli, "adopt", Behaviour{})
	old := newNode(t, cli)
	for _, task := range []string{"t-a-running", "t-b-prepared"} {
		old.do(func(ex *Executor) { ex.Prepare(env.ContainerSpec{TaskID: task, Image: image}) })
		old.waitState(task, env.ContainerPrepared)
	}
	old.do(func(ex *Executor) { ex.Start("t-a-running") })
	old.waitState("t-a-running", env.ContainerRunning)
	old.waitLog("t-a-running", "workload: running until signalled") // TERM stops it with 0 from here on
	if err := old.ex.Close(); err != nil {
		t.Fatal(err)
	}

	n := startNode(t, cli, old.id)
	got := n.list()
	want := []env.ContainerStatus{
		{TaskID: "t-a-running", State: env.ContainerRunning},
		{TaskID: "t-b-prepared", State: env.ContainerPrepared},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("List after restart = %+v, want %+v", got, want)
	}
	// Preparing a task whose container exists adopts it.
	n.do(func(ex *Executor) { ex.Prepare(env.ContainerSpec{TaskID: "t-b-prepared", Image: image}) })
	n.waitState("t-b-prepared", env.ContainerPrepared)

	n.do(func(ex *Executor) { ex.Stop("t-a-running", 10*time.Second) })
	if ev := n.waitState("t-a-running", env.ContainerExited); ev.ExitCode != 0 {
		t.Errorf("exit code = %d, want 0", ev.ExitCode)
	}
	n.do(func(ex *Executor) { ex.Stop("t-b-prepared", time.Second) })
	n.waitState("t-b-prepared", env.ContainerExited)

	// Another node's executor sees none of them.
	other := newNode(t, cli)
	if got := other.list(); len(got) != 0 {
		t.Errorf("another node lists %+v, want nothing", got)
	}
}

// TestLeavesForeignContainersAlone: a container that has a task's name but
// not this node's labels is never stopped or removed.
func TestLeavesForeignContainersAlone(t *testing.T) {
	cli := dockerClient(t)
	t.Parallel()
	image := buildImage(t, cli, "foreign", Behaviour{})
	n := newNode(t, cli)
	const task = "t-foreign"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	created, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:  n.ex.ContainerName(task),
		Image: image,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if _, err := cli.ContainerRemove(ctx, created.ID, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("cleanup: %v", err)
		}
	})

	n.do(func(ex *Executor) { ex.Remove(task) })
	ev := n.waitState(task, env.ContainerFailed)
	if !strings.Contains(ev.Err, errNotOurs.Error()) {
		t.Errorf("failure = %q, want it to say the container is not ours", ev.Err)
	}
	n.do(func(ex *Executor) { ex.Prepare(env.ContainerSpec{TaskID: task, Image: image}) })
	n.waitState(task, env.ContainerFailed)
	if got := n.list(); len(got) != 0 {
		t.Errorf("List = %+v, want nothing", got)
	}
	if _, err := cli.ContainerInspect(ctx, created.ID, client.ContainerInspectOptions{}); err != nil {
		t.Errorf("the foreign container is gone: %v", err)
	}
}

func TestFilesArchiveRejectsBadTargets(t *testing.T) {
	for _, p := range []string{"relative/x", "/a/../b", "/", "/a/"} {
		if _, err := filesArchive(map[string][]byte{p: []byte("x")}); err == nil {
			t.Errorf("target %q accepted", p)
		}
	}
	if r, err := filesArchive(nil); r != nil || err != nil {
		t.Errorf("no files: got %v, %v; want nil, nil", r, err)
	}
}

func TestBehaviourEnv(t *testing.T) {
	got := Behaviour{ExitAfter: time.Minute, ExitCode: 3, Unhealthy: true}.Env()
	want := []string{"WORKLOAD_EXIT_AFTER=1m0s", "WORKLOAD_EXIT_CODE=3", "WORKLOAD_UNHEALTHY=true"}
	if !slices.Equal(got, want) {
		t.Errorf("Env = %q, want %q", got, want)
	}
	if got := (Behaviour{}).Env(); len(got) != 0 {
		t.Errorf("zero Behaviour Env = %q, want none", got)
	}
}
