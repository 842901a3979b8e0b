package agent_test

import (
	"slices"
	"testing"
	"time"

	"github.com/swarmsim/swarmsim/engine/agent"
	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/sim"
)

// recordingExecutor remembers the spec of every container prepared.
type recordingExecutor struct {
	*sim.Executor
	specs map[string]env.ContainerSpec
}

func (x *recordingExecutor) Prepare(s env.ContainerSpec) {
	x.specs[s.TaskID] = s
	x.Executor.Prepare(s)
}

// newFilesRig is newRig with one scripted leader m1 and an executor that
// records the specs the agent prepares.
func newFilesRig(t *testing.T) (*rig, *manager, *recordingExecutor) {
	r := &rig{t: t, k: sim.NewKernel(3), mgrs: map[env.NodeID]*manager{}}
	r.net = sim.NewNetwork(r.k, sim.LinkModel{Latency: sim.Fixed(time.Millisecond)})
	m := &manager{id: "m1", sess: "s-m1", on: leader(nil)}
	m.ep = r.net.Attach(r.k.AddNode("m1"), "m1", func(from env.Peer, msg env.Message) {
		m.got = append(m.got, msg)
		m.on(m, from, msg)
	})
	r.mgrs["m1"] = m
	r.w = r.k.AddNode("w1")
	r.ep = r.net.Attach(r.w, "w1", func(from env.Peer, msg env.Message) { r.agent.Handle(from, msg) })
	r.exec = sim.NewExecutor(r.w, "w1", sim.ExecutorConfig{Start: sim.Fixed(100 * time.Millisecond)})
	rec := &recordingExecutor{Executor: r.exec, specs: map[string]env.ContainerSpec{}}
	r.agent = agent.New(agent.Deps{
		ID: "w1", Loop: r.w, Clock: r.w, Rand: r.w.Rand("agent"), Transport: r.ep, Executor: rec,
		Config: agent.Config{Managers: []env.NodeID{"m1"}, Description: &api.NodeDescription{Hostname: "w1"}},
	})
	r.w.Post(r.agent.Start)
	return r, m, rec
}

func (m *manager) send(to env.NodeID, a *api.Assignments) {
	m.seq++
	a.SessionId, a.Seq = m.sess, m.seq
	m.ep.Send(to, a)
}

func withRefs(t *api.Task) *api.Task {
	t.Spec.Container.Secrets = []*api.SecretReference{
		{SecretId: "s1", SecretName: "db-password", Target: "db-password"},
		{SecretId: "s2", SecretName: "tls-key", Target: "/etc/tls/key.pem"},
	}
	t.Spec.Container.Configs = []*api.ConfigReference{{ConfigId: "c1", ConfigName: "app.conf", Target: "/app.conf"}}
	return t
}

var (
	secret1 = &api.Secret{Id: "s1", Spec: &api.SecretSpec{Name: "db-password", Data: []byte("hunter2")}}
	secret2 = &api.Secret{Id: "s2", Spec: &api.SecretSpec{Name: "tls-key", Data: []byte("-----BEGIN KEY")}}
	config1 = &api.Config{Id: "c1", Spec: &api.ConfigSpec{Name: "app.conf", Data: []byte("x=1")}}
)

// The data of a task's secrets and configs reaches the executor as files
// at their targets; withdrawn, the agent forgets them.
func TestSecretsBecomeFiles(t *testing.T) {
	r, m, rec := newFilesRig(t)
	defer r.k.Activate()()
	r.run(time.Second)
	task := withRefs(newTask("t1", "web:1", api.TaskState_TASK_STATE_RUNNING))
	m.send("w1", &api.Assignments{Full: true, Tasks: []*api.Task{task},
		Secrets: []*api.Secret{secret1, secret2}, Configs: []*api.Config{config1}})
	r.run(2 * time.Second)
	spec, ok := rec.specs["t1"]
	if !ok {
		t.Fatal("t1 never prepared")
	}
	want := map[string]string{
		"/run/secrets/db-password": "hunter2",
		"/etc/tls/key.pem":         "-----BEGIN KEY",
		"/app.conf":                "x=1",
	}
	if len(spec.Files) != len(want) {
		t.Fatalf("files %v", spec.Files)
	}
	for p, data := range want {
		if string(spec.Files[p]) != data {
			t.Errorf("file %s: %q, want %q", p, spec.Files[p], data)
		}
	}
	if got := r.agent.Secrets(); !slices.Equal(got, []string{"s1", "s2"}) {
		t.Fatalf("holds %v", got)
	}
	m.send("w1", &api.Assignments{Removed: []string{"t1"}, RemovedSecrets: []string{"s1", "s2"}, RemovedConfigs: []string{"c1"}})
	r.run(time.Second)
	if got := r.agent.Secrets(); len(got) != 0 {
		t.Fatalf("still holds %v after they were withdrawn", got)
	}
	if got := r.agent.Configs(); len(got) != 0 {
		t.Fatalf("still holds configs %v", got)
	}
	// A whole set replaces what the agent holds.
	m.send("w1", &api.Assignments{Full: true, Secrets: []*api.Secret{secret1}})
	m.send("w1", &api.Assignments{Full: true})
	r.run(time.Second)
	if got := r.agent.Secrets(); len(got) != 0 {
		t.Fatalf("holds %v after a whole set without secrets", got)
	}
}

// A task whose secret never came is rejected, never started without it.
func TestTaskWithoutItsSecretIsRejected(t *testing.T) {
	r, m, rec := newFilesRig(t)
	defer r.k.Activate()()
	r.run(time.Second)
	task := withRefs(newTask("t1", "web:1", api.TaskState_TASK_STATE_RUNNING))
	m.send("w1", &api.Assignments{Full: true, Tasks: []*api.Task{task}, Secrets: []*api.Secret{secret1}, Configs: []*api.Config{config1}})
	r.run(2 * time.Second)
	if _, ok := rec.specs["t1"]; ok {
		t.Fatal("prepared without its secret")
	}
	if got := m.reports(); !slices.Contains(got, "t1:TASK_STATE_REJECTED") {
		t.Fatalf("reports %v", got)
	}
}
