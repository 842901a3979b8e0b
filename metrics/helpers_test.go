package metrics

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/swarmsim/swarmsim/engine/agent"
	"github.com/swarmsim/swarmsim/engine/allocator"
	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/dispatcher"
	"github.com/swarmsim/swarmsim/engine/orchestrator"
	"github.com/swarmsim/swarmsim/engine/raft"
	"github.com/swarmsim/swarmsim/engine/scheduler"
	"github.com/swarmsim/swarmsim/engine/store"
)

// managerSnapshot is a manager with every component and every labelled
// family non-empty, so that a collect exports every metric there is.
func managerSnapshot() Snapshot {
	rs := raft.Stats{
		Proposals: 101, ProposalsFailed: 3, ProposalsApplied: 97, EntriesCommitted: 140,
		AppliedIndex: 150, CommitIndex: 155, LeaderChanges: 2, ReadIndexes: 11, Syncs: 40,
		SnapshotsTaken: 1, SnapshotBytesTaken: 4096, SnapshotsSent: 2, SnapshotBytesSent: 8192,
		SnapshotsReceived: 0, SnapshotBytesReceived: 0,
		MessagesSent: 30, MessagesReceived: 25, MessagesDropped: 1,
		Messages: []raft.MessageCount{{Type: "MsgApp", Sent: 20, Received: 5}, {Type: "MsgHeartbeat", Sent: 10, Received: 20}},
	}
	st := raft.Status{Term: 4, IsLeader: true, Voters: []uint64{1, 2, 3}, Learners: []uint64{9}}
	ss := store.Stats{Proposals: 90, Actions: 270, Conflicts: 2, SkippedActions: 5, Restores: 1, Watchers: 4}
	for i, k := range store.Kinds {
		ss.Objects[k] = 10 * (i + 1)
	}
	sch := scheduler.Stats{Decisions: 50, Assigned: 40, LeftPending: 8, Skipped: 2, Batches: 7, ReasonWrites: 3,
		ProposalErrors: 1, Turns: 12, Queued: 5, Waiting: 3, InFlight: 2, Nodes: 6}
	sch.Latency.Observe(500 * time.Microsecond)
	sch.Latency.Observe(3 * time.Millisecond)
	sch.Latency.Observe(2 * time.Second)
	sch.Latency.Observe(2 * time.Hour)
	d := dispatcher.Stats{Sessions: 6, SessionsOpened: 9, HeartbeatsReceived: 300, NodesDown: 2, AssignmentsFull: 9, AssignmentsIncr: 33}
	o := orchestrator.Stats{Passes: 17, TasksCreated: 12, TaskStates: map[api.TaskState]uint64{
		api.TaskState_TASK_STATE_RUNNING: 10,
		api.TaskState_TASK_STATE_NEW:     12,
		api.TaskState_TASK_STATE_FAILED:  1,
	}}
	al := allocator.Stats{Allocations: 12, TasksAllocated: 12, Waiting: 1}
	a := agent.Stats{SessionsOpened: 1, HeartbeatsSent: 60, AssignmentsFull: 1, AssignmentsIncr: 4, TasksStarted: 3}
	return Snapshot{Up: true, Raft: &rs, RaftStatus: &st, Store: &ss, Scheduler: &sch, Dispatcher: &d,
		Orchestrator: &o, Allocator: &al, Agent: &a}
}

func workerSnapshot() Snapshot {
	a := agent.Stats{SessionsOpened: 2, HeartbeatsSent: 42, TasksStarted: 5}
	return Snapshot{Up: true, Agent: &a}
}

func fixed(s Snapshot) Source {
	return SourceFunc(func() (Snapshot, error) { return s, nil })
}

// gather registers cs in a pedantic registry (which checks every metric
// against its description) and gathers it.
func gather(t *testing.T, cs ...prometheus.Collector) []*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			t.Fatalf("register: %v", err)
		}
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	return fams
}

// flatten maps each exported sample, written as in the text exposition
// (`name{a="1",b="2"}`, labels sorted, histogram lines with their suffix),
// to its value.
func flatten(fams []*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for _, mf := range fams {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			slices.Sort(labels)
			key := func(suffix string, extra ...string) string {
				ls := slices.Sorted(slices.Values(append(slices.Clone(labels), extra...)))
				return mf.GetName() + suffix + "{" + strings.Join(ls, ",") + "}"
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[key("")] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key("")] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				for _, b := range h.GetBucket() {
					out[key("_bucket", fmt.Sprintf("le=%q", strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64)))] = float64(b.GetCumulativeCount())
				}
				out[key("_count")] = float64(h.GetSampleCount())
				out[key("_sum")] = h.GetSampleSum()
			case dto.MetricType_SUMMARY:
				s := m.GetSummary()
				out[key("_count")] = float64(s.GetSampleCount())
				out[key("_sum")] = s.GetSampleSum()
			}
		}
	}
	return out
}

// expectValues fails for every key of want that got lacks or holds
// another value.
func expectValues(t *testing.T, got map[string]float64, want map[string]float64) {
	t.Helper()
	for _, k := range slices.Sorted(maps.Keys(want)) {
		v, ok := got[k]
		switch {
		case !ok:
			t.Errorf("%s: not exported", k)
		case v != want[k]:
			t.Errorf("%s = %v, want %v", k, v, want[k])
		}
	}
}
