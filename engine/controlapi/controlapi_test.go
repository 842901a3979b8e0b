package controlapi_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/controlapi"
	"github.com/swarmsim/swarmsim/engine/store"
	"github.com/swarmsim/swarmsim/sim"
)

type env struct {
	t  *testing.T
	k  *sim.Kernel
	n  *sim.Node
	st *store.Store
	s  *controlapi.Server
}

// newEnv returns a server on a one-node store that applies through a
// Loopback on a simulated node. Callers defer e.k.Activate()().
func newEnv(t *testing.T) *env {
	k := sim.NewKernel(7)
	n := k.AddNode("m1")
	st := store.New(n)
	st.SetProposer(store.NewLoopback(st, n))
	current = t
	return &env{t: t, k: k, n: n, st: st, s: controlapi.New(st, n.Rand("controlapi"))}
}

func (e *env) run() { e.k.RunUntil(e.k.Now()+time.Second, nil) }

// call runs an asynchronous method to completion and checks done was
// called exactly once.
func call[T any](e *env, f func(done func(T, error))) (T, error) {
	e.t.Helper()
	var got T
	var err error
	n := 0
	f(func(v T, e2 error) { got, err = v, e2; n++ })
	e.run()
	if n != 1 {
		e.t.Fatalf("done called %d times", n)
	}
	return got, err
}

func callErr(e *env, f func(done func(error))) error {
	e.t.Helper()
	_, err := call(e, func(done func(struct{}, error)) { f(func(err error) { done(struct{}{}, err) }) })
	return err
}

// current is the running test, for must: tests here never run in
// parallel (the simulation swaps crypto/rand.Reader process-wide).
var current *testing.T

// must returns v, failing the current test on err.
func must[T any](v T, err error) T {
	current.Helper()
	if err != nil {
		current.Fatalf("unexpected error: %v", err)
	}
	return v
}

// wantErr checks an error's sentinel and exact message.
func wantErr(t *testing.T, err, code error, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want %v %q", code, msg)
	}
	if !errors.Is(err, code) {
		t.Fatalf("error %q is not %v", err, code)
	}
	if msg != "" && err.Error() != msg {
		t.Fatalf("error\n got %q\nwant %q", err.Error(), msg)
	}
}

func webSpec() *api.ServiceSpec {
	return &api.ServiceSpec{
		Name:   "web",
		Labels: map[string]string{"tier": "front"},
		Task:   &api.TaskSpec{Container: &api.ContainerSpec{Image: "web:1"}},
		Mode:   &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: 3}},
	}
}

func (e *env) create(spec *api.ServiceSpec) *api.Service {
	e.t.Helper()
	return must(call(e, func(done func(*api.Service, error)) { e.s.CreateService(spec, done) }))
}

func (e *env) update(ref string, version uint64, spec *api.ServiceSpec) (*api.Service, error) {
	return call(e, func(done func(*api.Service, error)) { e.s.UpdateService(ref, version, spec, done) })
}

func (e *env) write(fn func(tx *store.Tx) error) {
	e.t.Helper()
	if err := callErr(e, func(done func(error)) { e.st.Update(fn, done) }); err != nil {
		e.t.Fatal(err)
	}
}

// ------------------------------------------------------------ services

func TestCreateService(t *testing.T) {
	e := newEnv(t)
	defer e.k.Activate()()
	sec := must(call(e, func(done func(*api.Secret, error)) {
		e.s.CreateSecret(&api.SecretSpec{Name: "db-password", Data: []byte("hunter2")}, done)
	}))
	cfg := must(call(e, func(done func(*api.Config, error)) {
		e.s.CreateConfig(&api.ConfigSpec{Name: "app", Data: []byte("x=1")}, done)
	}))
	net := must(call(e, func(done func(*api.Network, error)) { e.s.CreateNetwork(&api.NetworkSpec{Name: "back"}, done) }))

	spec := webSpec()
	spec.Task.Container.Secrets = []*api.SecretReference{{SecretName: "db-password"}}
	spec.Task.Container.Configs = []*api.ConfigReference{{ConfigId: cfg.Id, Target: "/etc/app.conf"}}
	spec.Task.Networks = []string{"back"}
	before := proto.Clone(spec)
	svc := e.create(spec)

	if !proto.Equal(before, spec) {
		t.Fatal("CreateService changed the caller's spec")
	}
	if len(svc.Id) != api.IDLength || svc.SpecVersion != 1 || svc.GetMeta().GetVersion() == 0 || svc.GetMeta().GetCreatedAt() == 0 {
		t.Fatalf("service %v", svc)
	}
	if got := svc.Spec.Task.Container.Secrets[0]; got.SecretId != sec.Id || got.SecretName != "db-password" || got.Target != "db-password" {
		t.Fatalf("secret reference %v", got)
	}
	if got := svc.Spec.Task.Container.Configs[0]; got.ConfigId != cfg.Id || got.ConfigName != "app" || got.Target != "/etc/app.conf" {
		t.Fatalf("config reference %v", got)
	}
	if svc.Spec.Task.Networks[0] != net.Id {
		t.Fatalf("network reference %v, want %s", svc.Spec.Task.Networks, net.Id)
	}
	if got := must(e.s.GetService("web")); got.Id != svc.Id {
		t.Fatal("GetService by name")
	}
	if got := must(e.s.GetService(svc.Id)); got.Spec.Name != "web" {
		t.Fatal("GetService by ID")
	}
}

func TestCreateServiceRefusals(t *testing.T) {
	e := newEnv(t)
	defer e.k.Activate()()
	e.create(webSpec())
	applied := e.st.AppliedIndex()

	bad := webSpec()
	bad.Name = "api"
	bad.Task.Container.Image = ""
	bad.Task.Reservations = &api.Resources{MemoryBytes: -1}
	_, err := call(e, func(done func(*api.Service, error)) { e.s.CreateService(bad, done) })
	wantErr(t, err, controlapi.ErrInvalidArgument,
		"invalid service spec: spec.task.container.image: required; spec.task.reservations.memory_bytes: must not be negative")
	if !errors.Is(err, api.ErrInvalidSpec) || len(api.FieldErrors(err)) != 2 {
		t.Fatalf("validation errors not reachable through %v", err)
	}

	_, err = call(e, func(done func(*api.Service, error)) { e.s.CreateService(webSpec(), done) })
	wantErr(t, err, controlapi.ErrConflict, `service name "web" is already in use`)
	if !errors.Is(err, store.ErrNameConflict) {
		t.Fatal("name conflict does not wrap store.ErrNameConflict")
	}

	missing := webSpec()
	missing.Name = "api"
	missing.Task.Container.Secrets = []*api.SecretReference{{SecretName: "nope"}}
	_, err = call(e, func(done func(*api.Service, error)) { e.s.CreateService(missing, done) })
	wantErr(t, err, controlapi.ErrInvalidArgument, `spec.task.container.secrets[0]: secret "nope" not found`)

	sec := must(call(e, func(done func(*api.Secret, error)) {
		e.s.CreateSecret(&api.SecretSpec{Name: "s", Data: []byte("x")}, done)
	}))
	missing.Task.Container.Secrets = []*api.SecretReference{{SecretName: "s"}, {SecretId: sec.Id}}
	_, err = call(e, func(done func(*api.Service, error)) { e.s.CreateService(missing, done) })
	wantErr(t, err, controlapi.ErrInvalidArgument, `spec.task.container.secrets[1].target: "s" is already the target of secrets[0]`)
	applied = e.st.AppliedIndex()

	missing.Task.Container.Secrets = nil
	missing.Task.Networks = []string{"nowhere"}
	_, err = call(e, func(done func(*api.Service, error)) { e.s.CreateService(missing, done) })
	wantErr(t, err, controlapi.ErrInvalidArgument, `spec.task.networks[0]: network "nowhere" not found`)

	_, err = call(e, func(done func(*api.Service, error)) { e.s.CreateService(nil, done) })
	wantErr(t, err, controlapi.ErrInvalidArgument, "invalid service spec: spec: required")

	if e.st.AppliedIndex() != applied {
		t.Fatal("a refused request wrote")
	}
}

func TestPublishedPortConflicts(t *testing.T) {
	e := newEnv(t)
	defer e.k.Activate()()
	a := webSpec()
	a.Name = "a"
	a.Endpoint = &api.EndpointSpec{Ports: []*api.PortConfig{
		{TargetPort: 80, PublishedPort: 8080},
		{TargetPort: 90, PublishedPort: 9090, PublishMode: api.PortConfig_HOST},
	}}
	e.create(a)

	b := webSpec()
	b.Name = "b"
	b.Endpoint = &api.EndpointSpec{Ports: []*api.PortConfig{{TargetPort: 80, PublishedPort: 8080}}}
	_, err := call(e, func(done func(*api.Service, error)) { e.s.CreateService(b, done) })
	wantErr(t, err, controlapi.ErrConflict, `published port 8080/tcp is already in use by service "a"`)

	// An ingress port collides with a host-mode one; two host-mode ports,
	// or two protocols, do not.
	b.Endpoint.Ports[0].PublishedPort = 9090
	_, err = call(e, func(done func(*api.Service, error)) { e.s.CreateService(b, done) })
	wantErr(t, err, controlapi.ErrConflict, `published port 9090/tcp is already in use by service "a"`)
	b.Endpoint.Ports[0].PublishMode = api.PortConfig_HOST
	e.create(b)
	c := webSpec()
	c.Name = "c"
	c.Endpoint = &api.EndpointSpec{Ports: []*api.PortConfig{{TargetPort: 80, PublishedPort: 8080, Protocol: api.PortConfig_UDP}}}
	e.create(c)

	// A service updating its own ports does not collide with itself.
	cur := must(e.s.GetService("a"))
	a.Task.Container.Image = "web:2"
	must(e.update("a", cur.Meta.Version, a))
}

func TestUpdateService(t *testing.T) {
	e := newEnv(t)
	defer e.k.Activate()()
	svc := e.create(webSpec())
	// An update in progress, to see a new update reset it.
	e.write(func(tx *store.Tx) error {
		c := tx.Service(svc.Id).ShallowCopy()
		c.UpdateStatus = &api.UpdateStatus{State: api.UpdateStatus_PAUSED}
		return tx.Update(c)
	})
	svc = must(e.s.GetService("web"))

	v2 := webSpec()
	v2.Task.Container.Image = "web:2"
	got := must(e.update("web", svc.Meta.Version, v2))
	if got.SpecVersion != 2 || got.PreviousSpecVersion != 1 || got.UpdateStatus != nil {
		t.Fatalf("after image change: spec_version %d, previous %d, update status %v", got.SpecVersion, got.PreviousSpecVersion, got.UpdateStatus)
	}
	if got.PreviousSpec.Task.Container.Image != "web:1" || got.Spec.Task.Container.Image != "web:2" {
		t.Fatal("previous spec not kept")
	}

	// A stale version is refused, saying which versions.
	_, err := e.update("web", svc.Meta.Version, v2)
	wantErr(t, err, controlapi.ErrConflict, fmt.Sprintf(
		"update out of sequence: service web is at version %d, request was based on %d", got.Meta.Version, svc.Meta.Version))
	if !errors.Is(err, store.ErrSequenceConflict) {
		t.Fatal("version conflict does not wrap store.ErrSequenceConflict")
	}

	// force_update counts as a change that reaches the tasks.
	forced := proto.Clone(v2).(*api.ServiceSpec)
	forced.Task.ForceUpdate = 1
	got = must(e.update("web", got.Meta.Version, forced))
	if got.SpecVersion != 3 {
		t.Fatalf("force_update: spec_version %d, want 3", got.SpecVersion)
	}

	// A change the tasks do not see keeps spec_version, but is still what
	// a rollback undoes.
	more := proto.Clone(forced).(*api.ServiceSpec)
	more.Mode = &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: 5}}
	more.Labels = map[string]string{"tier": "back"}
	got = must(e.update("web", got.Meta.Version, more))
	if got.SpecVersion != 3 || got.PreviousSpecVersion != 3 || got.PreviousSpec.GetReplicated().GetReplicas() != 3 {
		t.Fatalf("replicas change: %v", got)
	}

	// The same spec writes nothing.
	applied := e.st.AppliedIndex()
	same := must(e.update("web", got.Meta.Version, more))
	if e.st.AppliedIndex() != applied || same.Meta.Version != got.Meta.Version {
		t.Fatal("an unchanged spec was written")
	}

	renamed := proto.Clone(more).(*api.ServiceSpec)
	renamed.Name = "www"
	_, err = e.update("web", got.Meta.Version, renamed)
	wantErr(t, err, controlapi.ErrInvalidArgument, `renaming a service is not supported ("web" to "www")`)

	global := proto.Clone(more).(*api.ServiceSpec)
	global.Mode = &api.ServiceSpec_Global{Global: &api.GlobalService{}}
	_, err = e.update("web", got.Meta.Version, global)
	wantErr(t, err, controlapi.ErrInvalidArgument, `service "web" is replicated; changing a service's mode (to global) is not supported`)

	_, err = e.update("nope", 1, more)
	wantErr(t, err, controlapi.ErrNotFound, `service "nope" not found`)

	bad := proto.Clone(more).(*api.ServiceSpec)
	bad.Update = &api.UpdateConfig{MaxFailureRatio: 2}
	_, err = e.update("web", got.Meta.Version, bad)
	wantErr(t, err, controlapi.ErrInvalidArgument, "invalid service spec: spec.update.max_failure_ratio: 2 is outside [0, 1]")
}

// Two updates based on one version, both past the checks before either
// applies: the store rejects the second, and the caller hears a conflict.
func TestConcurrentUpdatesConflict(t *testing.T) {
	e := newEnv(t)
	defer e.k.Activate()()
	svc := e.create(webSpec())
	var errs []error
	for _, img := range []string{"web:2", "web:3"} {
		spec := webSpec()
		spec.Task.Container.Image = img
		e.s.UpdateService("web", svc.Meta.Version, spec, func(_ *api.Service, err error) { errs = append(errs, err) })
	}
	e.run()
	if len(errs) != 2 || errs[0] != nil {
		t.Fatalf("errors %v", errs)
	}
	wantErr(t, errs[1], controlapi.ErrConflict,
		`update service "web": update out of sequence: it changed while the request was in flight; read it again`)
	if !errors.Is(errs[1], store.ErrSequenceConflict) {
		t.Fatal("not a store sequence conflict")
	}
	if img := must(e.s.GetService("web")).Spec.Task.Container.Image; img != "web:2" {
		t.Fatalf("image %s", img)
	}
}

func TestScaleService(t *testing.T) {
	e := newEnv(t)
	defer e.k.Activate()()
	e.create(webSpec())
	v2 := webSpec()
	v2.Task.Container.Image = "web:2"
	cur := must(e.s.GetService("web"))
	updated := must(e.update("web", cur.Meta.Version, v2))

	got := must(call(e, func(done func(*api.Service, error)) { e.s.ScaleService("web", 10, done) }))
	if got.Spec.GetReplicated().GetReplicas() != 10 || got.SpecVersion != updated.SpecVersion ||
		!proto.Equal(got.PreviousSpec, updated.PreviousSpec) {
		t.Fatalf("after scale: %v", got)
	}

	g := webSpec()
	g.Name = "agent"
	g.Mode = &api.ServiceSpec_Global{Global: &api.GlobalService{}}
	e.create(g)
	_, err := call(e, func(done func(*api.Service, error)) { e.s.ScaleService("agent", 3, done) })
	wantErr(t, err, controlapi.ErrFailedPrecondition, `service "agent" is global: only replicated services scale`)

	j := webSpec()
	j.Name = "batch"
	j.Mode = &api.ServiceSpec_ReplicatedJob{ReplicatedJob: &api.ReplicatedJob{TotalCompletions: 10}}
	e.create(j)
	_, err = call(e, func(done func(*api.Service, error)) { e.s.ScaleService("batch", 3, done) })
	wantErr(t, err, controlapi.ErrFailedPrecondition, `service "batch" is a replicated job: only replicated services scale`)

	_, err = call(e, func(done func(*api.Service, error)) { e.s.ScaleService("ghost", 3, done) })
	wantErr(t, err, controlapi.ErrNotFound, `service "ghost" not found`)
	_, err = call(e, func(done func(*api.Service, error)) { e.s.ScaleService("web", 1<<40, done) })
	wantErr(t, err, controlapi.ErrInvalidArgument, "1099511627776 replicas is more than the 1000000 allowed")
}

func TestRollbackService(t *testing.T) {
	e := newEnv(t)
	defer e.k.Activate()()
	svc := e.create(webSpec())
	_, err := call(e, func(done func(*api.Service, error)) { e.s.RollbackService("web", done) })
	wantErr(t, err, controlapi.ErrFailedPrecondition, `service "web" has no previous spec to roll back to`)

	v2 := webSpec()
	v2.Task.Container.Image = "web:2"
	must(e.update("web", svc.Meta.Version, v2))
	got := must(call(e, func(done func(*api.Service, error)) { e.s.RollbackService("web", done) }))
	if got.Spec.Task.Container.Image != "web:1" || got.PreviousSpec.Task.Container.Image != "web:2" {
		t.Fatalf("rollback did not swap: spec %v previous %v", got.Spec.Task, got.PreviousSpec.Task)
	}
	if got.UpdateStatus.GetState() != api.UpdateStatus_ROLLBACK_STARTED || got.UpdateStatus.StartedAt == 0 {
		t.Fatalf("update status %v", got.UpdateStatus)
	}
	if got.SpecVersion != 3 || got.PreviousSpecVersion != 2 {
		t.Fatalf("versions %d/%d, want 3/2", got.SpecVersion, got.PreviousSpecVersion)
	}

	// A rollback that would bring back a removed secret is refused.
	must(call(e, func(done func(*api.Secret, error)) {
		e.s.CreateSecret(&api.SecretSpec{Name: "s", Data: []byte("x")}, done)
	}))
	withSecret := webSpec()
	withSecret.Task.Container.Secrets = []*api.SecretReference{{SecretName: "s"}}
	cur := must(e.s.GetService("web"))
	cur = must(e.update("web", cur.Meta.Version, withSecret))
	plain := webSpec()
	plain.Task.Container.Image = "web:4"
	must(e.update("web", cur.Meta.Version, plain))
	// Still referenced by the previous spec.
	err = callErr(e, func(done func(error)) { e.s.RemoveSecret("s", done) })
	wantErr(t, err, controlapi.ErrFailedPrecondition, `secret "s" is in use by service "web"`)
}

func TestRemoveService(t *testing.T) {
	e := newEnv(t)
	defer e.k.Activate()()
	e.create(webSpec())
	if err := callErr(e, func(done func(error)) { e.s.RemoveService("web", done) }); err != nil {
		t.Fatal(err)
	}
	_, err := e.s.GetService("web")
	wantErr(t, err, controlapi.ErrNotFound, `service "web" not found`)
	err = callErr(e, func(done func(error)) { e.s.RemoveService("web", done) })
	wantErr(t, err, controlapi.ErrNotFound, `service "web" not found`)
	err = callErr(e, func(done func(error)) { e.s.RemoveService("", done) })
	wantErr(t, err, controlapi.ErrInvalidArgument, "a service ID or name is required")
}

// Any change of a job runs it again: spec_version moves, and the
// orchestrator (which owns job_status) starts a new iteration.
func TestJobUpdateRunsAgain(t *testing.T) {
	e := newEnv(t)
	defer e.k.Activate()()
	spec := webSpec()
	spec.Name = "nightly"
	spec.Mode = &api.ServiceSpec_ReplicatedJob{ReplicatedJob: &api.ReplicatedJob{MaxConcurrent: 3, TotalCompletions: 10}}
	svc := e.create(spec)
	if svc.JobStatus != nil || svc.SpecVersion != 1 {
		t.Fatalf("new job: spec_version %d, job status %v", svc.SpecVersion, svc.JobStatus)
	}
	spec.Mode = &api.ServiceSpec_ReplicatedJob{ReplicatedJob: &api.ReplicatedJob{MaxConcurrent: 3, TotalCompletions: 20}}
	got := must(e.update("nightly", svc.Meta.Version, spec))
	if got.SpecVersion != 2 || got.JobStatus != nil {
		t.Fatalf("after completions change: spec_version %d, job status %v", got.SpecVersion, got.JobStatus)
	}
	_, err := call(e, func(done func(*api.Service, error)) { e.s.RollbackService("nightly", done) })
	wantErr(t, err, controlapi.ErrFailedPrecondition, `service "nightly" is a job: jobs are not rolled back; update it instead`)
}

func TestListServices(t *testing.T) {
	e := newEnv(t)
	defer e.k.Activate()()
	for _, n := range []string{"web", "web-admin", "api"} {
		s := webSpec()
		s.Name = n
		if n == "api" {
			s.Labels = map[string]string{"tier": "back"}
		}
		e.create(s)
	}
	names := func(ss []*api.Service) []string {
		var out []string
		for _, s := range ss {
			out = append(out, s.Spec.Name)
		}
		slices.Sort(out)
		return out
	}
	if got := names(e.s.ListServices(controlapi.ServiceFilter{})); len(got) != 3 {
		t.Fatalf("all: %v", got)
	}
	if got := names(e.s.ListServices(controlapi.ServiceFilter{NamePrefix: "web"})); !slices.Equal(got, []string{"web", "web-admin"}) {
		t.Fatalf("prefix: %v", got)
	}
	if got := names(e.s.ListServices(controlapi.ServiceFilter{Labels: map[string]string{"tier": "back"}})); !slices.Equal(got, []string{"api"}) {
		t.Fatalf("label: %v", got)
	}
	if got := names(e.s.ListServices(controlapi.ServiceFilter{Labels: map[string]string{"tier": ""}})); len(got) != 3 {
		t.Fatalf("label key: %v", got)
	}
}

// --------------------------------------------------------------- tasks

func TestListTasks(t *testing.T) {
	e := newEnv(t)
	defer e.k.Activate()()
	web := e.create(webSpec())
	e.write(func(tx *store.Tx) error {
		if err := tx.Create(&api.Node{Id: "n1", Spec: &api.NodeSpec{Name: "w1"}}); err != nil {
			return err
		}
		for i, tc := range []struct {
			node    string
			desired api.TaskState
		}{{"n1", api.TaskState_TASK_STATE_RUNNING}, {"", api.TaskState_TASK_STATE_RUNNING}, {"n1", api.TaskState_TASK_STATE_SHUTDOWN}} {
			if err := tx.Create(&api.Task{Id: fmt.Sprintf("t%d", i), ServiceId: web.Id, NodeId: tc.node, DesiredState: tc.desired,
				Status: &api.TaskStatus{}}); err != nil {
				return err
			}
		}
		return tx.Create(&api.Task{Id: "other", ServiceId: "x", NodeId: "n1", Status: &api.TaskStatus{}})
	})
	ids := func(f controlapi.TaskFilter) string {
		ts, err := e.s.ListTasks(f)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, x := range ts {
			out = append(out, x.Id)
		}
		return strings.Join(out, ",")
	}
	cases := []struct {
		f    controlapi.TaskFilter
		want string
	}{
		{controlapi.TaskFilter{}, "other,t0,t1,t2"},
		{controlapi.TaskFilter{Service: "web"}, "t0,t1,t2"},
		{controlapi.TaskFilter{Service: web.Id, Node: "w1"}, "t0,t2"},
		{controlapi.TaskFilter{Node: "n1"}, "other,t0,t2"},
		{controlapi.TaskFilter{Service: "web", DesiredStates: []api.TaskState{api.TaskState_TASK_STATE_RUNNING}}, "t0,t1"},
	}
	for _, tc := range cases {
		if got := ids(tc.f); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.f, got, tc.want)
		}
	}
	_, err := e.s.ListTasks(controlapi.TaskFilter{Service: "ghost"})
	wantErr(t, err, controlapi.ErrNotFound, `service "ghost" not found`)
	if got := must(e.s.GetTask("t1")); got.Id != "t1" {
		t.Fatal("GetTask")
	}
	_, err = e.s.GetTask("nope")
	wantErr(t, err, controlapi.ErrNotFound, `task "nope" not found`)
}

// ------------------------------------------------- secrets and configs

func TestSecretsNeverListedWithData(t *testing.T) {
	e := newEnv(t)
	defer e.k.Activate()()
	created := must(call(e, func(done func(*api.Secret, error)) {
		e.s.CreateSecret(&api.SecretSpec{Name: "db-password", Data: []byte("not-in-any-log")}, done)
	}))
	check := func(what string, x *api.Secret) {
		t.Helper()
		if len(x.GetSpec().GetData()) != 0 || strings.Contains(fmt.Sprint(x), "not-in-any-log") {
			t.Fatalf("%s carries the data: %v", what, x)
		}
		if x.Spec.Name != "db-password" || x.Id == "" {
			t.Fatalf("%s metadata %v", what, x)
		}
	}
	check("CreateSecret's answer", created)
	check("GetSecret", must(e.s.GetSecret("db-password")))
	check("GetSecret by ID", must(e.s.GetSecret(created.Id)))
	list := e.s.ListSecrets("")
	if len(list) != 1 {
		t.Fatalf("list %v", list)
	}
	check("ListSecrets", list[0])
	// The store keeps it, for the tasks.
	if string(e.st.Secret(created.Id).Spec.Data) != "not-in-any-log" {
		t.Fatal("data not stored")
	}

	_, err := call(e, func(done func(*api.Secret, error)) {
		e.s.CreateSecret(&api.SecretSpec{Name: "db-password", Data: []byte("x")}, done)
	})
	wantErr(t, err, controlapi.ErrConflict, `secret name "db-password" is already in use`)
	_, err = call(e, func(done func(*api.Secret, error)) {
		e.s.CreateSecret(&api.SecretSpec{Name: "big", Data: make([]byte, api.MaxSecretSize+1)}, done)
	})
	wantErr(t, err, controlapi.ErrInvalidArgument, "invalid secret spec: spec.data: 512001 bytes; at most 512000 (500 KiB) are allowed")
}

func TestSecretInUse(t *testing.T) {
	e := newEnv(t)
	defer e.k.Activate()()
	must(call(e, func(done func(*api.Secret, error)) {
		e.s.CreateSecret(&api.SecretSpec{Name: "db", Data: []byte("x")}, done)
	}))
	spec := webSpec()
	spec.Task.Container.Secrets = []*api.SecretReference{{SecretName: "db"}}
	e.create(spec)
	err := callErr(e, func(done func(error)) { e.s.RemoveSecret("db", done) })
	wantErr(t, err, controlapi.ErrFailedPrecondition, `secret "db" is in use by service "web"`)
	if err := callErr(e, func(done func(error)) { e.s.RemoveService("web", done) }); err != nil {
		t.Fatal(err)
	}
	if err := callErr(e, func(done func(error)) { e.s.RemoveSecret("db", done) }); err != nil {
		t.Fatal(err)
	}
	_, err = e.s.GetSecret("db")
	wantErr(t, err, controlapi.ErrNotFound, `secret "db" not found`)
}

func TestConfigs(t *testing.T) {
	e := newEnv(t)
	defer e.k.Activate()()
	c := must(call(e, func(done func(*api.Config, error)) {
		e.s.CreateConfig(&api.ConfigSpec{Name: "app", Data: []byte("x=1")}, done)
	}))
	if string(c.Spec.Data) != "x=1" || len(e.s.ListConfigs("a")) != 1 || len(e.s.ListConfigs("b")) != 0 {
		t.Fatal("config create/list")
	}
	spec := webSpec()
	spec.Task.Container.Configs = []*api.ConfigReference{{ConfigName: "app"}}
	e.create(spec)
	err := callErr(e, func(done func(error)) { e.s.RemoveConfig("app", done) })
	wantErr(t, err, controlapi.ErrFailedPrecondition, `config "app" is in use by service "web"`)
	spec2 := webSpec()
	spec2.Name = "api"
	spec2.Task.Container.Configs = []*api.ConfigReference{{ConfigId: c.Id, ConfigName: "other"}}
	_, err = call(e, func(done func(*api.Service, error)) { e.s.CreateService(spec2, done) })
	wantErr(t, err, controlapi.ErrInvalidArgument,
		fmt.Sprintf(`spec.task.container.configs[0]: config %s is named "app", not "other"`, c.Id))
}

// ------------------------------------------------------------ networks

func TestNetworks(t *testing.T) {
	e := newEnv(t)
	defer e.k.Activate()()
	create := func(spec *api.NetworkSpec) (*api.Network, error) {
		return call(e, func(done func(*api.Network, error)) { e.s.CreateNetwork(spec, done) })
	}
	a := must(create(&api.NetworkSpec{Name: "a"}))
	b := must(create(&api.NetworkSpec{Name: "b"}))
	if a.Spec.Subnet != "10.128.0.0/20" || b.Spec.Subnet != "10.128.16.0/20" || a.Spec.Driver != "overlay" {
		t.Fatalf("chosen subnets %s %s, driver %s", a.Spec.Subnet, b.Spec.Subnet, a.Spec.Driver)
	}
	_, err := create(&api.NetworkSpec{Name: "c", Subnet: "10.128.4.0/24"})
	wantErr(t, err, controlapi.ErrConflict, `subnet 10.128.4.0/24 overlaps network "a" (10.128.0.0/20)`)
	_, err = create(&api.NetworkSpec{Name: "a", Subnet: "192.168.0.0/24"})
	wantErr(t, err, controlapi.ErrConflict, `network name "a" is already in use`)
	_, err = create(&api.NetworkSpec{Name: "c", Subnet: "10.1.2.3/24"})
	wantErr(t, err, controlapi.ErrInvalidArgument, `invalid network spec: spec.subnet: "10.1.2.3/24" has host bits set; did you mean 10.1.2.0/24?`)

	spec := webSpec()
	spec.Task.Networks = []string{"a"}
	e.create(spec)
	err = callErr(e, func(done func(error)) { e.s.RemoveNetwork("a", done) })
	wantErr(t, err, controlapi.ErrFailedPrecondition, `network "a" is in use by service "web"`)

	// A live task attached holds it too.
	e.write(func(tx *store.Tx) error {
		return tx.Create(&api.Task{Id: "t1", Status: &api.TaskStatus{State: api.TaskState_TASK_STATE_RUNNING},
			Networks: []*api.NetworkAttachment{{NetworkId: b.Id, Address: "10.128.16.5/20"}}})
	})
	err = callErr(e, func(done func(error)) { e.s.RemoveNetwork("b", done) })
	wantErr(t, err, controlapi.ErrFailedPrecondition, `network "b" is in use by 1 tasks`)
	e.write(func(tx *store.Tx) error {
		return tx.UpdateTaskStatus("t1", &api.TaskStatus{State: api.TaskState_TASK_STATE_COMPLETE, Timestamp: tx.Timestamp()})
	})
	if err := callErr(e, func(done func(error)) { e.s.RemoveNetwork("b", done) }); err != nil {
		t.Fatal(err)
	}
	if got := e.s.ListNetworks(""); len(got) != 1 || got[0].Id != a.Id {
		t.Fatalf("networks %v", got)
	}
}

// --------------------------------------------------------------- nodes

// seedNodes stores three ready managers m1-m3 and a ready worker w1.
func (e *env) seedNodes() {
	e.write(func(tx *store.Tx) error {
		for _, name := range []string{"m1", "m2", "m3", "w1"} {
			role := api.NodeRole_NODE_ROLE_MANAGER
			if name[0] == 'w' {
				role = api.NodeRole_NODE_ROLE_WORKER
			}
			n := &api.Node{Id: "id-" + name, Role: role,
				Spec:        &api.NodeSpec{Name: name, DesiredRole: role},
				Description: &api.NodeDescription{Hostname: name + ".local"},
				Status:      &api.NodeStatus{State: api.NodeState_NODE_STATE_READY}}
			if role == api.NodeRole_NODE_ROLE_MANAGER {
				n.ManagerStatus = &api.ManagerStatus{Reachable: true}
			}
			if err := tx.Create(n); err != nil {
				return err
			}
		}
		return nil
	})
}

func nodeCall(e *env, f func(string, func(*api.Node, error)), ref string) (*api.Node, error) {
	return call(e, func(done func(*api.Node, error)) { f(ref, done) })
}

func TestNodeAvailability(t *testing.T) {
	e := newEnv(t)
	defer e.k.Activate()()
	e.seedNodes()
	for _, tc := range []struct {
		f    func(string, func(*api.Node, error))
		want api.NodeAvailability
	}{
		{e.s.DrainNode, api.NodeAvailability_NODE_AVAILABILITY_DRAIN},
		{e.s.PauseNode, api.NodeAvailability_NODE_AVAILABILITY_PAUSE},
		{e.s.ActivateNode, api.NodeAvailability_NODE_AVAILABILITY_ACTIVE},
	} {
		n := must(nodeCall(e, tc.f, "w1"))
		if n.Spec.Availability != tc.want || n.Spec.Name != "w1" {
			t.Fatalf("availability %v, want %v", n.Spec.Availability, tc.want)
		}
	}
	// By hostname, too.
	if n := must(nodeCall(e, e.s.DrainNode, "w1.local")); n.Id != "id-w1" {
		t.Fatal("lookup by hostname")
	}
	_, err := nodeCall(e, e.s.DrainNode, "w9")
	wantErr(t, err, controlapi.ErrNotFound, `node "w9" not found`)

	// UpdateNode checks the version.
	cur := must(e.s.GetNode("w1"))
	spec := proto.Clone(cur.Spec).(*api.NodeSpec)
	spec.Labels = map[string]string{"zone": "a"}
	_, err = call(e, func(done func(*api.Node, error)) { e.s.UpdateNode("w1", cur.Meta.Version-1, spec, done) })
	wantErr(t, err, controlapi.ErrConflict, fmt.Sprintf(
		"update out of sequence: node w1 is at version %d, request was based on %d", cur.Meta.Version, cur.Meta.Version-1))
	got := must(call(e, func(done func(*api.Node, error)) { e.s.UpdateNode("w1", cur.Meta.Version, spec, done) }))
	if got.Spec.Labels["zone"] != "a" {
		t.Fatal("labels not updated")
	}
	if got := e.s.ListNodes(controlapi.NodeFilter{Labels: map[string]string{"zone": "a"}}); len(got) != 1 {
		t.Fatalf("label filter %v", got)
	}
	if got := e.s.ListNodes(controlapi.NodeFilter{Roles: []api.NodeRole{api.NodeRole_NODE_ROLE_MANAGER}}); len(got) != 3 {
		t.Fatalf("role filter %v", got)
	}
	if got := e.s.ListNodes(controlapi.NodeFilter{NamePrefix: "m"}); len(got) != 3 {
		t.Fatalf("prefix filter %v", got)
	}
	_, err = call(e, func(done func(*api.Node, error)) {
		e.s.UpdateNode("w1", got.Meta.Version, &api.NodeSpec{Availability: 7}, done)
	})
	wantErr(t, err, controlapi.ErrInvalidArgument, "invalid node spec: spec.availability: unknown availability 7; expected active, pause or drain")
}

func TestPromoteDemote(t *testing.T) {
	e := newEnv(t)
	defer e.k.Activate()()
	e.seedNodes()
	if n := must(nodeCall(e, e.s.PromoteNode, "w1")); n.Spec.DesiredRole != api.NodeRole_NODE_ROLE_MANAGER || n.Role != api.NodeRole_NODE_ROLE_WORKER {
		t.Fatalf("promote: desired %v role %v (the manager layer changes the role)", n.Spec.DesiredRole, n.Role)
	}
	// Cancelling a promotion not carried out is always fine.
	must(nodeCall(e, e.s.DemoteNode, "w1"))

	// With m3 unreachable, demoting m1 leaves m2 and m3: one reachable of
	// a quorum of two.
	e.write(func(tx *store.Tx) error {
		c := tx.Node("id-m3").ShallowCopy()
		c.ManagerStatus = &api.ManagerStatus{Reachable: false}
		return tx.Update(c)
	})
	_, err := nodeCall(e, e.s.DemoteNode, "m1")
	wantErr(t, err, controlapi.ErrFailedPrecondition,
		"cannot demote m1: of the 2 managers that would remain, 1 are reachable, short of the quorum of 2")

	e.write(func(tx *store.Tx) error {
		c := tx.Node("id-m3").ShallowCopy()
		c.ManagerStatus = &api.ManagerStatus{Reachable: true}
		return tx.Update(c)
	})
	if n := must(nodeCall(e, e.s.DemoteNode, "m1")); n.Spec.DesiredRole != api.NodeRole_NODE_ROLE_WORKER {
		t.Fatal("demote m1")
	}
	// m1 is on its way out and does not count as staying.
	must(nodeCall(e, e.s.DemoteNode, "m2"))
	_, err = nodeCall(e, e.s.DemoteNode, "m3")
	wantErr(t, err, controlapi.ErrFailedPrecondition, "cannot demote m3: it is the last manager")
}

// TestDemotionAsksRaft: with raft's view wired in (SetReachability), the
// demotion check counts the managers raft hears from, whatever their
// stored status and readiness say, and falls back to those only for nodes
// raft says nothing of.
func TestDemotionAsksRaft(t *testing.T) {
	e := newEnv(t)
	defer e.k.Activate()()
	e.seedNodes()
	// m2's agent lost its session (its node is down) and its stored
	// status is stale, yet raft hears from it; raft no longer hears from
	// m3, stored as reachable.
	e.write(func(tx *store.Tx) error {
		c := tx.Node("id-m2").ShallowCopy()
		c.Status = &api.NodeStatus{State: api.NodeState_NODE_STATE_DOWN}
		c.ManagerStatus = &api.ManagerStatus{Reachable: false}
		return tx.Update(c)
	})
	raftSays := map[string]bool{"id-m1": true, "id-m2": true, "id-m3": false}
	e.s.SetReachability(func(id string) (bool, bool) {
		r, ok := raftSays[id]
		return r, ok
	})
	// Demoting m1 leaves m2 (reachable) and m3 (not): short of two.
	_, err := nodeCall(e, e.s.DemoteNode, "m1")
	wantErr(t, err, controlapi.ErrFailedPrecondition,
		"cannot demote m1: of the 2 managers that would remain, 1 are reachable, short of the quorum of 2")
	raftSays["id-m3"] = true
	if n := must(nodeCall(e, e.s.DemoteNode, "m1")); n.Spec.DesiredRole != api.NodeRole_NODE_ROLE_WORKER {
		t.Fatal("demote m1")
	}
	// Raft knows nothing of m3 now: its stored status (reachable) counts.
	delete(raftSays, "id-m3")
	must(nodeCall(e, e.s.DemoteNode, "m2"))
}

func TestRemoveNode(t *testing.T) {
	e := newEnv(t)
	defer e.k.Activate()()
	e.seedNodes()
	remove := func(ref string, force bool) error {
		return callErr(e, func(done func(error)) { e.s.RemoveNode(ref, force, done) })
	}
	wantErr(t, remove("m1", true), controlapi.ErrFailedPrecondition, "node m1 is a manager: demote it before removing it")
	wantErr(t, remove("w1", false), controlapi.ErrFailedPrecondition, "node w1 is ready: stop it first, or remove it with force")
	if err := remove("w1", true); err != nil {
		t.Fatal(err)
	}
	n := must(e.s.GetNode("id-w1"))
	if !n.Removed || n.Status.State != api.NodeState_NODE_STATE_DOWN || n.Spec.Availability != api.NodeAvailability_NODE_AVAILABILITY_DRAIN {
		t.Fatalf("tombstone %v", n)
	}
	_, err := e.s.GetNode("w1")
	wantErr(t, err, controlapi.ErrNotFound, `node "w1" not found`)
	wantErr(t, remove("id-w1", true), controlapi.ErrNotFound, `node "id-w1" was removed from the cluster`)
	if len(e.s.ListNodes(controlapi.NodeFilter{})) != 3 || len(e.s.ListNodes(controlapi.NodeFilter{IncludeRemoved: true})) != 4 {
		t.Fatal("listing hides tombstones unless asked")
	}
	// A down worker goes without force.
	e.write(func(tx *store.Tx) error {
		return tx.Create(&api.Node{Id: "id-w2", Spec: &api.NodeSpec{Name: "w2"}, Status: &api.NodeStatus{State: api.NodeState_NODE_STATE_DOWN}})
	})
	if err := remove("w2", false); err != nil {
		t.Fatal(err)
	}
}

// ------------------------------------------------------------- methods

func TestMethods(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range controlapi.Methods {
		if !strings.HasPrefix(m, "/swarm.Control/") || seen[m] {
			t.Fatalf("method %q", m)
		}
		seen[m] = true
	}
	if len(controlapi.Methods) != 29 {
		t.Fatalf("%d methods", len(controlapi.Methods))
	}
}
