package scenarios

import (
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/ca"
	"github.com/swarmsim/swarmsim/engine/controlapi"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/manager"
	"github.com/swarmsim/swarmsim/engine/raft"
	"github.com/swarmsim/swarmsim/sim"
	"github.com/swarmsim/swarmsim/sim/cluster"
)

// The security steps in the simulator. The checks stand outside the code
// under test: every node reports each admission decision it takes
// (cluster.ClusterConfig.OnDecision), and the world judges them.
//
//   - compromise: X — an attacker with X's certificate and key sends, over
//     the simulated transport and under X's identity, every manager-only
//     call to every manager (every control API method, raft messages that
//     would depose the leader or stop a manager, raft membership, CA
//     notices), dispatcher answers to the other workers, and asks the
//     leader for the other nodes' tasks, secrets and configs (their session
//     IDs, their tasks' status) and for a certificate naming another node or
//     role. The step fails if any node admits a manager-only call from it, or
//     if X is ever sent another node's task, secret, config or certificate.
//     When X was removed from the cluster, every call at all must be
//     refused: its certificate is still within its validity, and is the
//     only thing that would let a removed node back in.
//   - rotate_join_token: R — the leader rotates R's token; the old one is
//     kept for join_with_old_token.
//   - join_with_old_token: X — a new worker X joins with the rotated worker
//     token; the step finishes once the cluster refused it, and fails if X
//     got a certificate or a node object. X then leaves.
//   - rotate_root_ca — the leader starts a root rotation; the root_rotated
//     condition holds once the rotation finished and every node presents a
//     certificate of the new root.
//
// All through the run, every delivered Assignments is checked: a node is
// only ever sent its own tasks and the secrets and configs those tasks
// reference (the dispatcher's least privilege).

// probeSettle is how long a compromise waits for its probes to arrive and
// be answered before judging them.
const probeSettle = 3 * time.Second

// securityState is the world's record of the security steps.
type securityState struct {
	w *SimWorld
	// probes are the attacker's messages (the simulator delivers them by
	// pointer, so a decision on one is recognized as it).
	probes map[env.Message]probe
	// breaches are what an attacker got, and what any node was sent that
	// was not its own; each fails the step that reveals it.
	breaches []string
	// held is, per node, the tasks it was last sent and the secrets and
	// configs they reference.
	held map[env.NodeID]map[string]*api.Task
	// oldTokens are rotated join tokens, by role.
	oldTokens map[string]string
	// rotations counts the root rotations started; oldRoot is the signing
	// root before the last one.
	rotations int
	oldRoot   *x509.Certificate
	// stats for the summary.
	probesSent, probesRefused, probesLost int
	attackers                             int
}

type probe struct {
	target env.NodeID // the node the attacker impersonates
	what   string
	// member: a call any member may make (a session, a heartbeat, a
	// renewal), admitted for a node in the cluster and judged by what it
	// gets; refused for a removed node.
	member  bool
	removed bool
	decided bool
}

func newSecurityState(w *SimWorld) *securityState {
	return &securityState{
		w:         w,
		probes:    map[env.Message]probe{},
		held:      map[env.NodeID]map[string]*api.Task{},
		oldTokens: map[string]string{},
	}
}

// onDecision hears every admission decision of every node.
func (s *securityState) onDecision(d ca.Decision) {
	// Most runs have no probe: skip the lookup, which for an interface
	// key checks the key's type even in an empty map, on every message.
	if len(s.probes) > 0 {
		if p, ok := s.probes[d.Msg]; ok && !p.decided {
			p.decided = true
			s.probes[d.Msg] = p
			switch {
			case d.Err != nil:
				s.probesRefused++
			case !p.member || p.removed:
				s.breach(fmt.Sprintf("%s admitted %s from the attacker holding %s's certificate (%s)", d.To, d.Method, p.target, p.what))
			}
		}
	}
	if d.Err != nil {
		return
	}
	switch m := d.Msg.(type) {
	case *api.Assignments:
		s.checkAssignments(d.To, m)
	case *api.IssueNodeCertificateResponse:
		s.checkIssued(d.To, m)
	}
}

func (s *securityState) breach(what string) {
	if len(s.breaches) < 20 {
		s.breaches = append(s.breaches, what)
	}
}

// checkAssignments follows what a node holds and checks that each task,
// secret and config sent is its own or referenced by its own tasks.
func (s *securityState) checkAssignments(to env.NodeID, m *api.Assignments) {
	held := s.held[to]
	if m.GetFull() || held == nil {
		held = map[string]*api.Task{}
		s.held[to] = held
	}
	for _, id := range m.GetRemoved() {
		delete(held, id)
	}
	for _, t := range m.GetTasks() {
		if t.GetNodeId() != string(to) {
			s.breach(fmt.Sprintf("%s was sent task %s of node %s", to, t.GetId(), t.GetNodeId()))
			continue
		}
		held[t.GetId()] = t
	}
	secrets, configs := map[string]bool{}, map[string]bool{}
	for _, t := range held {
		for _, r := range t.GetSpec().GetContainer().GetSecrets() {
			secrets[r.GetSecretId()] = true
		}
		for _, r := range t.GetSpec().GetContainer().GetConfigs() {
			configs[r.GetConfigId()] = true
		}
	}
	for _, x := range m.GetSecrets() {
		if !secrets[x.GetId()] {
			s.breach(fmt.Sprintf("%s was sent secret %q that none of its tasks uses", to, x.GetSpec().GetName()))
		}
	}
	for _, x := range m.GetConfigs() {
		if !configs[x.GetId()] {
			s.breach(fmt.Sprintf("%s was sent config %q that none of its tasks uses", to, x.GetSpec().GetName()))
		}
	}
}

// checkIssued checks that a certificate sent to a node names that node.
func (s *securityState) checkIssued(to env.NodeID, m *api.IssueNodeCertificateResponse) {
	if len(m.GetCertificate()) == 0 {
		return
	}
	leaf, err := x509.ParseCertificate(m.GetCertificate())
	if err != nil {
		s.breach(fmt.Sprintf("%s was sent a certificate that does not parse", to))
		return
	}
	if leaf.Subject.CommonName != string(to) {
		s.breach(fmt.Sprintf("%s was sent a certificate naming %s", to, leaf.Subject.CommonName))
	}
	n := s.w.check.shadow.Node(string(to))
	if slices.Contains(leaf.Subject.OrganizationalUnit, ca.OUManager) && n != nil &&
		n.GetSpec().GetDesiredRole() != api.NodeRole_NODE_ROLE_MANAGER && n.GetRole() != api.NodeRole_NODE_ROLE_MANAGER {
		s.breach(fmt.Sprintf("%s, a worker, was sent a manager certificate", to))
	}
}

// controlCall stands for a control API call over the transport, as
// realnet's gRPC Control service carries them: the attacker's way of
// calling the control API from a worker.
type controlCall struct{ method string }

func (c *controlCall) Method() string { return c.method }

// applySecurity performs the security steps; false for other actions.
func (w *SimWorld) applySecurity(a Action, targets []string, done func(error)) bool {
	s := w.sec
	switch a := a.(type) {
	case Compromise:
		s.compromise(targets[0], done)
	case RotateJoinToken:
		role := env.RoleWorker
		if a.Role == "manager" {
			role = env.RoleManager
		}
		old := w.c.JoinTokens()
		w.leaderCall(func(mgr *manager.Manager, d func(error)) {
			mgr.CA().RotateJoinToken(role, d)
		}, func(err error) {
			if err == nil {
				if role == env.RoleManager {
					s.oldTokens[a.Role] = old.GetManager()
				} else {
					s.oldTokens[a.Role] = old.GetWorker()
				}
			}
			done(err)
		})
	case JoinWithOldToken:
		s.joinWithOldToken(a.Name, done)
	case RotateRootCA:
		var before *x509.Certificate
		w.leaderCall(func(mgr *manager.Manager, d func(error)) {
			before = mgr.CA().SigningRoot()
			mgr.CA().RotateRootCA(d)
		}, func(err error) {
			if err == nil {
				s.rotations++
				s.oldRoot = before
			}
			done(err)
		})
	default:
		return false
	}
	return true
}

// holdsSecurity evaluates the security conditions; handled is false for
// other conditions.
func (w *SimWorld) holdsSecurity(c Condition) (ok bool, what string, handled bool) {
	if _, is := c.(RootRotated); !is {
		return false, "", false
	}
	s := w.sec
	if s.rotations == 0 {
		return false, "no root rotation was started", true
	}
	lm := w.leaderManager()
	if lm == nil {
		return false, "no leader", true
	}
	if lm.CA().Rotating() {
		return false, fmt.Sprintf("rotation in progress: %s", s.rotationProgress(lm.CA().SigningRoot())), true
	}
	root := lm.CA().SigningRoot()
	if s.oldRoot != nil && root.Equal(s.oldRoot) {
		return false, "the leader still signs with the old root", true
	}
	if p := s.rotationProgress(root); !strings.HasPrefix(p, "all") {
		return false, p, true
	}
	return true, "every node holds a certificate of the new root", true
}

// rotationProgress says how many nodes present a certificate of root.
func (s *securityState) rotationProgress(root *x509.Certificate) string {
	var behind []string
	n := 0
	for _, m := range s.w.c.Machines() {
		if m.Status == cluster.NodeRemoved {
			continue
		}
		n++
		if c := s.w.c.Certificate(m.Name); c == nil || !c.IssuedBy(root) {
			behind = append(behind, m.Name)
		}
	}
	if len(behind) == 0 {
		return fmt.Sprintf("all %d nodes", n)
	}
	return fmt.Sprintf("%d of %d nodes on the new root (not %s)", n-len(behind), n, compactNames(behind))
}

// ---- compromise

// attacker is a machine of the attacker's on the simulated network, whose
// messages claim X's identity: the handshake then sees X's certificate,
// which the attacker holds.
func (s *securityState) attacker(target env.NodeID) (*sim.Endpoint, *sim.Rand) {
	s.attackers++
	name := fmt.Sprintf("attacker-%d-%s", s.attackers, target)
	kn := s.w.k.AddNode(name)
	ep := s.w.c.Net.Attach(kn, env.NodeID(name), nil)
	ep.SetIdentity(env.Peer{ID: target})
	return ep, kn.Rand("attacker")
}

func (s *securityState) compromise(name string, done func(error)) {
	w := s.w
	target := env.NodeID(name)
	m := w.c.Machine(name)
	cert := w.c.Certificate(name)
	if m == nil || cert == nil {
		done(fmt.Errorf("compromise %s: it has no certificate to steal", name))
		return
	}
	if cert.Peer.Role == env.RoleManager {
		done(fmt.Errorf("compromise %s: a manager's certificate may call everything; compromise a worker", name))
		return
	}
	removed := m.Status == cluster.NodeRemoved
	ep, rnd := s.attacker(target)
	before := len(s.breaches)
	sent := 0
	send := func(to env.NodeID, msg env.Message, what string, member bool) {
		s.probes[msg] = probe{target: target, what: what, member: member, removed: removed}
		sent++
		ep.Send(to, msg)
	}

	var managers, workers []*cluster.Machine
	for _, x := range w.c.Machines() {
		if x.Status != cluster.NodeUp || x.Name == name {
			continue
		}
		if x.Manager {
			managers = append(managers, x)
		} else {
			workers = append(workers, x)
		}
	}
	lm := w.leaderManager()
	var members []raft.Member
	if lm != nil {
		members = lm.Raft().Members()
	}
	raftID := func(id string) uint64 {
		for _, mb := range members {
			if string(mb.NodeID) == id {
				return mb.RaftID
			}
		}
		return 0
	}
	fakeRaftID := uint64(0xbad0000000000000) | uint64(len(name))
	methods := append(slices.Clone(controlapi.Methods), ca.MethodGetJoinTokens, ca.MethodRotateJoinToken, ca.MethodRotateRootCA)

	// Manager-only calls, to every manager.
	for _, mg := range managers {
		to := env.NodeID(mg.Name)
		for _, meth := range methods {
			send(to, &controlCall{meth}, "control API", false)
		}
		rid := raftID(mg.Name)
		huge := uint64(1) << 40
		send(to, &raft.Message{Raft: &pb.Message{Type: pb.MsgVote.Enum(), From: &fakeRaftID, To: &rid, Term: &huge, Index: &huge, LogTerm: &huge}}, "a raft vote at a huge term", false)
		if len(members) > 0 {
			leaderRID := raftID(w.Leader())
			send(to, &raft.Message{Raft: &pb.Message{From: &leaderRID, To: &rid}, Removed: true}, "a raft removal notice in the leader's name", false)
		}
		send(to, &api.RaftJoinRequest{RequestId: 1, Member: &api.RaftMember{RaftId: fakeRaftID, NodeId: name}}, "joining raft", false)
		send(to, &api.RaftJoinResponse{RequestId: 1}, "a raft join answer", false)
		send(to, &api.RootRotation{}, "a root rotation notice", false)
	}
	// Manager answers, to every other worker: a forged assignment.
	for _, wk := range workers {
		to := env.NodeID(wk.Name)
		forged := &api.Task{Id: "forged-" + name, NodeId: wk.Name, DesiredState: api.TaskState_TASK_STATE_RUNNING,
			Spec: &api.TaskSpec{Container: &api.ContainerSpec{Image: "attacker:latest"}}}
		send(to, &api.Assignments{SessionId: wk.Engine.Agent().SessionID(), Seq: 1 << 30, Full: true, Tasks: []*api.Task{forged}}, "forged assignments", false)
		send(to, &api.SessionResponse{}, "a forged session answer", false)
		send(to, &api.HeartbeatResponse{}, "a forged heartbeat answer", false)
		send(to, &api.TaskStatusAck{}, "a forged status ack", false)
		send(to, &api.RootRotation{}, "a forged root rotation", false)
	}
	// Member calls to the leader, fishing for what is not X's: the other
	// nodes' sessions (their assignments, secrets, configs), their tasks'
	// status, a certificate naming another node.
	if l := w.Leader(); l != "" {
		to := env.NodeID(l)
		for _, x := range append(slices.Clone(workers), managers...) {
			if x.Engine == nil {
				continue
			}
			sid := x.Engine.Agent().SessionID()
			if sid == "" {
				continue
			}
			send(to, &api.Heartbeat{SessionId: sid, Resync: true}, "a resync of "+x.Name+"'s session", true)
			var updates []*api.TaskStatusUpdate
			for t := range w.check.shadow.EachTaskByNode(x.Name) {
				updates = append(updates, &api.TaskStatusUpdate{TaskId: t.GetId(), Status: &api.TaskStatus{
					State: api.TaskState_TASK_STATE_FAILED, Message: "compromised by " + name}})
				if len(updates) == 3 {
					break
				}
			}
			send(to, &api.TaskStatusReport{SessionId: sid, Seq: 1 << 40, Updates: updates}, "failing "+x.Name+"'s tasks", true)
		}
		send(to, &api.SessionRequest{Incarnation: 1 << 50, Attempt: 1}, "a session", true)
		if csr, err := ca.NewCSR(ca.NewKey(rnd), rnd); err == nil {
			send(to, &api.IssueNodeCertificate{RequestId: 1, Csr: csr, NodeId: w.Leader(), Name: w.Leader()}, "a certificate naming "+w.Leader(), true)
			forged := ca.JoinToken{Digest: strings.Repeat("0", 50), Secret: strings.Repeat("a", 25)}.String()
			send(to, &api.IssueNodeCertificate{RequestId: 2, Token: forged, Csr: csr, NodeId: name}, "a join with a forged token", true)
		}
		send(to, &api.GetRootCA{RequestId: 3}, "the roots", true)
	}
	s.probesSent += sent

	// Judge once the probes have been delivered and answered.
	w.k.Schedule(probeSettle, sim.KindStep, func() {
		var undecided []string
		for msg, p := range s.probes {
			if p.target == target && !p.decided {
				undecided = append(undecided, p.what)
				delete(s.probes, msg)
			}
		}
		s.probesLost += len(undecided)
		for t := range w.check.shadow.EachTask() {
			if strings.HasPrefix(t.GetStatus().GetMessage(), "compromised by ") {
				s.breach(fmt.Sprintf("task %s of %s was failed by the attacker", t.GetId(), t.GetNodeId()))
			}
		}
		w.notes = append(w.notes, fmt.Sprintf("security: compromise of %s at %s: %d calls sent, %d refused, %d lost in the network",
			name, FormatDuration(w.Now()), sent, sent-len(undecided)-countAdmittedMember(s, target), len(undecided)))
		if len(s.breaches) > before {
			done(fmt.Errorf("the attacker holding %s's certificate got through: %s", name, strings.Join(s.breaches[before:], "; ")))
			return
		}
		if len(undecided) == sent {
			done(errors.New("none of the attacker's calls arrived: the step proves nothing"))
			return
		}
		done(nil)
	})
}

// countAdmittedMember counts the member calls admitted (and then judged by
// what they got) for target.
func countAdmittedMember(s *securityState, target env.NodeID) int {
	n := 0
	for _, p := range s.probes {
		if p.target == target && p.member && !p.removed && p.decided {
			n++
		}
	}
	return n
}

// ---- joining with a rotated token

func (s *securityState) joinWithOldToken(name string, done func(error)) {
	w := s.w
	old := s.oldTokens["worker"]
	if old == "" {
		done(errors.New("join_with_old_token: the worker token was never rotated"))
		return
	}
	shape := simShape(Resources{NanoCPUs: DefaultNanoCPUs, MemoryBytes: DefaultMemoryBytes}, nil)
	m, err := w.c.AddWorkerWithToken(name, shape, old)
	if err != nil {
		done(err)
		return
	}
	deadline := w.Now() + 30*time.Second
	var poll func()
	poll = func() {
		gotIn := w.c.Certificate(name) != nil || w.check.shadow.Node(name) != nil
		switch {
		case gotIn:
			done(fmt.Errorf("%s joined with a rotated token", name))
		case m.Engine != nil && m.Engine.CA().Refused() != nil:
			w.notes = append(w.notes, fmt.Sprintf("security: %s, joining with a rotated token, was refused: %v", name, m.Engine.CA().Refused()))
			done(w.c.Remove(name))
		case w.Now() >= deadline:
			done(fmt.Errorf("%s, joining with a rotated token, got no answer within 30s", name))
		default:
			w.k.Schedule(pollEvery, sim.KindStep, poll)
		}
	}
	poll()
}

// ---- the summary

// securityNotes are the summary lines of a run that used security steps
// or saw certificates renewed or refused.
func (s *securityState) securityNotes() []string {
	var out []string
	if len(s.breaches) > 0 {
		out = append(out, "security: breaches: "+strings.Join(s.breaches, "; "))
	}
	st := s.w.c.SecurityStats()
	renewals, refusedBy := map[string]uint64{}, []string{}
	var total uint64
	for _, m := range s.w.c.Machines() {
		if m.Engine == nil {
			continue
		}
		if r := m.Engine.CA().Stats().Renewals; r > 0 {
			renewals[m.Name] = r
			total += r
		}
	}
	for n, c := range st.RefusedBy {
		refusedBy = append(refusedBy, fmt.Sprintf("%s %d", n, c))
	}
	sort.Strings(refusedBy)
	if total > 0 {
		names := make([]string, 0, len(renewals))
		for n := range renewals {
			names = append(names, n)
		}
		sort.Strings(names)
		parts := make([]string, len(names))
		for i, n := range names {
			parts[i] = fmt.Sprintf("%s %d", n, renewals[n])
		}
		out = append(out, fmt.Sprintf("security: %d certificate renewals (%s)", total, strings.Join(parts, ", ")))
	}
	if st.Refused > 0 {
		out = append(out, fmt.Sprintf("security: %d messages dropped at the handshake (refused by: %s)", st.Refused, strings.Join(refusedBy, ", ")))
	}
	return out
}
