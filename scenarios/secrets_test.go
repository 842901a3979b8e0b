package scenarios

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarmsim/swarmsim/engine/store"
	"github.com/swarmsim/swarmsim/sim/cluster"
)

// holdingsWorld checks, after every event of a run, that each node holds
// exactly the secrets and configs its assigned tasks reference (never one
// no task of its set uses), and remembers who ever held what.
type holdingsWorld struct {
	*SimWorld
	t    *testing.T
	ever map[string]map[string]bool // node -> secret or config ID -> held once
	bad  string
}

func (h *holdingsWorld) RunUntil(t time.Duration, stop func() bool) bool {
	return h.SimWorld.RunUntil(t, func() bool {
		h.check()
		return stop != nil && stop()
	})
}

func (h *holdingsWorld) check() {
	if h.bad != "" {
		return
	}
	for _, m := range h.c.Machines() {
		if m.Status != cluster.NodeUp || m.Engine == nil || m.Engine.Locked() || m.Engine.Agent() == nil {
			continue
		}
		a := m.Engine.Agent()
		var secrets, configs []string
		for _, t := range a.Assigned() {
			for _, r := range t.GetSpec().GetContainer().GetSecrets() {
				secrets = append(secrets, r.GetSecretId())
			}
			for _, r := range t.GetSpec().GetContainer().GetConfigs() {
				configs = append(configs, r.GetConfigId())
			}
		}
		for _, held := range [][2][]string{{a.Secrets(), secrets}, {a.Configs(), configs}} {
			for _, id := range held[0] {
				if !slices.Contains(held[1], id) {
					h.bad = fmt.Sprintf("at %s %s holds %s, which none of its tasks uses", FormatDuration(h.Now()), m.Name, id)
					return
				}
				if h.ever[m.Name] == nil {
					h.ever[m.Name] = map[string]bool{}
				}
				h.ever[m.Name][id] = true
			}
		}
	}
}

// Secrets and configs reach only the nodes that run tasks using them, and
// leave with the last such task.
func TestSecretsReachOnlyTheirWorkers(t *testing.T) {
	sc, err := ParseFile("secrets-reach-only-their-workers.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sw, err := NewSimWorld(sc, sc.Seed, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	h := &holdingsWorld{SimWorld: sw, t: t, ever: map[string]map[string]bool{}}
	var out strings.Builder
	res := NewRunner(sc, h, &out, time.Now).Run(sc.Seed)
	if !res.Passed {
		t.Fatalf("run failed: %s\n%s", res.Failure, out.String())
	}
	if h.bad != "" {
		t.Fatal(h.bad)
	}
	id := func(name string) string {
		if x := sw.check.shadow.SecretByName(name); x != nil {
			return x.GetId()
		}
		if x := sw.check.shadow.ConfigByName(name); x != nil {
			return x.GetId()
		}
		t.Fatalf("no secret or config %s", name)
		return ""
	}
	dbPassword, apiToken, appConf := id("db-password"), id("api-token"), id("app-conf")
	// Who held what: the web and cache nodes only, never a manager.
	holders := func(x string) []string {
		var out []string
		for _, m := range sw.c.Machines() {
			if h.ever[m.Name][x] {
				out = append(out, m.Name)
			}
		}
		return out
	}
	for _, name := range holders(dbPassword) {
		if !slices.Contains([]string{"w1", "w2", "w3"}, name) {
			t.Errorf("db-password reached %s, outside zone a", name)
		}
	}
	if n := len(holders(dbPassword)); n < 2 {
		t.Errorf("db-password reached %v; web ran on two nodes at least", holders(dbPassword))
	}
	for _, name := range holders(appConf) {
		if !slices.Contains([]string{"w4", "w5", "w6"}, name) {
			t.Errorf("app-conf reached %s, outside zone b", name)
		}
	}
	for _, name := range holders(apiToken) {
		if !slices.Contains([]string{"w1", "w2", "w3"}, name) {
			t.Errorf("api-token reached %s, outside zone a", name)
		}
	}
	// At the end web uses no secret: nobody holds one; cache's nodes hold
	// its config, and exactly the nodes that run cache.
	for _, m := range sw.c.Machines() {
		a := m.Engine.Agent()
		if s := a.Secrets(); len(s) > 0 {
			t.Errorf("%s still holds secrets %v", m.Name, s)
		}
		runsCache := false
		for _, task := range a.Assigned() {
			runsCache = runsCache || task.GetSpec().GetContainer().GetImage() == "cache:1"
		}
		if got := slices.Contains(a.Configs(), appConf); got != runsCache {
			t.Errorf("%s holds app-conf: %v, runs cache: %v", m.Name, got, runsCache)
		}
	}
}

// No secret value, and no unlock key, ever appears in a run's trace
// (--trace) or its nodes' logs (--log).
func TestSecretValuesNeverInTraceOrLogs(t *testing.T) {
	for _, file := range []string{"secrets-reach-only-their-workers.yaml", "autolock-restart-all-managers.yaml"} {
		t.Run(strings.TrimSuffix(file, ".yaml"), func(t *testing.T) {
			sc, err := ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var trace, logs bytes.Buffer
			w, err := newSimWorld(sc, sc.Seed, Options{Trace: &trace, Log: &logs})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			// Every unlock key the cluster had, as it changed.
			keys := map[string]bool{}
			w.check.shadow.Watch(func([]store.Event) {
				for _, c := range w.check.shadow.Clusters() {
					if k := string(c.GetUnlockKey()); k != "" {
						keys[k] = true
					}
				}
			})
			res := NewRunner(sc, w, nil, time.Now).Run(sc.Seed)
			if !res.Passed {
				t.Fatalf("run failed: %s", res.Failure)
			}
			var values []string
			for _, s := range sc.Secrets {
				values = append(values, s.Data)
			}
			for _, st := range sc.Steps {
				if s, ok := st.Action.(Secret); ok {
					values = append(values, s.Data)
				}
			}
			for k := range keys {
				values = append(values, k)
			}
			if len(values) == 0 || trace.Len() == 0 || logs.Len() == 0 {
				t.Fatalf("nothing to check: %d values, %d bytes of trace, %d of logs", len(values), trace.Len(), logs.Len())
			}
			for _, v := range values {
				if bytes.Contains(trace.Bytes(), []byte(v)) {
					t.Errorf("the trace shows a secret value or unlock key")
				}
				if bytes.Contains(logs.Bytes(), []byte(v)) {
					t.Errorf("the logs show a secret value or unlock key")
				}
			}
			if !bytes.Contains(trace.Bytes(), []byte(" secrets +")) {
				t.Error("the trace never shows a secret being sent: the check looked at nothing")
			}
		})
	}
}
