package scenarios

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/realnet/docker"
	"github.com/swarmsim/swarmsim/realnet/rpc"
)

// TestRealSupport: real mode runs every step, and refuses a file with
// more nodes than it can start, by file and key; the files written for
// real mode are not refused.
func TestRealSupport(t *testing.T) {
	src := `name: x
cluster: {managers: 3, workers: 2}
services:
  - {name: web, image: web:1, replicas: 2}
steps:
  - crash: leader
  - at: 10s
    clock_skew: {node: m2, by: 2s}
  - link: {from: m1, to: m2, latency: 200ms}
  - partition: [[m1], [m2, m3]]
  - heal: all
  - expect: {leader: elected, converged: true, within: 10s}
`
	sc, err := Parse("x.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, err := range RealSupport(sc) {
		if !errors.Is(err, ErrNotReal) {
			t.Errorf("%v does not wrap ErrNotReal", err)
		}
		got = append(got, err.Error())
	}
	if len(got) > 0 {
		t.Errorf("RealSupport refused steps real mode runs:\n%s", strings.Join(got, "\n"))
	}

	files, err := filepath.Glob("real-*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no real-*.yaml files: %v", err)
	}
	files = append(files, "service-lifecycle.yaml", "leader-crash.yaml", "security-join-rotated-token.yaml", "security-root-rotation-partition.yaml",
		"autolock-restart-all-managers.yaml", "security-compromised-worker.yaml", "security-removed-node.yaml", "clock-skew.yaml",
		"lossy-network.yaml")
	for _, f := range files {
		sc, err := ParseFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, err := range RealSupport(sc) {
			t.Errorf("%s is meant for --real: %v", f, err)
		}
	}
	// Nodes that steps add count against the limit of a paired cluster.
	sc, err = Parse("y.yaml", []byte(`name: y
cluster: {managers: 3, workers: 27}
steps:
  - partition: [[m1], [m2, m3]]
  - add_worker: x1
  - remove_worker: x1
  - add_worker: x2
`))
	if err != nil {
		t.Fatal(err)
	}
	if errs := RealSupport(sc); len(errs) != 1 || !strings.Contains(errs[0].Error(), "y.yaml: cluster: 32 nodes, with those steps add") {
		t.Errorf("30 nodes and 2 added with a partition: %v", errs)
	}
	// And a file that cannot run for real says so in the expected shape.
	sc, err = ParseFile("scale-10k-workers.yaml")
	if err != nil {
		t.Fatal(err)
	}
	errs := RealSupport(sc)
	if len(errs) == 0 {
		t.Fatal("scale-10k-workers.yaml: no refusal")
	}
	for _, err := range errs {
		if !strings.HasPrefix(err.Error(), "scale-10k-workers.yaml: cluster: ") {
			t.Errorf("%q does not start with file: key", err)
		}
	}
}

// TestScenarioImages: every image a file names gets the behaviour its
// executor settings give it, under the run's own name.
func TestScenarioImages(t *testing.T) {
	src := `name: x
cluster: {managers: 1}
executor:
  fail_images: [web:broken]
  unhealthy_images: [web:sick]
  exits: [{image: "batch:1", after: 10s..30s, code: 3}]
services:
  - {name: web, image: web:1}
  - {name: b, image: batch:1, mode: replicated-job}
steps:
  - create: {name: s, image: web:sick}
  - update: {service: web, image: web:broken}
`
	sc, err := Parse("x.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	im := RealImagesFor("r1", sc)
	want := map[string]docker.Behaviour{
		"swarmsim-r1/web:1":      {},
		"swarmsim-r1/batch:1":    {ExitAfter: 10e9, ExitAfterMax: 30e9, ExitCode: 3},
		"swarmsim-r1/web:sick":   {Unhealthy: true},
		"swarmsim-r1/web:broken": {FailAtStart: true},
	}
	if len(im.Workloads) != len(want) {
		t.Errorf("images %v, want %v", im.Workloads, want)
	}
	for tag, b := range want {
		if got, ok := im.Workloads[tag]; !ok || got != b {
			t.Errorf("image %s: %+v (present %v), want %+v", tag, got, ok, b)
		}
	}
	if im.Swarmd != "swarmsim-r1/swarmd:latest" {
		t.Errorf("swarmd image %q", im.Swarmd)
	}
}

// fakeControl answers ListServices and ListTasks from fixed lists.
type fakeControl struct {
	rpc.ControlClient
	svcs  []*api.Service
	tasks []*api.Task
}

func (f *fakeControl) ListServices(context.Context, *rpc.ListServicesRequest, ...grpc.CallOption) (*rpc.ListServicesResponse, error) {
	return &rpc.ListServicesResponse{Services: f.svcs}, nil
}

func (f *fakeControl) ListTasks(context.Context, *rpc.ListTasksRequest, ...grpc.CallOption) (*rpc.ListTasksResponse, error) {
	return &rpc.ListTasksResponse{Tasks: f.tasks}, nil
}

func newSampler() *RealWorld {
	return &RealWorld{start: time.Now(), leaders: map[uint64]string{}, bounds: map[string]int{}, digests: map[blockKey]blockSeen{}}
}

// TestRealSampleLeaders: two managers saying they led one term, at any
// time since they started, is a violation; one leader per term, over
// several terms, is not.
func TestRealSampleLeaders(t *testing.T) {
	led := func(name string, terms ...uint64) managerAnswer[rpc.LedTermsResponse] {
		return managerAnswer[rpc.LedTermsResponse]{name, &rpc.LedTermsResponse{Terms: terms}}
	}
	w := newSampler()
	w.sampleLeaders([]managerAnswer[rpc.LedTermsResponse]{led("m1", 2), led("m2")})
	w.sampleLeaders([]managerAnswer[rpc.LedTermsResponse]{led("m1", 2), led("m2", 3, 5)})
	if v := w.Violation(); v != nil {
		t.Fatalf("one leader per term: %v", v)
	}
	// m3 led term 3 long ago: still a breach, though no sample saw it lead.
	w.sampleLeaders([]managerAnswer[rpc.LedTermsResponse]{led("m3", 3, 6)})
	v := w.Violation()
	if v == nil || v.Invariant != OneLeaderPerTerm || !strings.Contains(v.Detail, "m2 and m3 both led term 3") {
		t.Fatalf("m2 and m3 both led term 3: got %v", v)
	}
}

// TestRealSampleDigests: managers reporting the same digests for the
// blocks they share, over samples, is no violation; a block reported with
// another digest, later and by another manager, is.
func TestRealSampleDigests(t *testing.T) {
	st := func(name string, blocks ...uint64) managerDigests {
		r := &rpc.AppliedDigestsResponse{Block: 64}
		for i := 0; i < len(blocks); i += 2 {
			r.Digests = append(r.Digests, &rpc.AppliedDigest{LastIndex: blocks[i], Hash: blocks[i+1]})
		}
		return managerDigests{name, r}
	}
	w := newSampler()
	w.sampleDigests([]managerDigests{st("m1", 64, 0xa, 128, 0xb), st("m2", 64, 0xa)})
	w.sampleDigests([]managerDigests{st("m2", 128, 0xb, 192, 0xc), st("m3", 192, 0xc)})
	if v := w.Violation(); v != nil {
		t.Fatalf("the same digests: %v", v)
	}
	if len(w.digests) != 3 || w.shared != 3 {
		t.Fatalf("%d blocks, %d shared; want 3 and 3", len(w.digests), w.shared)
	}
	w.sampleDigests([]managerDigests{st("m3", 128, 0xd)})
	v := w.Violation()
	if v == nil || v.Invariant != CommittedStaysCommitted || !strings.Contains(v.Detail, "m3 applied entries 65 to 128 differently from what m1 applied there") {
		t.Fatalf("m3's block 128 differs from m1's: got %v", v)
	}
}

// TestRealSampleReplicas: running tasks beyond replicas plus update
// parallelism break replicas-bounded, except while a scale-down's excess
// tasks stop.
func TestRealSampleReplicas(t *testing.T) {
	svc := func(replicas uint64) *api.Service {
		return &api.Service{Id: "s1", Spec: &api.ServiceSpec{Name: "web",
			Mode:   &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: replicas}},
			Update: &api.UpdateConfig{Parallelism: 1}}}
	}
	tasks := func(n int) []*api.Task {
		var out []*api.Task
		for range n {
			out = append(out, &api.Task{ServiceId: "s1", DesiredState: api.TaskState_TASK_STATE_RUNNING,
				Status: &api.TaskStatus{State: api.TaskState_TASK_STATE_RUNNING}})
		}
		return out
	}
	w := newSampler()
	w.sampleReplicas(&fakeControl{svcs: []*api.Service{svc(4)}, tasks: tasks(5)}) // 4 + 1 in an update
	// Scaled to 2 with 5 still running: the old bound holds while they stop.
	w.sampleReplicas(&fakeControl{svcs: []*api.Service{svc(2)}, tasks: tasks(5)})
	w.sampleReplicas(&fakeControl{svcs: []*api.Service{svc(2)}, tasks: tasks(3)})
	if v := w.Violation(); v != nil {
		t.Fatalf("within bounds: %v", v)
	}
	w.sampleReplicas(&fakeControl{svcs: []*api.Service{svc(2)}, tasks: tasks(4)})
	v := w.Violation()
	if v == nil || v.Invariant != ReplicasBounded || !strings.Contains(v.Detail, "4 tasks running") {
		t.Fatalf("4 running of 2 replicas (+1): got %v", v)
	}
}
