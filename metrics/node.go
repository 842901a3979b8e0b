package metrics

import (
	"fmt"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmsim/swarmsim/engine/agent"
	"github.com/swarmsim/swarmsim/engine/allocator"
	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/dispatcher"
	"github.com/swarmsim/swarmsim/engine/orchestrator"
	"github.com/swarmsim/swarmsim/engine/raft"
	"github.com/swarmsim/swarmsim/engine/scheduler"
	"github.com/swarmsim/swarmsim/engine/store"
)

// NodeLabel is the label that names the node every engine metric is about.
const NodeLabel = "node"

// NodeSource is one node's name (its env.NodeID) and where its statistics
// come from.
type NodeSource struct {
	Node   string
	Source Source
}

// NewNodeCollector exports one node's engine statistics, labelled
// node=nodeID, reading src at every collect. It is what a swarmd process
// registers for itself. Two NodeCollectors describe the same metrics, so
// one registry takes only one; a registry for several nodes takes a
// NewNodesCollector.
func NewNodeCollector(nodeID string, src Source) Collector {
	one := []NodeSource{{Node: nodeID, Source: src}}
	return NewNodesCollector(func() []NodeSource { return one })
}

// NewNodesCollector exports the engine statistics of a set of nodes that
// may change between collects (machines added to a simulated cluster):
// nodes is called at every collect.
func NewNodesCollector(nodes func() []NodeSource) Collector {
	return &nodesCollector{nodes: nodes}
}

type nodesCollector struct {
	nodes func() []NodeSource
}

// Describe sends every metric the collector can export, so that a
// (pedantic) registry checks names, help and labels at registration.
func (c *nodesCollector) Describe(ch chan<- *prometheus.Desc) { describe(ch, nodeFamilies) }

// Collect reads each node's Source once and exports what it holds.
func (c *nodesCollector) Collect(ch chan<- prometheus.Metric) { c.collectTo(promEmitter{ch}) }

func (c *nodesCollector) collectTo(e emitter) {
	for _, ns := range c.nodes() {
		s, err := ns.Source.Snapshot()
		if err != nil {
			e.fail(nodeUp, fmt.Errorf("node %s: %w", ns.Node, err))
			continue
		}
		collectNode(e, ns.Node, &s)
	}
}

func collectNode(e emitter, node string, s *Snapshot) {
	e.value(nodeUp, b2f(s.Up), node, "")
	if !s.Up {
		return
	}
	for _, g := range nodeGroups {
		g.collect(e, node, s)
	}
	if r := s.Raft; r != nil {
		for _, m := range r.Messages {
			e.value(raftMessagesSent, float64(m.Sent), node, m.Type)
			e.value(raftMessagesReceived, float64(m.Received), node, m.Type)
		}
	}
	if st := s.Store; st != nil {
		for _, k := range store.Kinds {
			e.value(storeObjects, float64(st.Objects[k]), node, kindNames[k])
		}
		e.summary(storeProposalActions, st.Proposals, float64(st.Actions), node)
	}
	if sc := s.Scheduler; sc != nil {
		// Decisions splits into the placed and the unplaced, so that the
		// result label sums to every decision.
		placed := sc.Decisions - min(sc.LeftPending, sc.Decisions)
		e.value(schedulerDecisions, float64(placed), node, "placed")
		e.value(schedulerDecisions, float64(sc.LeftPending), node, "unplaced")
		e.value(schedulerPendingTasks, float64(sc.Queued), node, "turn")
		e.value(schedulerPendingTasks, float64(sc.Waiting), node, "capacity")
		// The scheduler's buckets are not cumulative, Prometheus' are. Its
		// overflow bucket becomes +Inf, which Prometheus derives from the
		// count.
		var cum [len(scheduler.LatencyBuckets)]uint64
		var n uint64
		for i := range cum {
			n += sc.Latency.Counts[i]
			cum[i] = n
		}
		e.histogram(schedulerLatency, sc.Latency.Count, sc.Latency.Sum.Seconds(), latencyBounds, cum[:], node)
	}
	if d := s.Dispatcher; d != nil {
		e.value(dispatcherAssignments, float64(d.AssignmentsFull), node, "full")
		e.value(dispatcherAssignments, float64(d.AssignmentsIncr), node, "incremental")
	}
	if o := s.Orchestrator; o != nil {
		states := make([]api.TaskState, 0, len(o.TaskStates))
		for st := range o.TaskStates {
			states = append(states, st)
		}
		slices.Sort(states) // map order must not reach the output
		for _, st := range states {
			e.value(orchestratorTransitions, float64(o.TaskStates[st]), node, TaskStateLabel(st))
		}
	}
	if a := s.Agent; a != nil {
		e.value(agentAssignments, float64(a.AssignmentsFull), node, "full")
		e.value(agentAssignments, float64(a.AssignmentsIncr), node, "incremental")
	}
}

// kindNames are the kind label values of swarm_store_objects.
var kindNames = func() (out [store.NumKinds]string) {
	for k := range out {
		out[k] = store.Kind(k).String()
	}
	return out
}()

// TaskStateLabel is the state label value of a task state: "running" for
// TASK_STATE_RUNNING.
func TaskStateLabel(s api.TaskState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "TASK_STATE_"))
}

// latencyBounds are the upper bounds of the scheduler's latency buckets
// in seconds: the le labels of swarm_scheduler_decision_latency_seconds.
var latencyBounds = func() []float64 {
	out := make([]float64, len(scheduler.LatencyBuckets))
	for i, b := range scheduler.LatencyBuckets {
		out[i] = b.Seconds()
	}
	return out
}()

// ---- the metric table

// nodeFamilies are every node metric, filled by def.
var nodeFamilies []*family

// def declares a node metric: labelled node, then by extra if given.
func def(name, help string, k kind, extra ...string) *family {
	f := newFamily(name, help, k, append([]string{NodeLabel}, extra...)...)
	nodeFamilies = append(nodeFamilies, f)
	return f
}

// stat is one unlabelled number read from a component's Stats.
type stat[S any] struct {
	f     *family
	value func(*S) float64
}

func counter[S any](name, help string, v func(*S) uint64) stat[S] {
	return stat[S]{def(name, help, kindCounter), func(s *S) float64 { return float64(v(s)) }}
}

func gauge[S any](name, help string, v func(*S) float64) stat[S] {
	return stat[S]{def(name, help, kindGauge), v}
}

// group is the unlabelled numbers of one component.
type group[S any] struct {
	pick  func(*Snapshot) *S
	stats []stat[S]
}

func (g group[S]) collect(e emitter, node string, s *Snapshot) {
	c := g.pick(s)
	if c == nil {
		return
	}
	for _, st := range g.stats {
		e.value(st.f, st.value(c), node, "")
	}
}

type collector interface {
	collect(e emitter, node string, s *Snapshot)
}

var nodeUp = def("swarm_node_up",
	"1 while the node's engine runs, 0 while it is down (a crashed or stopped simulated machine).", kindGauge)

var nodeGroups = []collector{
	group[raft.Stats]{func(s *Snapshot) *raft.Stats { return s.Raft }, []stat[raft.Stats]{
		counter("swarm_raft_proposals_total",
			"Proposals this node's raft driver accepted into a batch.",
			func(s *raft.Stats) uint64 { return s.Proposals }),
		counter("swarm_raft_proposals_failed_total",
			"Proposals made on this node whose callback got an error (leadership lost, refused, too large).",
			func(s *raft.Stats) uint64 { return s.ProposalsFailed }),
		counter("swarm_raft_proposals_applied_total",
			"Proposals made on this node that committed and were applied here.",
			func(s *raft.Stats) uint64 { return s.ProposalsApplied }),
		counter("swarm_raft_entries_applied_total",
			"Committed raft entries (normal and configuration changes) this node applied.",
			func(s *raft.Stats) uint64 { return s.EntriesCommitted }),
		gauge("swarm_raft_commit_index",
			"Highest raft log index this node knows to be committed.",
			func(s *raft.Stats) float64 { return float64(s.CommitIndex) }),
		gauge("swarm_raft_applied_index",
			"Highest raft log index this node applied to its store.",
			func(s *raft.Stats) float64 { return float64(s.AppliedIndex) }),
		gauge("swarm_raft_apply_lag_entries",
			"Entries committed but not yet applied on this node (commit index minus applied index).",
			func(s *raft.Stats) float64 { return float64(s.CommitIndex - min(s.AppliedIndex, s.CommitIndex)) }),
		counter("swarm_raft_leader_changes_total",
			"Times this node saw the raft leader change to a new one.",
			func(s *raft.Stats) uint64 { return s.LeaderChanges }),
		counter("swarm_raft_read_index_requests_total",
			"ReadIndex requests (linearizable reads) this node asked raft for, batched.",
			func(s *raft.Stats) uint64 { return s.ReadIndexes }),
		counter("swarm_raft_disk_syncs_total",
			"Syncs of raft's log and hard state to disk that completed.",
			func(s *raft.Stats) uint64 { return s.Syncs }),
		counter("swarm_raft_snapshots_taken_total",
			"Store snapshots this node took to compact its raft log.",
			func(s *raft.Stats) uint64 { return s.SnapshotsTaken }),
		counter("swarm_raft_snapshots_taken_bytes_total",
			"Bytes of the store snapshots this node took.",
			func(s *raft.Stats) uint64 { return s.SnapshotBytesTaken }),
		counter("swarm_raft_snapshots_sent_total",
			"Snapshots this node sent to lagging followers.",
			func(s *raft.Stats) uint64 { return s.SnapshotsSent }),
		counter("swarm_raft_snapshots_sent_bytes_total",
			"Bytes of the snapshots this node sent.",
			func(s *raft.Stats) uint64 { return s.SnapshotBytesSent }),
		counter("swarm_raft_snapshots_received_total",
			"Snapshots this node received from a leader.",
			func(s *raft.Stats) uint64 { return s.SnapshotsReceived }),
		counter("swarm_raft_snapshots_received_bytes_total",
			"Bytes of the snapshots this node received.",
			func(s *raft.Stats) uint64 { return s.SnapshotBytesReceived }),
		counter("swarm_raft_messages_dropped_total",
			"Raft messages this node dropped unsent because it knows no address for their destination.",
			func(s *raft.Stats) uint64 { return s.MessagesDropped }),
	}},
	group[raft.Status]{func(s *Snapshot) *raft.Status { return s.RaftStatus }, []stat[raft.Status]{
		gauge("swarm_raft_term",
			"Raft term this node is in.",
			func(s *raft.Status) float64 { return float64(s.Term) }),
		gauge("swarm_raft_leader",
			"1 while this node is the raft leader, else 0.",
			func(s *raft.Status) float64 { return b2f(s.IsLeader) }),
		gauge("swarm_raft_voters",
			"Voting members in this node's latest applied raft configuration.",
			func(s *raft.Status) float64 { return float64(len(s.Voters)) }),
		gauge("swarm_raft_learners",
			"Non-voting members (learners) in this node's latest applied raft configuration.",
			func(s *raft.Status) float64 { return float64(len(s.Learners)) }),
	}},
	group[store.Stats]{func(s *Snapshot) *store.Stats { return s.Store }, []stat[store.Stats]{
		counter("swarm_store_conflicts_total",
			"Committed proposals the store rejected whole (a version, existence or name check failed).",
			func(s *store.Stats) uint64 { return s.Conflicts }),
		counter("swarm_store_skipped_actions_total",
			"Compact actions applied as no-ops (a task status moving backwards or naming a gone task, an assignment whose guard failed).",
			func(s *store.Stats) uint64 { return s.SkippedActions }),
		counter("swarm_store_own_applied_total",
			"Key writes this node proposed and applied from the call that made them, without decoding their entry.",
			func(s *store.Stats) uint64 { return s.OwnApplied }),
		counter("swarm_store_decode_errors_total",
			"Committed entries the store could not decode.",
			func(s *store.Stats) uint64 { return s.DecodeErrors }),
		counter("swarm_store_restores_total",
			"Times the store was replaced by a snapshot.",
			func(s *store.Stats) uint64 { return s.Restores }),
		gauge("swarm_store_watchers",
			"Watches open on the store.",
			func(s *store.Stats) float64 { return float64(s.Watchers) }),
	}},
	group[scheduler.Stats]{func(s *Snapshot) *scheduler.Stats { return s.Scheduler }, []stat[scheduler.Stats]{
		counter("swarm_scheduler_assignments_total",
			"Task assignments that took (the store confirmed them).",
			func(s *scheduler.Stats) uint64 { return s.Assigned }),
		counter("swarm_scheduler_assignments_skipped_total",
			"Task assignments proposed that did not take (the task or node changed first); their tasks are scheduled again.",
			func(s *scheduler.Stats) uint64 { return s.Skipped }),
		counter("swarm_scheduler_assignment_batches_total",
			"Assignment proposals that applied.",
			func(s *scheduler.Stats) uint64 { return s.Batches }),
		counter("swarm_scheduler_pending_reason_writes_total",
			"Updates of a pending task's reason proposed.",
			func(s *scheduler.Stats) uint64 { return s.ReasonWrites }),
		counter("swarm_scheduler_proposal_errors_total",
			"Scheduler proposals whose callback reported an error.",
			func(s *scheduler.Stats) uint64 { return s.ProposalErrors }),
		counter("swarm_scheduler_passes_total",
			"Scheduling passes that had work.",
			func(s *scheduler.Stats) uint64 { return s.Turns }),
		gauge("swarm_scheduler_inflight_decisions",
			"Assignments proposed and not yet confirmed.",
			func(s *scheduler.Stats) float64 { return float64(s.InFlight) }),
		gauge("swarm_scheduler_nodes",
			"Nodes in the scheduler's view.",
			func(s *scheduler.Stats) float64 { return float64(s.Nodes) }),
	}},
	group[dispatcher.Stats]{func(s *Snapshot) *dispatcher.Stats { return s.Dispatcher }, []stat[dispatcher.Stats]{
		gauge("swarm_dispatcher_sessions",
			"Agent sessions open on this dispatcher.",
			func(s *dispatcher.Stats) float64 { return float64(s.Sessions) }),
		counter("swarm_dispatcher_sessions_opened_total",
			"Agent sessions opened.",
			func(s *dispatcher.Stats) uint64 { return s.SessionsOpened }),
		counter("swarm_dispatcher_session_repeats_total",
			"Duplicate session requests answered again.",
			func(s *dispatcher.Stats) uint64 { return s.SessionRepeats }),
		counter("swarm_dispatcher_sessions_refused_total",
			"Session requests refused because their node was removed.",
			func(s *dispatcher.Stats) uint64 { return s.Refused }),
		counter("swarm_dispatcher_redirects_total",
			"Agent requests answered NOT_LEADER.",
			func(s *dispatcher.Stats) uint64 { return s.Redirects }),
		counter("swarm_dispatcher_unknown_session_requests_total",
			"Agent requests naming a session that is not current.",
			func(s *dispatcher.Stats) uint64 { return s.UnknownSessions }),
		counter("swarm_dispatcher_heartbeats_total",
			"Heartbeats received from agents.",
			func(s *dispatcher.Stats) uint64 { return s.HeartbeatsReceived }),
		counter("swarm_dispatcher_missed_heartbeats_total",
			"Sessions that missed their heartbeat grace period; each marked its node down.",
			func(s *dispatcher.Stats) uint64 { return s.NodesDown }),
		counter("swarm_dispatcher_node_writes_total",
			"Node objects written (READY or DOWN).",
			func(s *dispatcher.Stats) uint64 { return s.NodeWrites }),
		counter("swarm_dispatcher_node_write_failures_total",
			"Node transactions that failed and were retried.",
			func(s *dispatcher.Stats) uint64 { return s.NodeWriteFailures }),
		counter("swarm_dispatcher_assignment_tasks_total",
			"Tasks sent to agents in assignments (added or changed).",
			func(s *dispatcher.Stats) uint64 { return s.AssignmentTasks }),
		counter("swarm_dispatcher_assignment_removals_total",
			"Task removals sent to agents in assignments.",
			func(s *dispatcher.Stats) uint64 { return s.AssignmentRemovals }),
		counter("swarm_dispatcher_resyncs_total",
			"Full assignment sets sent because an agent asked for one.",
			func(s *dispatcher.Stats) uint64 { return s.Resyncs }),
		counter("swarm_dispatcher_status_updates_received_total",
			"Task status updates received from agents.",
			func(s *dispatcher.Stats) uint64 { return s.StatusReceived }),
		counter("swarm_dispatcher_status_updates_dropped_total",
			"Task status updates dropped unacknowledged because too many were pending.",
			func(s *dispatcher.Stats) uint64 { return s.StatusDropped }),
		counter("swarm_dispatcher_status_updates_written_total",
			"Task status updates recorded in a transaction.",
			func(s *dispatcher.Stats) uint64 { return s.StatusWritten }),
		counter("swarm_dispatcher_status_updates_skipped_total",
			"Task status updates not recorded: the task is gone, not the node's, or the state does not move forward.",
			func(s *dispatcher.Stats) uint64 { return s.StatusSkipped }),
		counter("swarm_dispatcher_status_batches_total",
			"Task status transactions proposed.",
			func(s *dispatcher.Stats) uint64 { return s.StatusBatches }),
		counter("swarm_dispatcher_status_batch_failures_total",
			"Task status transactions whose proposal failed.",
			func(s *dispatcher.Stats) uint64 { return s.StatusBatchFailures }),
		counter("swarm_dispatcher_acks_sent_total",
			"Acknowledgements of task status updates sent to agents.",
			func(s *dispatcher.Stats) uint64 { return s.AcksSent }),
		counter("swarm_dispatcher_secrets_sent_total",
			"Secrets sent to agents with their assignments.",
			func(s *dispatcher.Stats) uint64 { return s.SecretsSent }),
		counter("swarm_dispatcher_secrets_withdrawn_total",
			"Secrets agents were told to forget.",
			func(s *dispatcher.Stats) uint64 { return s.SecretsWithdrawn }),
		counter("swarm_dispatcher_configs_sent_total",
			"Configs sent to agents with their assignments.",
			func(s *dispatcher.Stats) uint64 { return s.ConfigsSent }),
		counter("swarm_dispatcher_configs_withdrawn_total",
			"Configs agents were told to forget.",
			func(s *dispatcher.Stats) uint64 { return s.ConfigsWithdrawn }),
		counter("swarm_dispatcher_missing_references_total",
			"Secrets or configs a task referenced that the store lacks.",
			func(s *dispatcher.Stats) uint64 { return s.RefsMissing }),
	}},
	group[orchestrator.Stats]{func(s *Snapshot) *orchestrator.Stats { return s.Orchestrator }, []stat[orchestrator.Stats]{
		counter("swarm_orchestrator_reconcile_passes_total",
			"Reconcile passes run.",
			func(s *orchestrator.Stats) uint64 { return s.Passes }),
		counter("swarm_orchestrator_services_reconciled_total",
			"Whole-service reconciles.",
			func(s *orchestrator.Stats) uint64 { return s.ServicesReconciled }),
		counter("swarm_orchestrator_slots_reconciled_total",
			"One-slot reconciles (after a task or node event).",
			func(s *orchestrator.Stats) uint64 { return s.SlotsReconciled }),
		counter("swarm_orchestrator_transactions_total",
			"Orchestrator proposals that applied.",
			func(s *orchestrator.Stats) uint64 { return s.Transactions }),
		counter("swarm_orchestrator_failed_writes_total",
			"Orchestrator proposals rejected or dropped; their services are reconciled again.",
			func(s *orchestrator.Stats) uint64 { return s.FailedWrites }),
		counter("swarm_orchestrator_write_conflicts_total",
			"Failed orchestrator writes rejected because of a concurrent change.",
			func(s *orchestrator.Stats) uint64 { return s.Conflicts }),
		counter("swarm_orchestrator_tasks_created_total",
			"Tasks created.",
			func(s *orchestrator.Stats) uint64 { return s.TasksCreated }),
		counter("swarm_orchestrator_tasks_shut_down_total",
			"Tasks whose desired state was raised to SHUTDOWN.",
			func(s *orchestrator.Stats) uint64 { return s.TasksShutDown }),
		counter("swarm_orchestrator_tasks_removed_total",
			"Tasks whose desired state was raised to REMOVE.",
			func(s *orchestrator.Stats) uint64 { return s.TasksRemoved }),
		counter("swarm_orchestrator_tasks_promoted_total",
			"Tasks moved from READY to RUNNING desired state once a restart delay or an old task's stop passed.",
			func(s *orchestrator.Stats) uint64 { return s.TasksPromoted }),
		counter("swarm_orchestrator_tasks_orphaned_total",
			"Tasks marked ORPHANED because their node was removed.",
			func(s *orchestrator.Stats) uint64 { return s.TasksOrphaned }),
		counter("swarm_orchestrator_tasks_deleted_total",
			"Tasks deleted by the reaper.",
			func(s *orchestrator.Stats) uint64 { return s.TasksDeleted }),
		counter("swarm_orchestrator_services_deleted_total",
			"Services marked for deletion that were deleted once their tasks were gone.",
			func(s *orchestrator.Stats) uint64 { return s.ServicesDeleted }),
		counter("swarm_orchestrator_task_restarts_total",
			"Replacement tasks created under a restart policy (a task ended, or its node went down).",
			func(s *orchestrator.Stats) uint64 { return s.Restarts }),
		counter("swarm_orchestrator_task_reschedules_total",
			"Replacement tasks for tasks on drained or no longer matching nodes.",
			func(s *orchestrator.Stats) uint64 { return s.Reschedules }),
		counter("swarm_orchestrator_updates_started_total",
			"Rolling updates started.",
			func(s *orchestrator.Stats) uint64 { return s.UpdatesStarted }),
		counter("swarm_orchestrator_updates_completed_total",
			"Rolling updates completed.",
			func(s *orchestrator.Stats) uint64 { return s.UpdatesCompleted }),
		counter("swarm_orchestrator_updates_paused_total",
			"Rolling updates or rollbacks paused.",
			func(s *orchestrator.Stats) uint64 { return s.UpdatesPaused }),
		counter("swarm_orchestrator_rollbacks_started_total",
			"Rollbacks started (automatic and manual).",
			func(s *orchestrator.Stats) uint64 { return s.RollbacksStarted }),
		counter("swarm_orchestrator_rollbacks_completed_total",
			"Rollbacks completed.",
			func(s *orchestrator.Stats) uint64 { return s.RollbacksCompleted }),
		counter("swarm_orchestrator_job_iterations_total",
			"Job iterations started.",
			func(s *orchestrator.Stats) uint64 { return s.JobIterations }),
	}},
	group[allocator.Stats]{func(s *Snapshot) *allocator.Stats { return s.Allocator }, []stat[allocator.Stats]{
		counter("swarm_allocator_allocations_total",
			"Addresses, virtual IPs and published ports handed out.",
			func(s *allocator.Stats) uint64 { return s.Allocations }),
		counter("swarm_allocator_releases_total",
			"Addresses, virtual IPs and published ports given back.",
			func(s *allocator.Stats) uint64 { return s.Frees }),
		counter("swarm_allocator_failures_total",
			"Attempts to allocate a task or service that failed (pool exhausted, port taken, network missing).",
			func(s *allocator.Stats) uint64 { return s.Failures }),
		counter("swarm_allocator_conflicts_total",
			"Resources found recorded for two holders.",
			func(s *allocator.Stats) uint64 { return s.Conflicts }),
		counter("swarm_allocator_tasks_allocated_total",
			"Tasks the allocator moved from NEW to PENDING.",
			func(s *allocator.Stats) uint64 { return s.TasksAllocated }),
		counter("swarm_allocator_proposals_total",
			"Allocator transactions proposed.",
			func(s *allocator.Stats) uint64 { return s.Proposals }),
		counter("swarm_allocator_proposals_rejected_total",
			"Allocator transactions that failed (rejected on apply, or left in doubt).",
			func(s *allocator.Stats) uint64 { return s.Rejected }),
		gauge("swarm_allocator_waiting_tasks",
			"Tasks queued or waiting for a resource.",
			func(s *allocator.Stats) float64 { return float64(s.Waiting) }),
	}},
	group[agent.Stats]{func(s *Snapshot) *agent.Stats { return s.Agent }, []stat[agent.Stats]{
		counter("swarm_agent_sessions_opened_total",
			"Sessions the agent opened with a dispatcher.",
			func(s *agent.Stats) uint64 { return s.SessionsOpened }),
		counter("swarm_agent_session_attempts_total",
			"Session requests the agent sent.",
			func(s *agent.Stats) uint64 { return s.SessionAttempts }),
		counter("swarm_agent_reconnects_total",
			"Sessions the agent lost (silence or refusal).",
			func(s *agent.Stats) uint64 { return s.Reconnects }),
		counter("swarm_agent_redirects_total",
			"Redirects to another manager the agent followed.",
			func(s *agent.Stats) uint64 { return s.Redirects }),
		counter("swarm_agent_heartbeats_sent_total",
			"Heartbeats the agent sent.",
			func(s *agent.Stats) uint64 { return s.HeartbeatsSent }),
		counter("swarm_agent_assignment_gaps_total",
			"Gaps in the assignment sequence the agent saw.",
			func(s *agent.Stats) uint64 { return s.AssignmentGaps }),
		counter("swarm_agent_resync_requests_total",
			"Full assignment sets the agent asked for.",
			func(s *agent.Stats) uint64 { return s.ResyncRequests }),
		counter("swarm_agent_tasks_started_total",
			"Containers that reached running.",
			func(s *agent.Stats) uint64 { return s.TasksStarted }),
		counter("swarm_agent_tasks_adopted_total",
			"Containers found running at start and kept.",
			func(s *agent.Stats) uint64 { return s.TasksAdopted }),
		counter("swarm_agent_tasks_completed_total",
			"Tasks that completed.",
			func(s *agent.Stats) uint64 { return s.TasksCompleted }),
		counter("swarm_agent_tasks_failed_total",
			"Tasks that failed.",
			func(s *agent.Stats) uint64 { return s.TasksFailed }),
		counter("swarm_agent_tasks_rejected_total",
			"Tasks the agent rejected.",
			func(s *agent.Stats) uint64 { return s.TasksRejected }),
		counter("swarm_agent_tasks_shutdown_total",
			"Tasks the agent shut down.",
			func(s *agent.Stats) uint64 { return s.TasksShutdown }),
		counter("swarm_agent_reports_sent_total",
			"Status report messages the agent sent.",
			func(s *agent.Stats) uint64 { return s.ReportsSent }),
		counter("swarm_agent_reports_retried_total",
			"Status report messages that resent a status.",
			func(s *agent.Stats) uint64 { return s.ReportsRetried }),
		counter("swarm_agent_statuses_sent_total",
			"Task statuses the agent sent.",
			func(s *agent.Stats) uint64 { return s.StatusesSent }),
		counter("swarm_agent_statuses_acked_total",
			"Task statuses the dispatcher acknowledged.",
			func(s *agent.Stats) uint64 { return s.StatusesAcked }),
		counter("swarm_agent_containers_removed_total",
			"Containers the agent removed.",
			func(s *agent.Stats) uint64 { return s.ContainersRemoved }),
	}},
}

// The labelled families, collected by hand in collectNode.
var (
	raftMessagesSent = def("swarm_raft_messages_sent_total",
		"Raft messages this node sent, by raft message type.", kindCounter, "type")
	raftMessagesReceived = def("swarm_raft_messages_received_total",
		"Raft messages this node received, by raft message type.", kindCounter, "type")
	storeObjects = def("swarm_store_objects",
		"Objects in this node's copy of the store, by kind.", kindGauge, "kind")
	storeProposalActions = def("swarm_store_proposal_actions",
		"Actions per committed proposal the store applied or rejected: _count is the proposals, _sum their actions (sum/count is the mean transaction size).", kindSummary)
	schedulerDecisions = def("swarm_scheduler_decisions_total",
		"Tasks the scheduler decided on: result=placed were assigned a node, result=unplaced were left pending because no node fits.", kindCounter, "result")
	schedulerPendingTasks = def("swarm_scheduler_pending_tasks",
		"Tasks waiting to be scheduled: wait=turn are queued for the next scheduling pass, wait=capacity fit no node and wait for one to change.", kindGauge, "wait")
	schedulerLatency = def("swarm_scheduler_decision_latency_seconds",
		"Time from a task's PENDING status to the proposal of its assignment.", kindHistogram)
	dispatcherAssignments = def("swarm_dispatcher_assignments_sent_total",
		"Assignment messages sent to agents: kind=full carry the whole set, kind=incremental the changes.", kindCounter, "kind")
	orchestratorTransitions = def("swarm_orchestrator_task_transitions_total",
		"Task state transitions seen in the store, by the state entered (a new task counts as entering its first state).", kindCounter, "state")
	agentAssignments = def("swarm_agent_assignments_received_total",
		"Assignment messages the agent applied: kind=full carry the whole set, kind=incremental the changes.", kindCounter, "kind")
)

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
