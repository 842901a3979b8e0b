package sim

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarmsim/swarmsim/engine/env"
)

// execRig is one node with a fake executor whose events are recorded with
// their virtual time.
type execRig struct {
	k      *Kernel
	n      *Node
	e      *Executor
	events []string
	change []string
}

func newExecRig(t *testing.T, cfg ExecutorConfig) *execRig {
	t.Helper()
	r := &execRig{k: NewKernel(1)}
	r.n = r.k.AddNode("w1")
	cfg.OnChange = func(node env.NodeID, task string, running bool) {
		r.change = append(r.change, fmt.Sprintf("%s %s %s %v", r.k.Now(), node, task, running))
	}
	r.e = NewExecutor(r.n, "w1", cfg)
	r.e.SetEventHandler(func(ev env.ContainerEvent) {
		s := fmt.Sprintf("%s %s %s", r.k.Now(), ev.TaskID, ev.State)
		if ev.State == env.ContainerExited {
			s += fmt.Sprintf(" code=%d", ev.ExitCode)
		}
		if ev.Health != env.HealthNone {
			s += fmt.Sprintf(" health=%d", ev.Health)
		}
		if ev.Err != "" {
			s += " err=" + ev.Err
		}
		r.events = append(r.events, s)
	})
	return r
}

func (r *execRig) run(d time.Duration) { r.k.RunUntil(r.k.Now()+d, nil) }

// startTask prepares and, once prepared, starts a task's container.
func (r *execRig) startTask(id, image string, mod func(*env.ContainerSpec)) {
	spec := env.ContainerSpec{TaskID: id, Image: image, NanoCPUs: 5e8, MemoryBytes: 1 << 20}
	if mod != nil {
		mod(&spec)
	}
	r.e.Prepare(spec)
	r.run(0)
	r.e.Start(id)
}

func (r *execRig) want(t *testing.T, want ...string) {
	t.Helper()
	if !slices.Equal(r.events, want) {
		t.Fatalf("events:\n  %s\nwant:\n  %s", strings.Join(r.events, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestExecutorLifecycle(t *testing.T) {
	defer NewKernel(0).Activate()()
	r := newExecRig(t, ExecutorConfig{Start: Fixed(time.Second)})
	r.startTask("t1", "web:1", nil)
	r.run(2 * time.Second)
	if cpu, mem := r.e.Usage(); cpu != 5e8 || mem != 1<<20 {
		t.Errorf("usage %d %d", cpu, mem)
	}
	if got := r.e.Running(); !slices.Equal(got, []string{"t1"}) {
		t.Errorf("running %v", got)
	}
	r.e.Stop("t1", 10*time.Second)
	r.run(time.Second)
	r.e.Remove("t1")
	r.run(time.Second)
	r.want(t,
		"0s t1 prepared",
		"1s t1 running",
		"2.1s t1 exited code=0",
		"3.01s t1 removed",
	)
	if !slices.Equal(r.change, []string{"1s w1 t1 true", "2.1s w1 t1 false"}) {
		t.Errorf("hooks %v", r.change)
	}
	if cpu, mem := r.e.Usage(); cpu != 0 || mem != 0 || r.e.Has("t1") {
		t.Errorf("after removal: usage %d %d, has %v", cpu, mem, r.e.Has("t1"))
	}
}

func TestExecutorFailures(t *testing.T) {
	defer NewKernel(0).Activate()()
	cases := []struct {
		name  string
		cfg   ExecutorConfig
		image string
		spec  func(*env.ContainerSpec)
		want  []string
	}{
		{"fail image exits 1 right after start", ExecutorConfig{Start: Fixed(time.Second), FailImages: []string{"web:broken"}},
			"web:broken", nil, []string{"0s t prepared", "1s t running", "1s t exited code=1"}},
		{"start fails by chance", ExecutorConfig{Start: Fixed(time.Second), Fail: 1},
			"web:1", nil, []string{"0s t prepared", "1s t failed err=start: simulated runtime failure"}},
		{"unhealthy after start period and retries", ExecutorConfig{UnhealthyImages: []string{"web:sick"}},
			"web:sick", func(s *env.ContainerSpec) {
				s.Health = &env.HealthCheck{Interval: 5 * time.Second, Retries: 3, StartPeriod: 10 * time.Second}
			}, []string{"0s t prepared", "0s t running health=1", "25s t running health=3"}},
		{"unhealthy without a health check uses Docker's defaults", ExecutorConfig{UnhealthyImages: []string{"web:sick"}},
			"web:sick", nil, []string{"0s t prepared", "0s t running", "1m30s t running health=3"}},
		{"exits on its own", ExecutorConfig{Exits: []ExecutorExit{{Image: "batch:1", After: Fixed(10 * time.Second), Code: 3}}},
			"batch:1", nil, []string{"0s t prepared", "0s t running", "10s t exited code=3"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newExecRig(t, c.cfg)
			r.startTask("t", c.image, c.spec)
			r.run(2 * time.Minute)
			r.want(t, c.want...)
		})
	}
}

func TestExecutorMissingImage(t *testing.T) {
	defer NewKernel(0).Activate()()
	r := newExecRig(t, ExecutorConfig{MissingImages: []string{"nope:1"}, Prepare: Fixed(time.Second)})
	r.e.Prepare(env.ContainerSpec{TaskID: "t", Image: "nope:1"})
	r.run(2 * time.Second)
	r.want(t, `1s t failed err=image "nope:1" not found`)
	if r.e.Has("t") {
		t.Error("a failed prepare left a container")
	}
}

// Stop honours the grace: a container slower to stop than its grace is
// killed at the grace, with SIGKILL's exit code.
func TestExecutorStopGrace(t *testing.T) {
	defer NewKernel(0).Activate()()
	r := newExecRig(t, ExecutorConfig{StopTime: 5 * time.Second})
	r.startTask("slow", "web:1", nil)
	r.run(time.Second)
	r.e.Stop("slow", time.Second)
	r.run(10 * time.Second)
	r.startTask("patient", "web:1", nil)
	r.run(time.Second)
	r.e.Stop("patient", 10*time.Second)
	r.run(10 * time.Second)
	r.want(t,
		"0s slow prepared", "0s slow running", "2s slow exited code=137",
		"11s patient prepared", "11s patient running", "17s patient exited code=0",
	)
}

// A stop while the container is still starting cancels the start; a
// prepared container that never ran exits at once.
func TestExecutorStopBeforeRunning(t *testing.T) {
	defer NewKernel(0).Activate()()
	r := newExecRig(t, ExecutorConfig{Start: Fixed(time.Second)})
	r.startTask("t", "web:1", nil)
	r.run(500 * time.Millisecond)
	r.e.Stop("t", 10*time.Second)
	r.e.Prepare(env.ContainerSpec{TaskID: "p", Image: "web:1"})
	r.run(time.Millisecond)
	r.e.Stop("p", 10*time.Second)
	r.run(5 * time.Second)
	r.want(t, "0s t prepared", "500ms p prepared", "501ms p exited code=0", "600ms t exited code=0")
	if len(r.change) != 0 {
		t.Errorf("hooks %v for containers that never ran", r.change)
	}
}

// A crash loses every container: the hooks hear the running ones stop,
// their pending events die, and the restarted node lists nothing.
func TestExecutorCrash(t *testing.T) {
	defer NewKernel(0).Activate()()
	r := newExecRig(t, ExecutorConfig{Exits: []ExecutorExit{{Image: "batch:1", After: Fixed(10 * time.Second)}}})
	r.startTask("a", "batch:1", nil)
	r.startTask("b", "web:1", nil)
	r.run(time.Second)
	r.n.Crash()
	r.e.Crash()
	r.run(time.Minute)
	r.n.Start()
	var listed []env.ContainerStatus
	called := false
	r.e.List(func(l []env.ContainerStatus) { listed, called = l, true })
	r.run(time.Second)
	if !called || len(listed) != 0 {
		t.Fatalf("list after crash: called %v, %v", called, listed)
	}
	if want := []string{"0s w1 a true", "0s w1 b true", "1s w1 a false", "1s w1 b false"}; !slices.Equal(r.change, want) {
		t.Errorf("hooks %v, want %v", r.change, want)
	}
	if r.e.NumRunning() != 0 || r.e.Stats.Lost != 2 {
		t.Errorf("running %d lost %d", r.e.NumRunning(), r.e.Stats.Lost)
	}
}

// An agent that restarts on a live node adopts what List reports; Prepare
// of an existing container reports its state instead of creating another.
func TestExecutorListAndAdopt(t *testing.T) {
	defer NewKernel(0).Activate()()
	r := newExecRig(t, ExecutorConfig{})
	r.startTask("b", "web:1", nil)
	r.startTask("a", "web:1", nil)
	r.e.Prepare(env.ContainerSpec{TaskID: "c", Image: "web:1"})
	r.run(time.Second)
	r.e.Kill("a", 2)
	r.run(time.Second)
	var listed []env.ContainerStatus
	r.e.List(func(l []env.ContainerStatus) { listed = l })
	r.run(time.Second)
	want := []env.ContainerStatus{
		{TaskID: "a", State: env.ContainerExited, ExitCode: 2},
		{TaskID: "b", State: env.ContainerRunning},
		{TaskID: "c", State: env.ContainerPrepared},
	}
	if !slices.Equal(listed, want) {
		t.Fatalf("list %v, want %v", listed, want)
	}
	r.events = nil
	r.e.Prepare(env.ContainerSpec{TaskID: "b", Image: "web:1"})
	r.run(time.Second)
	r.want(t, "3s b running")
}

func TestExecutorDeterminism(t *testing.T) {
	run := func(seed uint64) uint64 {
		k := NewKernel(seed)
		defer k.Activate()()
		n := k.AddNode("w1")
		e := NewExecutor(n, "w1", ExecutorConfig{Start: Range{100 * time.Millisecond, 2 * time.Second}, Fail: 0.2,
			Exits: []ExecutorExit{{Image: "batch", After: Range{time.Second, 10 * time.Second}}}})
		e.SetEventHandler(func(ev env.ContainerEvent) {
			if ev.State == env.ContainerPrepared {
				e.Start(ev.TaskID)
			}
		})
		for i := range 50 {
			img := "web"
			if i%2 == 0 {
				img = "batch"
			}
			e.Prepare(env.ContainerSpec{TaskID: fmt.Sprint("t", i), Image: img})
		}
		k.RunUntil(time.Minute, nil)
		return k.TraceHash()
	}
	if a, b := run(7), run(7); a != b {
		t.Fatalf("same seed, hashes %x and %x", a, b)
	}
	if a, b := run(7), run(8); a == b {
		t.Fatalf("different seeds, same hash %x", a)
	}
}
