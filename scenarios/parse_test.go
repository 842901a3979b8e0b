package scenarios

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// docExamples returns every ```yaml block of the format page.
func docExamples(t testing.TB) [][]byte {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "docs", "scenario-format.md"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)```yaml\n(.*?)```")
	var out [][]byte
	for _, m := range re.FindAllSubmatch(doc, -1) {
		out = append(out, m[1])
	}
	if len(out) == 0 {
		t.Fatal("the format page has no yaml examples")
	}
	return out
}

// The format page is the contract: every example on it must parse.
func TestDocExamples(t *testing.T) {
	for i, ex := range docExamples(t) {
		name := "scenario-format.md#" + string(rune('1'+i))
		if _, err := Parse(name, ex); err != nil {
			t.Errorf("example %d does not parse:\n%v", i+1, err)
		}
	}
}

// The page's main example, read field by field.
func TestDocExampleContent(t *testing.T) {
	sc, err := Parse("doc.yaml", docExamples(t)[0])
	if err != nil {
		t.Fatal(err)
	}
	c := sc.Cluster
	if sc.Name != "leader-failover" || sc.Seed != 1 || sc.Duration != 5*time.Minute {
		t.Errorf("header: %q seed %d duration %v", sc.Name, sc.Seed, sc.Duration)
	}
	if c.Managers != 3 || c.WorkerCount() != 40 || c.Workers[1].Labels["zone"] != "b" {
		t.Errorf("cluster: %+v", c)
	}
	if c.Raft != (Raft{Tick: 100 * time.Millisecond, ElectionTicks: 10, HeartbeatTicks: 1, SnapshotEvery: 1000}) {
		t.Errorf("raft: %+v", c.Raft)
	}
	if c.Disk.Sync != (Range{time.Millisecond, 3 * time.Millisecond}) || c.CA.CertExpiry != 2160*time.Hour {
		t.Errorf("disk %v, ca %v", c.Disk.Sync, c.CA.CertExpiry)
	}
	if want := (LinkModel{Latency: Range{time.Millisecond, 5 * time.Millisecond}, Loss: 0.001, Reorder: true}); sc.Network != want {
		t.Errorf("network: %+v, want %+v", sc.Network, want)
	}
	ex := sc.Executor
	if ex.Start != (Range{500 * time.Millisecond, 2 * time.Second}) || !slices.Equal(ex.FailImages, []string{"web:broken"}) ||
		len(ex.Exits) != 1 || ex.Exits[0] != (Exit{Image: "batch:1", After: Range{10 * time.Second, 30 * time.Second}}) {
		t.Errorf("executor: %+v", ex)
	}
	if *sc.Clients != (Clients{Count: 3, Rate: Rate{50, time.Second}, Keys: 20}) {
		t.Errorf("clients: %+v", sc.Clients)
	}
	if len(sc.Secrets) != 1 || sc.Secrets[0] != (Secret{"db-password", "not-in-any-log"}) {
		t.Errorf("secrets: %+v", sc.Secrets)
	}
	web, job := sc.Services[0], sc.Services[1]
	if web.Resources != (Resources{NanoCPUs: 5e8, MemoryBytes: 256 << 20}) || web.MaxPerNode != 2 ||
		web.Update != (UpdatePolicy{Parallelism: 2, Delay: 10 * time.Second, FailureAction: FailureRollback, Monitor: 30 * time.Second, Order: StopFirst}) ||
		web.Restart != (RestartPolicy{Condition: RestartOnFailure, Delay: 5 * time.Second, MaxAttempts: 3}) ||
		*web.Health != (Health{Interval: 5 * time.Second, Timeout: 2 * time.Second, Retries: 3, StartPeriod: 10 * time.Second}) {
		t.Errorf("web: %+v", web)
	}
	if got := web.Constraints; len(got) != 2 || got[1] != (Constraint{"node.role", "!=", "manager"}) {
		t.Errorf("constraints: %+v", got)
	}
	if job.Mode != ReplicatedJob || job.Completions != 10 || job.MaxConcurrent != 3 {
		t.Errorf("nightly: %+v", job)
	}
	if !slices.Equal(sc.Check, AllInvariants()) {
		t.Errorf("check: %v", sc.Check)
	}
	var got []string
	for _, s := range sc.Steps {
		got = append(got, s.String())
	}
	want := []string{
		"crash leader",
		"expect leader=elected within 10s",
		"restart m1",
		"partition m1 | m2 m3 w*",
		"heal all",
		"scale web replicas=60",
		"update web image=web:2",
		"expect web running=60 image=web:2 within 2m",
		"drain w3",
		"expect w3 tasks=0 within 1m",
	}
	if !slices.Equal(got, want) {
		t.Errorf("steps:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if s := sc.Steps[7]; s.HasAt || s.Index != 7 || s.Line != 77 {
		t.Errorf("step 7: at %v/%v index %d line %d", s.At, s.HasAt, s.Index, s.Line)
	}
	if s := sc.Steps[0]; !s.HasAt || s.At != 30*time.Second || s.Line != 63 {
		t.Errorf("step 0: at %v/%v line %d", s.At, s.HasAt, s.Line)
	}
}

// TestEveryStep parses a file that uses every step kind and condition, and
// pins their descriptions.
func TestEveryStep(t *testing.T) {
	sc, err := ParseFile(filepath.Join("testdata", "every-step.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var got []string
	for _, s := range sc.Steps {
		seen[s.Action.Kind()] = true
		got = append(got, s.String())
	}
	for _, k := range stepKinds {
		if !seen[k] {
			t.Errorf("every-step.yaml does not use %s", k)
		}
	}
	want := []string{
		"crash leader",
		"restart all",
		"stop follower",
		"start m2",
		"partition m1 | m2 m3 w*",
		"isolate worker:random",
		"heal all",
		"link m1->w? latency=200ms loss=20% duplicate=0% reorder=false",
		"add_manager m4",
		"remove_manager m4",
		"add_worker w5 cpus=4 memory=8GiB zone=b",
		"add_worker big cpus=16 memory=8GiB zone=c",
		"remove_worker w5",
		"promote w1",
		"demote w1",
		"drain w2",
		"pause w3",
		"activate w*",
		"create api image=api:1",
		"remove api",
		"scale web replicas=6",
		"update web image=web:2 update.parallelism=2 resources.memory=512MiB",
		"rollback web",
		"fail_tasks web count=2",
		"clock_skew m3 by=-2s",
		"secret api-key",
		"config api-conf",
		"compromise w4",
		"rotate_join_token worker",
		"join_with_old_token intruder",
		"rotate_root_ca",
		"autolock off",
		"autolock on",
		"rotate_unlock_key",
		"unlock m1",
		"expect leader!=m1, managers=3, nodes_ready=5 within 1m",
		"expect leader=elected within 0s",
		"expect leader=m2 within 10s",
		"expect web running=6 image=web:2 on node.labels.zone==a within 2m",
		"expect batch completed=5 within 5m",
		"expect big tasks=1 within 1m",
		"expect converged, root_rotated within 5m",
		"expect locked m2 within 1m",
		"expect unlocked leader within 1m",
	}
	if !slices.Equal(got, want) {
		t.Errorf("steps:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if want := []Invariant{OneLeaderPerTerm, TaskOnOneNode}; !slices.Equal(sc.Check, want) {
		t.Errorf("check %v, want %v", sc.Check, want)
	}
	if sc.Configs[0] != (Config{"app-conf", "debug: false"}) {
		t.Errorf("configs: %+v", sc.Configs)
	}
	// The second group gives labels but not resources: they default.
	if g := sc.Cluster.Workers[1]; g.Resources != (Resources{DefaultNanoCPUs, DefaultMemoryBytes}) {
		t.Errorf("group 2: %+v", g)
	}
	link := sc.Steps[7].Action.(Link)
	if link.To != (Selector{Kind: SelectPattern, Name: "w?"}) {
		t.Errorf("link to: %+v", link.To)
	}
	create := sc.Steps[18].Action.(Create)
	if create.Service.Replicas != 2 || create.Service.Update.Monitor != DefaultUpdateMonitor {
		t.Errorf("create: %+v", create.Service)
	}
	if want := "every-step: 3 managers, 4 workers, 3 services, 44 steps, seed 7, up to 1h"; sc.Summary() != want {
		t.Errorf("summary %q, want %q", sc.Summary(), want)
	}
}

// TestDefaults checks what a minimal file gets, and that each default is
// listed for the run's summary.
func TestDefaults(t *testing.T) {
	sc, err := Parse("min.yaml", []byte("name: min\nservices: [{name: web, image: web:1}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Scenario{
		File: "min.yaml", Name: "min", Seed: 1, Duration: 10 * time.Minute,
		Cluster: Cluster{
			Managers:    1,
			Raft:        Raft{Tick: time.Second, ElectionTicks: 10, HeartbeatTicks: 1, SnapshotEvery: 10000},
			Dispatcher:  Dispatcher{Heartbeat: 5 * time.Second, DownAfter: 3},
			Disk:        Disk{Sync: Fixed(time.Millisecond)},
			CA:          CA{CertExpiry: 2160 * time.Hour},
			TaskHistory: 5,
		},
		Network:  LinkModel{Latency: Fixed(time.Millisecond)},
		Executor: Executor{Start: Fixed(time.Second)},
	}
	if sc.Cluster.Raft != want.Cluster.Raft || sc.Cluster.Dispatcher != want.Cluster.Dispatcher ||
		sc.Cluster.Disk != want.Cluster.Disk || sc.Cluster.CA != want.Cluster.CA ||
		sc.Cluster.Managers != 1 || sc.Cluster.TaskHistory != 5 || sc.Seed != 1 || sc.Duration != want.Duration ||
		sc.Network != want.Network || sc.Executor.Start != want.Executor.Start || sc.Clients != nil {
		t.Errorf("got %+v", sc)
	}
	web := sc.Services[0]
	pol := UpdatePolicy{Parallelism: 1, FailureAction: FailurePause, Monitor: 5 * time.Second, Order: StopFirst}
	if web.Mode != Replicated || web.Replicas != 1 || web.Update != pol || web.Rollback != pol ||
		web.Restart != (RestartPolicy{Condition: RestartAny, Delay: 5 * time.Second}) || web.Health != nil {
		t.Errorf("web: %+v", web)
	}
	wantDefaults := []string{
		"seed=1",
		"duration=10m",
		"cluster.managers=1",
		"cluster.raft.tick=1s",
		"cluster.raft.election_ticks=10",
		"cluster.raft.heartbeat_ticks=1",
		"cluster.raft.snapshot_every=10000",
		"cluster.dispatcher.heartbeat=5s",
		"cluster.dispatcher.down_after=3",
		"cluster.disk.sync=1ms",
		"cluster.ca.cert_expiry=2160h",
		"cluster.task_history=5",
		"network.latency=1ms",
		"network.loss=0%",
		"network.duplicate=0%",
		"network.reorder=false",
		"executor.start=1s",
		"executor.fail=0%",
		"check=all",
		"services.mode=replicated (web)",
		"services.replicas=1 (web)",
		"services.restart.condition=any (web)",
		"services.restart.delay=5s (web)",
		"services.update.parallelism=1 (web)",
		"services.update.delay=0s (web)",
		"services.update.failure_action=pause (web)",
		"services.update.monitor=5s (web)",
		"services.update.order=stop-first (web)",
		"services.rollback.parallelism=1 (web)",
		"services.rollback.delay=0s (web)",
		"services.rollback.failure_action=pause (web)",
		"services.rollback.monitor=5s (web)",
		"services.rollback.order=stop-first (web)",
	}
	if !slices.Equal(sc.Defaults, wantDefaults) {
		t.Errorf("defaults:\n%s\nwant:\n%s", strings.Join(sc.Defaults, "\n"), strings.Join(wantDefaults, "\n"))
	}
	if !sc.Defaulted("network.latency") || sc.Defaulted("name") {
		t.Error("Defaulted")
	}
}

// TestParseGood covers inputs that must parse, each with a check.
func TestParseGood(t *testing.T) {
	const base = "name: t\ncluster: {managers: 3, workers: [{count: 4, labels: {zone: a}}]}\n" +
		"services:\n  - {name: web, image: web:1}\n  - {name: job, image: j:1, mode: replicated-job}\n"
	tests := []struct {
		name, in string
		check    func(t *testing.T, sc *Scenario)
	}{
		{"bare worker count", "name: t\ncluster: {workers: 3}\n", func(t *testing.T, sc *Scenario) {
			if sc.Cluster.WorkerCount() != 3 || sc.Cluster.Workers[0].Resources.MemoryBytes != 8<<30 {
				t.Errorf("%+v", sc.Cluster.Workers)
			}
		}},
		{"byte units", "name: t\ncluster: {workers: [{count: 1, resources: {cpus: 0.25, memory: 1.5GB}}]}\n", func(t *testing.T, sc *Scenario) {
			if r := sc.Cluster.Workers[0].Resources; r != (Resources{25e7, 15e8}) {
				t.Errorf("%+v", r)
			}
		}},
		{"plain byte count", "name: t\nservices: [{name: a, image: i, resources: {memory: 1048576}}]\n", func(t *testing.T, sc *Scenario) {
			if sc.Services[0].Resources.MemoryBytes != 1<<20 {
				t.Errorf("%+v", sc.Services[0].Resources)
			}
		}},
		{"KiB and KB", "name: t\nservices: [{name: a, image: i, resources: {memory: 2KiB}}, {name: b, image: i, resources: {memory: 2KB}}]\n", func(t *testing.T, sc *Scenario) {
			if sc.Services[0].Resources.MemoryBytes != 2048 || sc.Services[1].Resources.MemoryBytes != 2000 {
				t.Errorf("%+v", sc.Services)
			}
		}},
		{"percent as fraction", "name: t\nnetwork: {loss: 0.1%, duplicate: 100%}\nexecutor: {fail: 0}\n", func(t *testing.T, sc *Scenario) {
			if sc.Network.Loss != 0.001 || sc.Network.Duplicate != 1 || sc.Executor.Fail != 0 {
				t.Errorf("%+v", sc.Network)
			}
		}},
		{"max failure ratio as number or percent", "name: t\nservices: [{name: a, image: i, update: {max_failure_ratio: 0.2}, rollback: {max_failure_ratio: 50%}}]\n", func(t *testing.T, sc *Scenario) {
			if sc.Services[0].Update.MaxFailureRatio != 0.2 || sc.Services[0].Rollback.MaxFailureRatio != 0.5 {
				t.Errorf("%+v", sc.Services[0])
			}
		}},
		{"rate with a count of units", "name: t\nclients: {rate: 5/100ms}\n", func(t *testing.T, sc *Scenario) {
			if sc.Clients.Rate != (Rate{5, 100 * time.Millisecond}) || sc.Clients.Rate.Interval() != 20*time.Millisecond ||
				sc.Clients.Count != 1 || sc.Clients.Keys != DefaultClientKeys {
				t.Errorf("%+v", sc.Clients)
			}
		}},
		{"job defaults", base, func(t *testing.T, sc *Scenario) {
			if j := sc.Services[1]; j.Completions != 1 || j.MaxConcurrent != 1 || j.Update != (UpdatePolicy{}) {
				t.Errorf("%+v", j)
			}
		}},
		{"health defaults when partly given", "name: t\nservices: [{name: a, image: i, health: {retries: 5}}]\n", func(t *testing.T, sc *Scenario) {
			if h := *sc.Services[0].Health; h != (Health{Interval: 30 * time.Second, Timeout: 30 * time.Second, Retries: 5}) {
				t.Errorf("%+v", h)
			}
		}},
		{"spread as list, constraints with spaces", "name: t\nservices: [{name: a, image: i, spread: [node.labels.zone, engine.labels.rack], constraints: ['node.hostname != w1']}]\n", func(t *testing.T, sc *Scenario) {
			s := sc.Services[0]
			if len(s.Spread) != 2 || s.Constraints[0] != (Constraint{"node.hostname", "!=", "w1"}) {
				t.Errorf("%+v", s)
			}
		}},
		{"node added then used", base + "steps:\n  - add_manager: m4\n  - crash: m4\n  - expect: {leader: not m4, within: 1s}\n", nil},
		{"removed node added again", base + "steps:\n  - remove_worker: w2\n  - add_worker: w2\n", nil},
		{"removed service created again", base + "steps:\n  - remove: web\n  - create: {name: web, image: web:2, mode: global}\n", nil},
		{"created service updated", base + "steps:\n  - create: {name: api, image: a:1}\n  - update: {service: api, replicas: 3, constraints: []}\n", func(t *testing.T, sc *Scenario) {
			u := sc.Steps[1].Action.(Update)
			if !slices.Equal(u.Set, []string{"replicas", "constraints"}) || u.Spec.Replicas != 3 {
				t.Errorf("%+v", u)
			}
		}},
		{"secret created by a step, used by a later create", base + "steps:\n  - secret: {name: s, data: x}\n  - create: {name: api, image: a:1, secrets: [s]}\n", nil},
		{"job update of image", base + "steps:\n  - update: {service: job, image: j:2, completions: 4}\n", nil},
		{"at equal to duration", "name: t\nduration: 1m\nsteps:\n  - {at: 1m, crash: m1}\n", nil},
		{"partition group as one name", base + "steps:\n  - partition: [m1, [m2, m3]]\n", func(t *testing.T, sc *Scenario) {
			p := sc.Steps[0].Action.(Partition)
			if len(p.Groups) != 2 || len(p.Groups[0]) != 1 || p.Groups[0][0].Name != "m1" {
				t.Errorf("%+v", p)
			}
		}},
		{"link keeps the network's model for keys it leaves out", "name: t\nnetwork: {latency: 2ms, reorder: true}\nsteps:\n  - link: {from: m1, to: all, loss: 5%}\n", func(t *testing.T, sc *Scenario) {
			l := sc.Steps[0].Action.(Link)
			if l.Model != (LinkModel{Latency: Fixed(2 * time.Millisecond), Loss: 0.05, Reorder: true}) {
				t.Errorf("%+v", l.Model)
			}
		}},
		{"merge keys and anchors", "name: t\nservices:\n  - &web {name: web, image: web:1, replicas: 3}\n  - <<: *web\n    name: web2\n", func(t *testing.T, sc *Scenario) {
			if s := sc.Services[1]; s.Name != "web2" || s.Replicas != 3 || s.Image != "web:1" {
				t.Errorf("%+v", s)
			}
		}},
		{"empty check list checks nothing", "name: t\ncheck: []\n", func(t *testing.T, sc *Scenario) {
			if sc.Check == nil || len(sc.Check) != 0 {
				t.Errorf("%v", sc.Check)
			}
		}},
		{"secrets keep file order", "name: t\nsecrets: {zz: a, aa: b, mm: c}\n", func(t *testing.T, sc *Scenario) {
			if sc.Secrets[0].Name != "zz" || sc.Secrets[2].Name != "mm" {
				t.Errorf("%v", sc.Secrets)
			}
		}},
		{"numbers as label values", "name: t\ncluster: {workers: [{count: 1, labels: {rack: 12}}]}\n", func(t *testing.T, sc *Scenario) {
			if sc.Cluster.Workers[0].Labels["rack"] != "12" {
				t.Errorf("%v", sc.Cluster.Workers[0].Labels)
			}
		}},
		{"autolock on in the cluster", "name: t\ncluster: {autolock: on}\nsteps:\n  - rotate_unlock_key: true\n", func(t *testing.T, sc *Scenario) {
			if !sc.Cluster.Autolock {
				t.Error("autolock off")
			}
		}},
		{"huge seed", "name: t\nseed: 18446744073709551615\n", func(t *testing.T, sc *Scenario) {
			if sc.Seed != 1<<64-1 {
				t.Errorf("%d", sc.Seed)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc, err := Parse("t.yaml", []byte(tt.in))
			if err != nil {
				t.Fatalf("%v\ninput:\n%s", err, tt.in)
			}
			if tt.check != nil {
				tt.check(t, sc)
			}
		})
	}
}

// TestParseErrors checks the first error of each bad input, down to its
// file, line and key path.
func TestParseErrors(t *testing.T) {
	const base = "name: t\ncluster: {managers: 3, workers: [{count: 4}]}\n" + // lines 1-2
		"services:\n  - {name: web, image: web:1}\n  - {name: job, image: j:1, mode: replicated-job}\n" + // 3-5
		"steps:\n" // 6
	tests := []struct{ in, want string }{
		// The document.
		{"", `t.yaml: file is empty`},
		{"- a\n", `t.yaml:1: want a mapping, got a list`},
		{"name: x\n---\nname: y\n", `t.yaml:2: a second YAML document`},
		{"name: x\n  bad: indent\n", `t.yaml:2: YAML: mapping values are not allowed in this context`},
		{"name: x\nb: {x: 1\n", `t.yaml:2: YAML: did not find expected ',' or '}'`},
		{"name: x\nb: 2\n- c\n", `t.yaml:3: YAML: did not find expected key`},
		{"name: [x,\n", `t.yaml:2: YAML: did not find expected node content`},
		{"name: x\nb: 2\n\tc: 3\n", `t.yaml:2: YAML: found a tab character that violates indentation`},
		{"name: x\nb: *nope\n", `t.yaml: YAML: unknown anchor 'nope' referenced`},
		{"name: x\nnmae: y\n", `t.yaml:2: nmae: unknown key (did you mean name?)`},
		{"name: x\nname: y\n", `t.yaml:2: name: repeated key (first at line 1)`},
		{"about: x\n", `t.yaml:1: missing key name`},
		{"name: -Bad\n", `t.yaml:1: name: bad scenario name "-Bad"`},
		{"name: x\nseed: -1\n", `t.yaml:2: seed: seed -1 is negative`},
		{"name: x\nseed: 1.5\n", `t.yaml:2: seed: want an integer, got the number 1.5`},
		{"name: x\nduration: 5\n", `t.yaml:2: duration: duration "5" needs a unit`},
		{"name: x\nduration: 0s\n", `t.yaml:2: duration: duration must be above zero`},
		{"name: x\nduration:\n", `t.yaml:2: duration: no value`},
		{"name: x\nabout: [a]\n", `t.yaml:2: about: want a string, got a list`},
		{"name: x\nabout: true\n", `t.yaml:2: about: want a string, got the boolean true`},
		// Cluster.
		{"name: x\ncluster: {managers: 0}\n", `t.yaml:2: cluster.managers: 0 is below the minimum, 1`},
		{"name: x\ncluster: {workers: [{count: 1, colour: red}]}\n", `t.yaml:2: cluster.workers[0].colour: unknown key`},
		{"name: x\ncluster:\n  workers:\n    - count: 1\n    - resources: {cpus: 1}\n", `t.yaml:5: cluster.workers[1]: missing key count`},
		{"name: x\ncluster: {workers: [{count: 1, resources: {cpus: 0}}]}\n", `t.yaml:2: cluster.workers[0].resources.cpus: cpus 0 is out of range (above 0 to 1048576)`},
		{"name: x\ncluster: {workers: [{count: 1, resources: {memory: 1.5B}}]}\n", `t.yaml:2: cluster.workers[0].resources.memory: size "1.5B" is not a whole number of bytes`},
		{"name: x\ncluster: {workers: [{count: 1, resources: {memory: 8gb}}]}\n", `t.yaml:2: cluster.workers[0].resources.memory: bad size "8gb"`},
		{"name: x\ncluster: {workers: [{count: 1, labels: {zone: [a]}}]}\n", `t.yaml:2: cluster.workers[0].labels.zone: want a string, got a list`},
		{"name: x\ncluster: {workers: {count: 1}}\n", `t.yaml:2: cluster.workers: want a list of worker groups, or a count, got a mapping`},
		{"name: x\ncluster: {workers: [{count: 100001}]}\n", `t.yaml:2: cluster.workers[0].count: 100001 is above the maximum, 100000`},
		{"name: x\ncluster: {raft: {election_ticks: 3, heartbeat_ticks: 3}}\n", `t.yaml:2: cluster.raft.election_ticks: 3 must be above heartbeat_ticks (3)`},
		{"name: x\ncluster: {raft: {tick: 0s}}\n", `t.yaml:2: cluster.raft.tick: duration must be above zero`},
		{"name: x\ncluster: {disk: {sync: 1ms..x}}\n", `t.yaml:2: cluster.disk.sync: range "1ms..x": bad duration "x"`},
		{"name: x\ncluster: {autolock: yes}\n", `t.yaml:2: cluster.autolock: want on, off, true or false, got "yes"`},
		{"name: x\ncluster: {ca: {cert_expiry: 90d}}\n", `t.yaml:2: cluster.ca.cert_expiry: bad duration "90d"`},
		// Network, executor, clients.
		{"name: x\nnetwork: {loss: 5}\n", `t.yaml:2: network.loss: write a percentage with %, like 5%`},
		{"name: x\nnetwork: {loss: -1%}\n", `t.yaml:2: network.loss: bad percentage "-1%"`},
		{"name: x\nnetwork: {duplicate: 100.5%}\n", `t.yaml:2: network.duplicate: percentage 100.5% is out of range`},
		{"name: x\nnetwork: {latency: -1ms}\n", `t.yaml:2: network.latency: duration -1ms is negative`},
		{"name: x\nnetwork: {latency: 5ms..1ms}\n", `t.yaml:2: network.latency: range "5ms..1ms": minimum is above maximum`},
		{"name: x\nnetwork: {reorder: 1}\n", `t.yaml:2: network.reorder: want true or false, got the integer 1`},
		{"name: x\nexecutor: {exits: [{image: a}]}\n", `t.yaml:2: executor.exits[0]: missing key after`},
		{"name: x\nexecutor: {exits: [{image: a, after: 1s, code: 256}]}\n", `t.yaml:2: executor.exits[0].code: 256 is above the maximum, 255`},
		{"name: x\nexecutor: {fail_images: [a b]}\n", `t.yaml:2: executor.fail_images[0]: bad image "a b"`},
		{"name: x\nclients: {count: 2}\n", `t.yaml:2: clients: missing key rate`},
		{"name: x\nclients: {rate: 50}\n", `t.yaml:2: clients.rate: bad rate "50"`},
		{"name: x\nclients: {rate: 0/s}\n", `t.yaml:2: clients.rate: bad rate "0/s": want 1 to 1000000000 operations`},
		{"name: x\nclients: {rate: 5/0s}\n", `t.yaml:2: clients.rate: bad rate "5/0s": the time after / must be above zero`},
		{"name: x\nclients: {rate: 2/ns}\n", `t.yaml:2: clients.rate: bad rate "2/ns": more than one operation per nanosecond`},
		// Secrets and services.
		{"name: x\nsecrets: {Bad: x}\n", `t.yaml:2: secrets: bad secret name "Bad"`},
		{"name: x\nsecrets: [a]\n", `t.yaml:2: secrets: want a mapping of names to data, got a list`},
		{"name: x\nsecrets: {a: x, a: y}\n", `t.yaml:2: secrets.a: repeated secret`},
		{"name: x\nservices: [{image: a}]\n", `t.yaml:2: services[0]: missing key name`},
		{"name: x\nservices: [{name: a}]\n", `t.yaml:2: services[0]: missing key image`},
		{"name: x\nservices: [{name: a-, image: i}]\n", `t.yaml:2: services[0].name: service name "a-" must not start or end with -`},
		{"name: x\nservices: [{name: a, image: i}, {name: a, image: i}]\n", `t.yaml:2: services[1].name: a service "a" already exists`},
		{"name: x\nservices: [{name: a, image: i, mode: daemon}]\n", `t.yaml:2: services[0].mode: unknown mode "daemon" (want replicated, global, replicated-job, global-job)`},
		{"name: x\nservices: [{name: a, image: i, mode: global, replicas: 2}]\n", `t.yaml:2: services[0].replicas: is for replicated services; a is global`},
		{"name: x\nservices: [{name: a, image: i, completions: 2}]\n", `t.yaml:2: services[0].completions: is for replicated-job services; a is replicated`},
		{"name: x\nservices: [{name: a, image: i, mode: global, max_concurrent: 2}]\n", `t.yaml:2: services[0].max_concurrent: is for replicated-job services; a is global`},
		{"name: x\nservices: [{name: a, image: i, mode: global-job, max_per_node: 1}]\n", `t.yaml:2: services[0].max_per_node: is for replicated and replicated-job services; a is global-job`},
		{"name: x\nservices: [{name: a, image: i, mode: global-job, rollback: {}}]\n", `t.yaml:2: services[0].rollback: is for replicated and global services; a is global-job`},
		{"name: x\nservices: [{name: a, image: i, replicas: -1}]\n", `t.yaml:2: services[0].replicas: -1 is negative`},
		{"name: x\nservices: [{name: a, image: i, replicas: '3'}]\n", `t.yaml:2: services[0].replicas: want an integer, got "3"`},
		{"name: x\nservices: [{name: a, image: i, resources: {cpus: -1}}]\n", `t.yaml:2: services[0].resources.cpus: cpus -1 is out of range`},
		{"name: x\nservices: [{name: a, image: i, resources: {cpus: .nan}}]\n", `t.yaml:2: services[0].resources.cpus: want a finite number`},
		{"name: x\nservices: [{name: a, image: i, constraints: [node.labels.zone=a]}]\n", `t.yaml:2: services[0].constraints[0]: bad constraint "node.labels.zone=a": want KEY==VALUE or KEY!=VALUE`},
		{"name: x\nservices: [{name: a, image: i, constraints: [node.platform.os==linux]}]\n", `t.yaml:2: services[0].constraints[0]: bad constraint "node.platform.os==linux": unknown key "node.platform.os"`},
		{"name: x\nservices: [{name: a, image: i, constraints: [node.role==boss]}]\n", `t.yaml:2: services[0].constraints[0]: bad constraint "node.role==boss": node.role is manager or worker`},
		{"name: x\nservices: [{name: a, image: i, constraints: [node.labels.zone==]}]\n", `t.yaml:2: services[0].constraints[0]: bad constraint "node.labels.zone==": bad value ""`},
		{"name: x\nservices: [{name: a, image: i, spread: node.id}]\n", `t.yaml:2: services[0].spread: bad spread "node.id"`},
		{"name: x\nservices: [{name: a, image: i, secrets: [s]}]\n", `t.yaml:2: services[0].secrets[0]: unknown secret "s" (no secrets declared before this point)`},
		{"name: x\nconfigs: {c: x}\nservices: [{name: a, image: i, configs: [c, c]}]\n", `t.yaml:3: services[0].configs[1]: config "c" is listed twice`},
		{"name: x\nservices: [{name: a, image: i, update: {failure_action: explode}}]\n", `t.yaml:2: services[0].update.failure_action: unknown failure action "explode"`},
		{"name: x\nservices: [{name: a, image: i, rollback: {failure_action: rollback}}]\n", `t.yaml:2: services[0].rollback.failure_action: unknown failure action "rollback" (want pause, continue)`},
		{"name: x\nservices: [{name: a, image: i, update: {order: first}}]\n", `t.yaml:2: services[0].update.order: unknown order "first"`},
		{"name: x\nservices: [{name: a, image: i, update: {max_failure_ratio: 2}}]\n", `t.yaml:2: services[0].update.max_failure_ratio: 2 is out of range (0 to 1, or 0% to 100%)`},
		{"name: x\nservices: [{name: a, image: i, restart: {condition: always}}]\n", `t.yaml:2: services[0].restart.condition: unknown restart condition "always"`},
		{"name: x\nservices: [{name: a, image: i, health: {interval: 0s}}]\n", `t.yaml:2: services[0].health.interval: duration must be above zero`},
		{"name: x\nservices: [{name: a, image: i, health: {cmd: x}}]\n", `t.yaml:2: services[0].health.cmd: unknown key`},
		{"name: x\ncheck: [linearisable]\n", `t.yaml:2: check[0]: unknown invariant "linearisable" (did you mean linearizable?)`},
		{"name: x\ncheck: [linearizable, linearizable]\n", `t.yaml:2: check[1]: linearizable is listed twice`},
		// Steps.
		{base + "  - at: 1s\n", `t.yaml:7: steps[0]: no action`},
		{base + "  - crash: m1\n    restart: m1\n", `t.yaml:8: steps[0]: two actions, crash and restart`},
		{base + "  - crsh: m1\n", `t.yaml:7: steps[0].crsh: unknown key (did you mean crash?)`},
		{base + "  - crash\n", `t.yaml:7: steps[0]: want a mapping, got "crash"`},
		{base + "  - {at: 1s, crash: m9}\n", `t.yaml:7: steps[0].crash: unknown node "m9" (cluster has m1..m3, w1..w4)`},
		{base + "  - {at: -1s, crash: m1}\n", `t.yaml:7: steps[0].at: duration -1s is negative`},
		{base + "  - {at: 11m, crash: m1}\n", `t.yaml:7: steps[0].at: 11m is after the end of the run (duration 10m)`},
		{base + "  - crash: w0\n", `t.yaml:7: steps[0].crash: unknown node "w0"`},
		{base + "  - crash: w01\n", `t.yaml:7: steps[0].crash: unknown node "w01"`},
		{base + "  - crash: x*\n", `t.yaml:7: steps[0].crash: pattern "x*" matches no node (cluster has m1..m3, w1..w4)`},
		{base + "  - crash: W*\n", `t.yaml:7: steps[0].crash: bad pattern "W*"`},
		{base + "  - crash: worker:any\n", `t.yaml:7: steps[0].crash: unknown node selector "worker:any"`},
		{base + "  - crash: [m1]\n", `t.yaml:7: steps[0].crash: want a string, got a list`},
		{base + "  - unlock: all\n", `t.yaml:7: steps[0].unlock: all is not allowed here: name one node`},
		{base + "  - compromise: w*\n", `t.yaml:7: steps[0].compromise: pattern "w*" is not allowed here: name one node`},
		{base + "  - heal: m1\n", `t.yaml:7: steps[0].heal: heal takes all`},
		{base + "  - partition: [[m1]]\n", `t.yaml:7: steps[0].partition: a partition needs two groups or more`},
		{base + "  - partition: [[m1], []]\n", `t.yaml:7: steps[0].partition[1]: empty group`},
		{base + "  - partition: [[m1], [m*]]\n", `t.yaml:7: steps[0].partition[1][0]: m1 is in two groups`},
		{base + "  - partition: [[leader], [m2, leader]]\n", `t.yaml:7: steps[0].partition[1][1]: leader is in two groups`},
		{base + "  - partition: [[m1], [all]]\n", `t.yaml:7: steps[0].partition[1][0]: all is not allowed here`},
		{base + "  - partition: [[m1, w*, w*], [m2]]\n", `t.yaml:7: steps[0].partition[0][2]: w* is listed twice`},
		{base + "  - partition: [[m1, w2], [m2, w2]]\n", `t.yaml:7: steps[0].partition[1][1]: w2 is in two groups`},
		{base + "  - partition: [[w*], [m1, w3]]\n", `t.yaml:7: steps[0].partition[1][1]: w3 is in two groups`},
		{base + "  - link: {from: m1}\n", `t.yaml:7: steps[0].link: missing key to`},
		{base + "  - link: {from: m1, to: m2, jitter: 1ms}\n", `t.yaml:7: steps[0].link.jitter: unknown key`},
		{base + "  - add_manager: m2\n", `t.yaml:7: steps[0].add_manager: node "m2" is already in the cluster`},
		{base + "  - add_manager: leader\n", `t.yaml:7: steps[0].add_manager: "leader" is a selector, not a node name`},
		{base + "  - add_worker: {resources: {cpus: 1}}\n", `t.yaml:7: steps[0].add_worker: missing key name`},
		{base + "  - add_worker: {name: w9, labels: {zone: a}, resources: {memory: 0}}\n", `t.yaml:7: steps[0].add_worker.resources.memory: a node needs some memory`},
		{base + "  - join_with_old_token: w1\n", `t.yaml:7: steps[0].join_with_old_token: node "w1" is already in the cluster`},
		{base + "  - remove: api\n", `t.yaml:7: steps[0].remove: unknown service "api" (declared: job, web)`},
		{base + "  - rollback: job\n", `t.yaml:7: steps[0].rollback: job is a job (replicated-job): jobs have no rollback`},
		{base + "  - scale: {service: web}\n", `t.yaml:7: steps[0].scale: missing key replicas`},
		{base + "  - scale: {service: job, replicas: 3}\n", `t.yaml:7: steps[0].scale.replicas: only replicated services scale; job is replicated-job`},
		{base + "  - update: {service: web}\n", `t.yaml:7: steps[0].update: nothing to change`},
		{base + "  - update: {service: web, mode: global}\n", `t.yaml:7: steps[0].update.mode: a service's mode cannot change`},
		{base + "  - update: {service: web, name: web2}\n", `t.yaml:7: steps[0].update.name: a service's name cannot change`},
		{base + "  - update: {service: web, completions: 2}\n", `t.yaml:7: steps[0].update.completions: is for replicated-job services; web is replicated`},
		{base + "  - update: {service: web, secrets: [s]}\n", `t.yaml:7: steps[0].update.secrets[0]: unknown secret "s"`},
		{base + "  - update: {service: web, imag: web:2}\n", `t.yaml:7: steps[0].update.imag: unknown key (did you mean image?)`},
		{base + "  - create: {name: web, image: web:2}\n", `t.yaml:7: steps[0].create.name: a service "web" already exists`},
		{base + "  - create: {name: api, image: a, replicas: 2, completions: 1}\n", `t.yaml:7: steps[0].create.completions: is for replicated-job services; api is replicated`},
		{base + "  - fail_tasks: {service: web, count: 0}\n", `t.yaml:7: steps[0].fail_tasks.count: 0 is below the minimum, 1`},
		{base + "  - clock_skew: {node: m1, by: 2}\n", `t.yaml:7: steps[0].clock_skew.by: duration "2" needs a unit`},
		{base + "  - secret: {name: s}\n", `t.yaml:7: steps[0].secret: missing key data`},
		{base + "  - secret: {name: s, data: a}\n  - secret: {name: s, data: b}\n", `t.yaml:8: steps[1].secret.name: a secret "s" already exists`},
		{base + "  - rotate_join_token: admin\n", `t.yaml:7: steps[0].rotate_join_token: unknown role "admin" (want worker, manager)`},
		{base + "  - rotate_root_ca: false\n", `t.yaml:7: steps[0].rotate_root_ca: only true is meaningful here`},
		{base + "  - autolock: maybe\n", `t.yaml:7: steps[0].autolock: want on, off, true or false, got "maybe"`},
		{base + "  - rotate_unlock_key: true\n", `t.yaml:7: steps[0].rotate_unlock_key: autolock is off here`},
		{base + "  - autolock: on\n  - autolock: off\n  - rotate_unlock_key: true\n", `t.yaml:9: steps[2].rotate_unlock_key: autolock is off here`},
		// Expect.
		{base + "  - expect: {leader: elected}\n", `t.yaml:7: steps[0].expect: missing key within`},
		{base + "  - expect: {within: 1s}\n", `t.yaml:7: steps[0].expect: no condition`},
		{base + "  - expect: {leader: m9, within: 1s}\n", `t.yaml:7: steps[0].expect.leader: unknown node "m9"`},
		{base + "  - expect: {leader: not, within: 1s}\n", `t.yaml:7: steps[0].expect.leader: unknown node "not"`},
		{base + "  - expect: {leader: somebody else, within: 1s}\n", `t.yaml:7: steps[0].expect.leader: want elected, a node name or not NAME`},
		{base + "  - expect: {service: web, within: 1s}\n", `t.yaml:7: steps[0].expect.service: needs running or completed`},
		{base + "  - expect: {running: 3, within: 1s}\n", `t.yaml:7: steps[0].expect.running: needs service`},
		{base + "  - expect: {tasks: 3, within: 1s}\n", `t.yaml:7: steps[0].expect.tasks: needs node`},
		{base + "  - expect: {node: w1, within: 1s}\n", `t.yaml:7: steps[0].expect.node: needs tasks`},
		{base + "  - expect: {node: all, tasks: 0, within: 1s}\n", `t.yaml:7: steps[0].expect.node: all is not allowed here`},
		{base + "  - expect: {service: web, completed: 3, within: 1s}\n", `t.yaml:7: steps[0].expect.completed: web is replicated, not a job`},
		{base + "  - expect: {service: web, running: 3, on: zone, within: 1s}\n", `t.yaml:7: steps[0].expect.on: bad placement "zone"`},
		{base + "  - expect: {service: nope, running: 3, within: 1s}\n", `t.yaml:7: steps[0].expect.service: unknown service "nope"`},
		{base + "  - expect: {converged: false, within: 1s}\n", `t.yaml:7: steps[0].expect.converged: only true is meaningful here`},
		{base + "  - expect: {locked: m1, within: 1s}\n", `t.yaml:7: steps[0].expect.locked: autolock was never turned on`},
		{base + "  - expect: {managers: 3, within: -1s}\n", `t.yaml:7: steps[0].expect.within: duration -1s is negative`},
		{base + "  - expect: {managers: 3, within: 1s, sometime: soon}\n", `t.yaml:7: steps[0].expect.sometime: unknown key`},
	}
	for _, tt := range tests {
		_, err := Parse("t.yaml", []byte(tt.in))
		if err == nil {
			t.Errorf("no error; want %s\ninput:\n%s", tt.want, tt.in)
			continue
		}
		var errs *Errors
		if !errors.As(err, &errs) {
			t.Errorf("error is %T, not *Errors", err)
			continue
		}
		if first := errs.List[0].Error(); !strings.HasPrefix(first, tt.want) {
			t.Errorf("first error:\n  %s\nwant prefix:\n  %s\ninput:\n%s", first, tt.want, tt.in)
		}
	}
}

// TestBadFiles parses each file under testdata/bad; its first line says the
// error it must give: "# want: LINE: PATH: MESSAGE".
func TestBadFiles(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "bad", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad files: %v", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		first, _, _ := strings.Cut(string(data), "\n")
		want, ok := strings.CutPrefix(first, "# want: ")
		if !ok {
			t.Errorf("%s: first line must be # want: LINE: PATH: MESSAGE", f)
			continue
		}
		_, err = ParseFile(f)
		if err == nil {
			t.Errorf("%s: no error", f)
			continue
		}
		got, _, _ := strings.Cut(err.Error(), "\n")
		if got != f+":"+want {
			t.Errorf("got  %s\nwant %s", got, f+":"+want)
		}
	}
}

// Several independent mistakes are all reported, in line order, and
// mistakes in one place do not cascade into others.
func TestSeveralErrors(t *testing.T) {
	in := `name: x
steps:
  - crash: m9
  - scale: {service: web, replicas: 2}
network: {loss: 200%}
cluster: {managers: 2}
`
	_, err := Parse("x.yaml", []byte(in))
	want := `x.yaml:3: steps[0].crash: unknown node "m9" (cluster has m1..m2)
x.yaml:4: steps[1].scale.service: unknown service "web" (no services declared before this point)
x.yaml:5: network.loss: percentage 200% is out of range (0% to 100%)`
	if err == nil || err.Error() != want {
		t.Errorf("got:\n%v\nwant:\n%s", err, want)
	}

	// A broken cluster makes node names unknowable: no errors about them.
	in = "name: x\ncluster: {managers: many}\nsteps:\n  - crash: m5\n"
	_, err = Parse("x.yaml", []byte(in))
	if err == nil || strings.Count(err.Error(), "\n") != 0 || !strings.Contains(err.Error(), "cluster.managers") {
		t.Errorf("got:\n%v", err)
	}

	// A broken service still declares its name.
	in = "name: x\nservices: [{name: web, image: i, replicas: lots}]\nsteps:\n  - scale: {service: web, replicas: 2}\n"
	_, err = Parse("x.yaml", []byte(in))
	if err == nil || strings.Count(err.Error(), "\n") != 0 {
		t.Errorf("got:\n%v", err)
	}
}

func TestErrorsCapped(t *testing.T) {
	var b strings.Builder
	b.WriteString("name: x\nsteps:\n")
	for range MaxErrors + 5 {
		b.WriteString("  - crash: m9\n")
	}
	_, err := Parse("x.yaml", []byte(b.String()))
	var errs *Errors
	if !errors.As(err, &errs) || len(errs.List) != MaxErrors || errs.Omitted != 5 {
		t.Fatalf("got %v", err)
	}
	if !strings.HasSuffix(err.Error(), "\nx.yaml: and 5 more errors") {
		t.Errorf("got %v", err)
	}
	var one *Error
	if !errors.As(err, &one) || one.Line != 3 || one.Path != "steps[0].crash" {
		t.Errorf("errors.As: %+v", one)
	}
}

func TestParseFileMissing(t *testing.T) {
	_, err := ParseFile(filepath.Join("testdata", "no-such-file.yaml"))
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "no-such-file.yaml") {
		t.Errorf("got %v", err)
	}
}

// A file whose aliases expand into a huge tree stops at the node budget.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("name: x\nexecutor:\n  fail_images: &a0 [i, i, i, i, i, i, i, i]\n")
	prev := "a0"
	for i := 1; i < 8; i++ {
		name := "a" + string(rune('0'+i))
		b.WriteString("  unhealthy_images: &" + name + " [")
		for j := range 8 {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*" + prev)
		}
		b.WriteString("]\n")
		prev = name
	}
	_, err := Parse("bomb.yaml", []byte(b.String()))
	if err == nil {
		t.Fatal("no error")
	}
}

func TestSelectorResolve(t *testing.T) {
	cands := []Candidate{{"m1", true}, {"m2", true}, {"m3", true}, {"w1", false}, {"w2", false}, {"w10", false}}
	rnd := fixedChooser(1)
	tests := []struct {
		sel  Selector
		want []string
	}{
		{Selector{Kind: SelectNode, Name: "w2"}, []string{"w2"}},
		{Selector{Kind: SelectNode, Name: "w9"}, nil},
		{Selector{Kind: SelectPattern, Name: "w1*"}, []string{"w1", "w10"}},
		{Selector{Kind: SelectPattern, Name: "m?"}, []string{"m1", "m2", "m3"}},
		{Selector{Kind: SelectLeader}, []string{"m2"}},
		{Selector{Kind: SelectFollower}, []string{"m3"}}, // pool m1, m3; pick 1
		{Selector{Kind: SelectRandomWorker}, []string{"w2"}},
		{Selector{Kind: SelectAll}, []string{"m1", "m2", "m3", "w1", "w2", "w10"}},
	}
	for _, tt := range tests {
		if got := tt.sel.Resolve(cands, "m2", rnd); !slices.Equal(got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.sel, got, tt.want)
		}
	}
	if got := (Selector{Kind: SelectLeader}).Resolve(cands, "", rnd); got != nil {
		t.Errorf("leader with none elected: %v", got)
	}
	// No choice to make: no draw.
	if got := (Selector{Kind: SelectRandomWorker}).Resolve(cands[:4], "m1", panicChooser{}); !slices.Equal(got, []string{"w1"}) {
		t.Errorf("one worker: %v", got)
	}
}

type fixedChooser int64

func (c fixedChooser) Int63n(n int64) int64 { return int64(c) % n }

type panicChooser struct{}

func (panicChooser) Int63n(int64) int64 { panic("drew without a choice") }

func TestUpdateApply(t *testing.T) {
	in := "name: x\nservices: [{name: web, image: web:1, replicas: 3, constraints: [node.role==worker], update: {parallelism: 4}}]\n" +
		"steps:\n  - update: {service: web, image: web:2, update: {delay: 5s}, health: {retries: 7}, constraints: []}\n"
	sc, err := Parse("x.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	s := sc.Services[0]
	sc.Steps[0].Action.(Update).Apply(&s)
	if s.Image != "web:2" || s.Replicas != 3 || s.Update.Parallelism != 4 || s.Update.Delay != 5*time.Second ||
		len(s.Constraints) != 0 || s.Health == nil || s.Health.Retries != 7 || s.Health.Interval != DefaultHealthInterval {
		t.Errorf("after apply: %+v health %+v", s, s.Health)
	}
	if sc.Services[0].Image != "web:1" {
		t.Error("Apply changed the parsed service")
	}
}

func TestFormat(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{FormatDuration(2 * time.Minute), "2m"},
		{FormatDuration(90 * time.Minute), "1h30m"},
		{FormatDuration(2160 * time.Hour), "2160h"},
		{FormatDuration(1500 * time.Millisecond), "1.5s"},
		{FormatDuration(0), "0s"},
		{FormatBytes(8 << 30), "8GiB"},
		{FormatBytes(1536), "1536B"},
		{FormatBytes(3 << 20), "3MiB"},
		{FormatPercent(0.001), "0.1%"},
		{FormatPercent(0.2), "20%"},
		{Range{time.Millisecond, 5 * time.Millisecond}.String(), "1ms..5ms"},
		{Rate{50, time.Second}.String(), "50/s"},
		{Rate{3, 100 * time.Millisecond}.String(), "3/100ms"},
		{Resources{5e8, 256 << 20}.String(), "cpus=0.5 memory=256MiB"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestInitialNodes(t *testing.T) {
	sc, err := Parse("x.yaml", []byte("name: x\ncluster: {managers: 2, workers: [{count: 1, labels: {zone: a}}, {count: 2, resources: {cpus: 1}}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	nodes := sc.Cluster.InitialNodes()
	var names []string
	for _, n := range nodes {
		names = append(names, n.Name)
	}
	if !slices.Equal(names, []string{"m1", "m2", "w1", "w2", "w3"}) || !nodes[0].Manager || nodes[2].Manager ||
		nodes[2].Labels["zone"] != "a" || nodes[3].Resources.NanoCPUs != 1e9 {
		t.Errorf("%+v", nodes)
	}
}

// Patterns over a large cluster are charged to a work budget: a file of
// many patterns that match nothing ends in one clear error, not a long wait.
func TestPatternWorkBudget(t *testing.T) {
	var b strings.Builder
	b.WriteString("name: x\ncluster: {managers: 1000, workers: 100000}\nsteps:\n")
	for i := range 100 {
		b.WriteString("  - crash: \"z" + strings.Repeat("?", i%40) + "*\"\n")
		b.WriteString("  - crash: \"y" + strings.Repeat("?", i%40) + "*\"\n")
	}
	_, err := Parse("x.yaml", []byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "x.yaml: too much work matching node patterns") {
		t.Fatalf("got %v", err)
	}
}

func BenchmarkParseDocExample(b *testing.B) {
	ex := docExamples(b)[0]
	b.ReportAllocs()
	b.SetBytes(int64(len(ex)))
	for b.Loop() {
		if _, err := Parse("doc.yaml", ex); err != nil {
			b.Fatal(err)
		}
	}
}
