package dispatcher_test

import (
	"slices"
	"testing"
	"time"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/store"
)

func (c *cluster) createSecretAndConfig() {
	c.update(func(tx *store.Tx) error {
		if err := tx.Create(&api.Secret{Id: "sec1", Spec: &api.SecretSpec{Name: "db-password", Data: []byte("hunter2")}}); err != nil {
			return err
		}
		if err := tx.Create(&api.Secret{Id: "sec2", Spec: &api.SecretSpec{Name: "api-key", Data: []byte("k")}}); err != nil {
			return err
		}
		return tx.Create(&api.Config{Id: "cfg1", Spec: &api.ConfigSpec{Name: "app.conf", Data: []byte("x=1")}})
	})
}

func usesRefs(secrets []string, configs ...string) func(*api.Task) {
	return func(t *api.Task) {
		for _, id := range secrets {
			t.Spec.Container.Secrets = append(t.Spec.Container.Secrets, &api.SecretReference{SecretId: id, SecretName: id, Target: id})
		}
		for _, id := range configs {
			t.Spec.Container.Configs = append(t.Spec.Container.Configs, &api.ConfigReference{ConfigId: id, ConfigName: id, Target: "/" + id})
		}
	}
}

// refLog is, per message a node received, what it said about secrets and
// configs: "+sec1", "-sec1", "+cfg1"...
func (c *cluster) refLog(id env.NodeID) [][]string {
	var out [][]string
	for _, m := range c.received[id] {
		var l []string
		if m.Full {
			l = append(l, "full")
		}
		for _, x := range m.Secrets {
			l = append(l, "+"+x.Id)
		}
		for _, x := range m.RemovedSecrets {
			l = append(l, "-"+x)
		}
		for _, x := range m.Configs {
			l = append(l, "+"+x.Id)
		}
		for _, x := range m.RemovedConfigs {
			l = append(l, "-"+x)
		}
		if len(l) > 0 {
			out = append(out, l)
		}
	}
	return out
}

// A node gets a secret or config with the first task that uses it, only
// once however many of its tasks use it, and is told to forget it when
// the last of them leaves its set; a node none of whose tasks use it
// never gets it.
func TestSecretsFollowTheTasksThatUseThem(t *testing.T) {
	c := newCluster(t, clusterOpts{seed: 21, workers: 3, record: true})
	defer c.k.Activate()()
	c.createSecretAndConfig()
	c.run(time.Second)
	w1, w2, w3 := c.workers[0], c.workers[1], c.workers[2]
	a := c.assign(w1.id, "web:1", 2, usesRefs([]string{"sec1"}, "cfg1"))
	c.assign(w2.id, "web:1", 2)
	c.run(5 * time.Second)
	b := c.assign(w1.id, "web:1", 1, usesRefs([]string{"sec1", "sec2"}))
	c.run(5 * time.Second)
	c.setDesired(api.TaskState_TASK_STATE_SHUTDOWN, a[0])
	c.run(5 * time.Second)
	c.setDesired(api.TaskState_TASK_STATE_SHUTDOWN, b[0])
	c.run(5 * time.Second)
	c.setDesired(api.TaskState_TASK_STATE_SHUTDOWN, a[1])
	c.run(5 * time.Second)

	want := [][]string{
		{"full"},
		{"+sec1", "+cfg1"}, // the first two tasks
		{"+sec2"},          // b[0] adds only what is new
		{"-sec2"},          // b[0] gone; a[1] still uses sec1
		{"-sec1", "-cfg1"}, // the last user gone
	}
	if got := c.refLog(w1.id); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("w1 heard %v, want %v", got, want)
	}
	for _, w := range []*worker{w2, w3} {
		if got := c.refLog(w.id); !slices.EqualFunc(got, [][]string{{"full"}}, slices.Equal) {
			t.Errorf("%s heard %v; it runs no task using a secret", w.id, got)
		}
	}
	if got := w1.agent.Secrets(); len(got) != 0 {
		t.Errorf("w1 still holds %v", got)
	}
	st := c.disp["m1"].Stats()
	if st.SecretsSent != 2 || st.SecretsWithdrawn != 2 || st.ConfigsSent != 1 || st.ConfigsWithdrawn != 1 {
		t.Errorf("stats %+v", st)
	}
}

// A whole set (a new session, a resync) carries every secret its tasks
// use, and the agent holds exactly those.
func TestFullSetCarriesSecrets(t *testing.T) {
	c := newCluster(t, clusterOpts{seed: 22, workers: 1, record: true})
	defer c.k.Activate()()
	c.createSecretAndConfig()
	w := c.workers[0]
	ids := c.assign(w.id, "web:1", 1, usesRefs([]string{"sec2", "sec1"}, "cfg1"))
	if !c.runUntil(10*time.Second, func() bool { return c.allInState(api.TaskState_TASK_STATE_RUNNING, ids) }) {
		t.Fatal("task not running")
	}
	// The agent restarts (the machine and its containers stay up): its new
	// session starts with the whole set.
	w.agent.Stop()
	c.run(time.Second)
	c.startAgent(w)
	c.run(5 * time.Second)
	msgs := c.received[w.id]
	last := msgs[len(msgs)-1]
	for _, m := range msgs {
		if m.Full && len(m.Tasks) > 0 {
			last = m
		}
	}
	if !last.Full || len(last.Secrets) != 2 || last.Secrets[0].Id != "sec1" || last.Secrets[1].Id != "sec2" || len(last.Configs) != 1 {
		t.Fatalf("whole set after the restart: full=%v secrets=%d configs=%d", last.Full, len(last.Secrets), len(last.Configs))
	}
	if string(last.Secrets[0].GetSpec().GetData()) != "hunter2" {
		t.Fatal("the secret went without its data")
	}
	if got := w.agent.Secrets(); !slices.Equal(got, []string{"sec1", "sec2"}) {
		t.Fatalf("agent holds %v; heard %v", got, c.refLog(w.id))
	}
	if got := w.agent.Configs(); !slices.Equal(got, []string{"cfg1"}) {
		t.Fatalf("agent holds configs %v", got)
	}
}

// A task replaced on another node takes its secret along: the old node is
// told to forget it, the new one gets it.
func TestSecretMovesWithItsTask(t *testing.T) {
	c := newCluster(t, clusterOpts{seed: 23, workers: 2, record: true})
	defer c.k.Activate()()
	c.createSecretAndConfig()
	w1, w2 := c.workers[0], c.workers[1]
	ids := c.assign(w1.id, "web:1", 1, usesRefs([]string{"sec1"}))
	c.run(5 * time.Second)
	if got := w1.agent.Secrets(); !slices.Equal(got, []string{"sec1"}) {
		t.Fatalf("w1 holds %v", got)
	}
	c.setDesired(api.TaskState_TASK_STATE_SHUTDOWN, ids...)
	c.assign(w2.id, "web:1", 1, usesRefs([]string{"sec1"}))
	c.run(5 * time.Second)
	if got := w1.agent.Secrets(); len(got) != 0 {
		t.Errorf("w1 still holds %v", got)
	}
	if got := w2.agent.Secrets(); !slices.Equal(got, []string{"sec1"}) {
		t.Errorf("w2 holds %v", got)
	}
}
