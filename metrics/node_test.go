package metrics

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmsim/swarmsim/engine/agent"
	"github.com/swarmsim/swarmsim/engine/allocator"
	"github.com/swarmsim/swarmsim/engine/dispatcher"
	"github.com/swarmsim/swarmsim/engine/orchestrator"
	"github.com/swarmsim/swarmsim/engine/raft"
	"github.com/swarmsim/swarmsim/engine/scheduler"
	"github.com/swarmsim/swarmsim/engine/store"
)

func threeNodes() prometheus.Collector {
	return NewNodesCollector(func() []NodeSource {
		return []NodeSource{
			{"m1", fixed(managerSnapshot())},
			{"w1", fixed(workerSnapshot())},
			{"w2", fixed(Snapshot{})}, // down
		}
	})
}

func TestNodeCollectorExportsStats(t *testing.T) {
	got := flatten(gather(t, threeNodes()))
	expectValues(t, got, map[string]float64{
		`swarm_node_up{node="m1"}`: 1,
		`swarm_node_up{node="w1"}`: 1,
		`swarm_node_up{node="w2"}`: 0,

		`swarm_raft_proposals_total{node="m1"}`:                         101,
		`swarm_raft_proposals_failed_total{node="m1"}`:                  3,
		`swarm_raft_entries_applied_total{node="m1"}`:                   140,
		`swarm_raft_commit_index{node="m1"}`:                            155,
		`swarm_raft_applied_index{node="m1"}`:                           150,
		`swarm_raft_apply_lag_entries{node="m1"}`:                       5,
		`swarm_raft_leader_changes_total{node="m1"}`:                    2,
		`swarm_raft_leader{node="m1"}`:                                  1,
		`swarm_raft_term{node="m1"}`:                                    4,
		`swarm_raft_voters{node="m1"}`:                                  3,
		`swarm_raft_learners{node="m1"}`:                                1,
		`swarm_raft_snapshots_taken_bytes_total{node="m1"}`:             4096,
		`swarm_raft_snapshots_sent_total{node="m1"}`:                    2,
		`swarm_raft_messages_sent_total{node="m1",type="MsgApp"}`:       20,
		`swarm_raft_messages_received_total{node="m1",type="MsgApp"}`:   5,
		`swarm_raft_messages_sent_total{node="m1",type="MsgHeartbeat"}`: 10,
		`swarm_raft_messages_dropped_total{node="m1"}`:                  1,

		`swarm_store_objects{kind="node",node="m1"}`:    10,
		`swarm_store_objects{kind="task",node="m1"}`:    30,
		`swarm_store_objects{kind="kv",node="m1"}`:      80,
		`swarm_store_proposal_actions_count{node="m1"}`: 90,
		`swarm_store_proposal_actions_sum{node="m1"}`:   270,
		`swarm_store_conflicts_total{node="m1"}`:        2,

		`swarm_scheduler_decisions_total{node="m1",result="placed"}`:   42,
		`swarm_scheduler_decisions_total{node="m1",result="unplaced"}`: 8,
		`swarm_scheduler_pending_tasks{node="m1",wait="turn"}`:         5,
		`swarm_scheduler_pending_tasks{node="m1",wait="capacity"}`:     3,
		`swarm_scheduler_assignments_total{node="m1"}`:                 40,
		// 0.5ms, 3ms, 2s and 2h: the 1ms, 5ms and 2.5s buckets, and
		// overflow, which only +Inf counts.
		`swarm_scheduler_decision_latency_seconds_bucket{le="0.001",node="m1"}`: 1,
		`swarm_scheduler_decision_latency_seconds_bucket{le="0.002",node="m1"}`: 1,
		`swarm_scheduler_decision_latency_seconds_bucket{le="0.005",node="m1"}`: 2,
		`swarm_scheduler_decision_latency_seconds_bucket{le="1",node="m1"}`:     2,
		`swarm_scheduler_decision_latency_seconds_bucket{le="2.5",node="m1"}`:   3,
		`swarm_scheduler_decision_latency_seconds_bucket{le="60",node="m1"}`:    3,
		`swarm_scheduler_decision_latency_seconds_count{node="m1"}`:             4,
		`swarm_scheduler_decision_latency_seconds_sum{node="m1"}`:               0.0005 + 0.003 + 2 + 7200,

		`swarm_dispatcher_sessions{node="m1"}`:                                  6,
		`swarm_dispatcher_heartbeats_total{node="m1"}`:                          300,
		`swarm_dispatcher_missed_heartbeats_total{node="m1"}`:                   2,
		`swarm_dispatcher_assignments_sent_total{kind="full",node="m1"}`:        9,
		`swarm_dispatcher_assignments_sent_total{kind="incremental",node="m1"}`: 33,

		`swarm_orchestrator_reconcile_passes_total{node="m1"}`:                 17,
		`swarm_orchestrator_tasks_created_total{node="m1"}`:                    12,
		`swarm_orchestrator_task_transitions_total{node="m1",state="new"}`:     12,
		`swarm_orchestrator_task_transitions_total{node="m1",state="running"}`: 10,
		`swarm_orchestrator_task_transitions_total{node="m1",state="failed"}`:  1,

		`swarm_allocator_allocations_total{node="m1"}`: 12,
		`swarm_allocator_waiting_tasks{node="m1"}`:     1,

		`swarm_agent_heartbeats_sent_total{node="m1"}`:                         60,
		`swarm_agent_assignments_received_total{kind="incremental",node="m1"}`: 4,
		`swarm_agent_heartbeats_sent_total{node="w1"}`:                         42,
		`swarm_agent_tasks_started_total{node="w1"}`:                           5,
	})
	for k := range got {
		switch {
		case strings.Contains(k, `node="w1"`) && !strings.HasPrefix(k, "swarm_agent_") && !strings.HasPrefix(k, "swarm_node_up"):
			t.Errorf("the worker exports %s: it has no manager components", k)
		case strings.Contains(k, `node="w2"`) && !strings.HasPrefix(k, "swarm_node_up"):
			t.Errorf("the down node exports %s", k)
		}
	}
}

// TestNodeCollectorReadsAtCollect: the collector holds the Source, not a
// snapshot, so a node that restarts (a new engine, counters from zero) is
// read afresh, and a node that went down exports only that it is down.
func TestNodeCollectorReadsAtCollect(t *testing.T) {
	snap := managerSnapshot()
	c := NewNodeCollector("m1", SourceFunc(func() (Snapshot, error) { return snap, nil }))
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	read := func() map[string]float64 {
		fams, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		return flatten(fams)
	}
	if v := read()[`swarm_raft_proposals_total{node="m1"}`]; v != 101 {
		t.Fatalf("proposals %v, want 101", v)
	}
	snap = Snapshot{}
	got := read()
	if len(got) != 1 || got[`swarm_node_up{node="m1"}`] != 0 {
		t.Fatalf("a down node exports %v, want only swarm_node_up 0", got)
	}
	snap = managerSnapshot()
	snap.Raft.Proposals = 1
	if v := read()[`swarm_raft_proposals_total{node="m1"}`]; v != 1 {
		t.Fatalf("after a restart proposals %v, want 1", v)
	}
}

// TestSourceError: a node whose snapshot cannot be taken fails the
// gather, instead of exporting zeros that would look like a reset.
func TestSourceError(t *testing.T) {
	boom := errors.New("boom")
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewNodeCollector("m1", SourceFunc(func() (Snapshot, error) { return Snapshot{}, boom })))
	if _, err := reg.Gather(); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("gather error %v, want boom", err)
	}
}

// loopFunc is an env.Loop.
type loopFunc func(f func())

func (l loopFunc) Post(f func()) { l(f) }

func TestOnLoop(t *testing.T) {
	var ran bool
	loop := loopFunc(func(f func()) { go func() { ran = true; f() }() })
	s, err := OnLoop(loop, managerSnapshot, time.Minute).Snapshot()
	if err != nil || !s.Up || s.Raft.Proposals != 101 || !ran {
		t.Fatalf("OnLoop gave %+v, %v", s, err)
	}
	stuck := loopFunc(func(func()) {})
	if _, err := OnLoop(stuck, managerSnapshot, time.Millisecond).Snapshot(); !errors.Is(err, ErrLoopTimeout) {
		t.Fatalf("a stuck loop gave %v, want ErrLoopTimeout", err)
	}
}

// notExported lists the Stats fields no metric carries, and why. Any other
// field must reach a metric: TestEveryStatsFieldExported fails when a
// component grows a counter that metrics/ forgets.
var notExported = map[string]string{
	"raft.Stats.MessagesSent":     "swarm_raft_messages_sent_total by type sums to it",
	"raft.Stats.MessagesReceived": "swarm_raft_messages_received_total by type sums to it",
	"store.Stats.AppliedIndex":    "swarm_raft_applied_index",
	"scheduler.Stats.Decisions":   "swarm_scheduler_decisions_total by result sums to it",
}

// TestEveryStatsFieldExported sets every integer field of every Stats to a
// value of its own and checks that value is exported somewhere.
func TestEveryStatsFieldExported(t *testing.T) {
	var (
		rs  raft.Stats
		ss  store.Stats
		sch scheduler.Stats
		d   dispatcher.Stats
		o   orchestrator.Stats
		al  allocator.Stats
		a   agent.Stats
	)
	next := 1000.0
	want := map[string]float64{}
	for _, s := range []any{&rs, &ss, &sch, &d, &o, &al, &a} {
		v := reflect.ValueOf(s).Elem()
		typ := v.Type()
		for i := range v.NumField() {
			f := v.Field(i)
			name := strings.TrimPrefix(typ.String(), "*") + "." + typ.Field(i).Name
			switch f.Kind() {
			case reflect.Uint64, reflect.Int:
			default:
				continue // slices, arrays, maps, histograms: checked by TestNodeCollectorExportsStats
			}
			next += 7 // distinct, and far from the derived values
			if f.Kind() == reflect.Int {
				f.SetInt(int64(next))
			} else {
				f.SetUint(uint64(next))
			}
			if _, skip := notExported[name]; !skip {
				want[name] = next
			}
		}
	}
	snap := Snapshot{Up: true, Raft: &rs, Store: &ss, Scheduler: &sch, Dispatcher: &d, Orchestrator: &o, Allocator: &al, Agent: &a}
	got := flatten(gather(t, NewNodeCollector("m1", fixed(snap))))
	values := map[float64]bool{}
	for _, v := range got {
		values[v] = true
	}
	for name, v := range want {
		if !values[v] {
			t.Errorf("%s is exported by no metric: add it to metrics/node.go, or to notExported with the reason", name)
		}
	}
}
