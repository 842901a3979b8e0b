package ca_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/ca"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/manager"
	"github.com/swarmsim/swarmsim/engine/raft"
	"github.com/swarmsim/swarmsim/sim"
	"github.com/swarmsim/swarmsim/sim/cluster"
)

// harness is a small simulated cluster whose nodes authenticate with the
// CA, and a record of every admission decision.
type harness struct {
	t         *testing.T
	k         *sim.Kernel
	c         *cluster.Cluster
	decisions []ca.Decision
}

func newHarness(t *testing.T, seed uint64, expiry time.Duration, managers, workers []string) *harness {
	t.Helper()
	h := &harness{t: t, k: sim.NewKernel(seed)}
	t.Cleanup(h.k.Activate())
	h.c = cluster.NewCluster(h.k, cluster.ClusterConfig{
		Network:    sim.LinkModel{Latency: sim.Fixed(time.Millisecond)},
		DiskSync:   sim.Fixed(time.Millisecond),
		Raft:       raft.Config{Tick: 100 * time.Millisecond, ElectionTicks: 10, HeartbeatTicks: 1},
		Cluster:    &api.ClusterSpec{Name: "test", Ca: &api.CAConfig{NodeCertExpiry: int64(expiry)}},
		OnDecision: func(d ca.Decision) { h.decisions = append(h.decisions, d) },
	})
	if err := h.c.Bootstrap(managers, workers, nil); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) runUntil(d time.Duration, what string, cond func() bool) {
	h.t.Helper()
	if h.k.RunUntil(h.k.Now()+d, cond) && !cond() {
		h.t.Fatalf("%s: not within %v", what, d)
	}
}

func (h *harness) leader() *cluster.Machine {
	h.t.Helper()
	var m *cluster.Machine
	h.runUntil(30*time.Second, "a leader", func() bool {
		var ok bool
		m, ok = h.c.Leader()
		return ok
	})
	return m
}

// call runs f on the leader's loop and runs the kernel until it is done.
func (h *harness) call(f func(mgr *manager.Manager, done func(error))) error {
	h.t.Helper()
	l := h.leader()
	var result error
	finished := false
	l.Kernel.Post(func() {
		f(l.Engine.Manager(), func(err error) { result, finished = err, true })
	})
	h.runUntil(30*time.Second, "the call", func() bool { return finished })
	return result
}

func (h *harness) ready(name string) bool {
	m := h.c.Machine(name)
	l, ok := h.c.Leader()
	if !ok || m == nil {
		return false
	}
	n := l.Engine.Manager().Store().Node(name)
	return n.GetStatus().GetState() == api.NodeState_NODE_STATE_READY && !n.GetRemoved()
}

func (h *harness) allReady(names ...string) func() bool {
	return func() bool {
		for _, n := range names {
			if !h.ready(n) {
				return false
			}
		}
		return true
	}
}

// The managers of a fixed cluster start with their certificates; workers
// join with the worker token; every node ends up with a certificate naming
// it and its role, in one cluster, and registered under its name.
func TestNodesJoinWithTokens(t *testing.T) {
	h := newHarness(t, 1, 0, []string{"m1", "m2", "m3"}, []string{"w1", "w2"})
	h.runUntil(30*time.Second, "all nodes ready", h.allReady("m1", "m2", "m3", "w1", "w2"))
	org := ""
	for _, m := range h.c.Machines() {
		cert := h.c.Certificate(m.Name)
		if cert == nil {
			t.Fatalf("%s has no certificate", m.Name)
		}
		want := env.RoleWorker
		if m.Manager {
			want = env.RoleManager
		}
		if cert.Peer.ID != env.NodeID(m.Name) || cert.Peer.Role != want {
			t.Errorf("%s's certificate names %+v", m.Name, cert.Peer)
		}
		if org == "" {
			org = cert.Peer.Org
		} else if cert.Peer.Org != org {
			t.Errorf("%s is in cluster %q, not %q", m.Name, cert.Peer.Org, org)
		}
		if exp := cert.Leaf.NotAfter.Sub(cert.IssuedAt()); exp != ca.DefaultNodeCertExpiry {
			t.Errorf("%s's certificate lasts %v", m.Name, exp)
		}
	}
	if got := h.c.Machine("w1").Engine.CA().Stats().Joins; got != 1 {
		t.Errorf("w1 joined %d times", got)
	}
	// Each client's counters and role agree with what it decided and holds.
	admitted, refused := map[env.NodeID]uint64{}, map[env.NodeID]uint64{}
	for _, d := range h.decisions {
		if d.Err == nil {
			admitted[d.To]++
		} else {
			refused[d.To]++
		}
	}
	for _, m := range h.c.Machines() {
		c, id := m.Engine.CA(), env.NodeID(m.Name)
		st := c.Stats()
		if st.MessagesAdmitted != admitted[id] || st.MessagesRefused != refused[id] || admitted[id] == 0 {
			t.Errorf("%s counts %d admitted and %d refused; its decisions were %d and %d",
				m.Name, st.MessagesAdmitted, st.MessagesRefused, admitted[id], refused[id])
		}
		if c.Role() != h.c.Certificate(m.Name).Peer.Role {
			t.Errorf("%s's client says role %v, its certificate %v", m.Name, c.Role(), h.c.Certificate(m.Name).Peer.Role)
		}
	}
}

// After `join-token --rotate worker` the old worker token gets nothing; the
// new one works; the manager token is unchanged.
func TestRotatedTokenIsRefused(t *testing.T) {
	h := newHarness(t, 2, 0, []string{"m1"}, []string{"w1"})
	h.runUntil(30*time.Second, "w1 ready", h.allReady("w1"))
	old := h.c.JoinTokens() // store objects are immutable: a rotation writes a new one
	if err := h.call(func(mgr *manager.Manager, done func(error)) { mgr.CA().RotateJoinToken(env.RoleWorker, done) }); err != nil {
		t.Fatal(err)
	}
	now := h.c.JoinTokens()
	if now.Worker == old.Worker || now.Manager != old.Manager {
		t.Fatalf("rotation changed the wrong token: %v -> %v", old, now)
	}
	late, err := h.c.AddWorkerWithToken("w2", cluster.NodeShape{}, old.Worker)
	if err != nil {
		t.Fatal(err)
	}
	h.runUntil(30*time.Second, "w2 refused", func() bool { return late.Engine.CA().Refused() != nil })
	h.k.RunUntil(h.k.Now()+10*time.Second, nil)
	if late.Engine.CA().Ready() || h.c.Certificate("w2") != nil {
		t.Fatal("a worker with a rotated token got a certificate")
	}
	if n := h.leader().Engine.Manager().Store().Node("w2"); n != nil {
		t.Fatalf("a worker with a rotated token was recorded: %v", n)
	}
	if _, err := h.c.AddWorker("w3", cluster.NodeShape{}); err != nil {
		t.Fatal(err)
	}
	h.runUntil(30*time.Second, "w3 ready with the new token", h.allReady("w3"))
}

// A removed node's certificate is refused from then on: it opens no
// session, renews nothing, and cannot join again with a valid token.
func TestRemovedNodeIsRefused(t *testing.T) {
	h := newHarness(t, 3, 0, []string{"m1"}, []string{"w1", "w2"})
	h.runUntil(30*time.Second, "workers ready", h.allReady("w1", "w2"))
	if err := h.c.Crash("w1"); err != nil {
		t.Fatal(err)
	}
	if err := h.call(func(mgr *manager.Manager, done func(error)) { mgr.Control().RemoveNode("w1", true, done) }); err != nil {
		t.Fatal(err)
	}
	if err := h.c.Restart("w1"); err != nil {
		t.Fatal(err)
	}
	w1 := h.c.Machine("w1")
	before := len(h.decisions)
	h.k.RunUntil(h.k.Now()+30*time.Second, nil)
	if h.ready("w1") {
		t.Fatal("a removed node is ready again")
	}
	refused := 0
	for _, d := range h.decisions[before:] {
		if d.From.ID != "w1" || d.To != "m1" {
			continue
		}
		if d.Err == nil {
			t.Errorf("m1 admitted %s from removed w1", d.Method)
		} else if errors.Is(d.Err, ca.ErrNodeRemoved) {
			refused++
		}
	}
	if refused == 0 {
		t.Fatal("w1 sent nothing m1 refused as removed: the test proves nothing")
	}
	// Its renewal is refused too (before the CA sees it: no answer), and
	// a join with the valid worker token under its ID gets a refusal.
	cert := h.c.Certificate("w1")
	before = len(h.decisions)
	w1.Kernel.Post(func() { w1.Engine.CA().WantRole(env.RoleManager) })
	h.k.RunUntil(h.k.Now()+30*time.Second, nil)
	if h.c.Certificate("w1") != cert || w1.Engine.CA().Stats().Renewals != 0 {
		t.Fatal("a removed node renewed its certificate")
	}
	asked := false
	for _, d := range h.decisions[before:] {
		if d.From.ID == "w1" && d.Method == api.MethodIssueNodeCertificate {
			asked = true
			if !errors.Is(d.Err, ca.ErrNodeRemoved) {
				t.Errorf("renewal of removed w1: %v", d.Err)
			}
		}
	}
	if !asked {
		t.Fatal("w1 never asked to renew: the test proves nothing")
	}
	if err := h.c.Crash("w1"); err != nil {
		t.Fatal(err)
	}
	w1.Disk.Wipe()
	if err := h.c.Restart("w1"); err != nil {
		t.Fatal(err)
	}
	h.runUntil(30*time.Second, "join refused", func() bool { return w1.Engine.CA().Refused() != nil })
	if err := w1.Engine.CA().Refused(); !strings.Contains(err.Error(), "REMOVED") {
		t.Errorf("join of removed w1 refused with %v", err)
	}
	if w1.Engine.CA().Ready() {
		t.Fatal("a removed node joined again with a token")
	}
}

// Certificates renew between 50% and 80% of their life, so a cluster whose
// certificates last 30m runs for 2h without losing a node.
func TestCertificatesRenew(t *testing.T) {
	h := newHarness(t, 4, 30*time.Minute, []string{"m1", "m2", "m3"}, []string{"w1"})
	names := []string{"m1", "m2", "m3", "w1"}
	h.runUntil(30*time.Second, "ready", h.allReady(names...))
	first := map[string]*ca.Certificate{}
	for _, n := range names {
		first[n] = h.c.Certificate(n)
	}
	for i := 0; i < 8; i++ {
		h.k.RunUntil(h.k.Now()+15*time.Minute, nil)
		if !h.allReady(names...)() {
			t.Fatalf("after %v a node is not ready", h.k.Now())
		}
	}
	for _, n := range names {
		m := h.c.Machine(n)
		renewals := m.Engine.CA().Stats().Renewals
		if renewals < 4 || renewals > 9 {
			t.Errorf("%s renewed %d times in 2h of 30m certificates", n, renewals)
		}
		cert := h.c.Certificate(n)
		if cert == first[n] {
			t.Errorf("%s still presents its first certificate", n)
		}
		if now := sim.Epoch.Add(h.k.Now()); now.After(cert.Leaf.NotAfter) {
			t.Errorf("%s presents an expired certificate", n)
		}
	}
}

// Promotion reissues the certificate with the manager role before the
// node asks to join raft; the node then votes.
func TestPromotionIssuesAManagerCertificate(t *testing.T) {
	h := newHarness(t, 5, 0, []string{"m1", "m2", "m3"}, []string{"w1"})
	h.runUntil(30*time.Second, "ready", h.allReady("w1"))
	if err := h.call(func(mgr *manager.Manager, done func(error)) {
		mgr.Control().PromoteNode("w1", func(_ *api.Node, err error) { done(err) })
	}); err != nil {
		t.Fatal(err)
	}
	h.runUntil(60*time.Second, "w1 votes", func() bool {
		l, ok := h.c.Leader()
		if !ok {
			return false
		}
		mb, ok := l.Engine.Manager().Raft().MemberByNode("w1")
		return ok && !mb.Learner
	})
	if r := h.c.Certificate("w1").Peer.Role; r != env.RoleManager {
		t.Fatalf("w1 votes with a %s certificate", r)
	}
	// Every raft message w1 sent was sent with a manager certificate.
	for _, d := range h.decisions {
		if d.From.ID == "w1" && d.Method == raft.MethodStep && d.Err == nil && d.From.Role != env.RoleManager {
			t.Fatalf("raft admitted from w1 as %s", d.From.Role)
		}
	}
}

// A root rotation ends with every node holding a certificate of the new
// root, new join tokens, and no node having lost contact on the way.
func TestRootRotation(t *testing.T) {
	h := newHarness(t, 6, 0, []string{"m1", "m2", "m3"}, []string{"w1", "w2"})
	names := []string{"m1", "m2", "m3", "w1", "w2"}
	h.runUntil(30*time.Second, "ready", h.allReady(names...))
	oldTokens := h.c.JoinTokens()
	if err := h.call(func(mgr *manager.Manager, done func(error)) { mgr.CA().RotateRootCA(done) }); err != nil {
		t.Fatal(err)
	}
	if err := h.call(func(mgr *manager.Manager, done func(error)) { mgr.CA().RotateRootCA(done) }); !errors.Is(err, ca.ErrRotationInProgress) {
		t.Fatalf("a second rotation while one runs: %v", err)
	}
	h.runUntil(2*time.Minute, "the rotation finishes", func() bool {
		l, ok := h.c.Leader()
		return ok && !l.Engine.Manager().CA().Rotating()
	})
	root := h.leader().Engine.Manager().CA().SigningRoot()
	for _, n := range names {
		if !h.c.Certificate(n).IssuedBy(root) {
			t.Errorf("%s's certificate is not of the new root", n)
		}
		if roots := h.c.Machine(n).Engine.CA().Trust().Roots(); len(roots) != 1 {
			h.k.RunUntil(h.k.Now()+30*time.Second, nil) // the next poll narrows it
			if roots = h.c.Machine(n).Engine.CA().Trust().Roots(); len(roots) != 1 {
				t.Errorf("%s still trusts %d roots", n, len(roots))
			}
		}
	}
	if !h.allReady(names...)() {
		t.Error("a node lost contact during the rotation")
	}
	if now := h.c.JoinTokens(); now.Worker == oldTokens.Worker || now.Manager == oldTokens.Manager {
		t.Error("the join tokens still name the old root")
	}
	if _, err := h.c.AddWorker("w3", cluster.NodeShape{}); err != nil {
		t.Fatal(err)
	}
	h.runUntil(30*time.Second, "w3 joins under the new root", h.allReady("w3"))
}

// The dispatcher sends a node only its own tasks, and keys sessions on the
// authenticated sender: a heartbeat naming another node's session gets
// nothing of that node's.
func TestWorkersSeeOnlyTheirOwnTasks(t *testing.T) {
	h := newHarness(t, 7, 0, []string{"m1"}, []string{"w1", "w2", "w3"})
	h.runUntil(30*time.Second, "ready", h.allReady("w1", "w2", "w3"))
	spec := &api.ServiceSpec{
		Name: "web",
		Task: &api.TaskSpec{Container: &api.ContainerSpec{Image: "web:1"}},
		Mode: &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: 9}},
	}
	if err := h.call(func(mgr *manager.Manager, done func(error)) {
		mgr.Control().CreateService(spec, func(_ *api.Service, err error) { done(err) })
	}); err != nil {
		t.Fatal(err)
	}
	h.k.RunUntil(h.k.Now()+20*time.Second, nil)
	w2Session := h.c.Machine("w2").Engine.Agent().SessionID()
	if w2Session == "" {
		t.Fatal("w2 has no session")
	}
	// w1 asks for w2's assignments with w2's session ID.
	w1 := h.c.Machine("w1")
	w1.Kernel.Post(func() { w1.Endpoint.Send("m1", &api.Heartbeat{SessionId: w2Session, Resync: true}) })
	h.k.RunUntil(h.k.Now()+5*time.Second, nil)
	sent := 0
	for _, d := range h.decisions {
		a, ok := d.Msg.(*api.Assignments)
		if !ok || d.Err != nil {
			continue
		}
		for _, task := range a.GetTasks() {
			sent++
			if task.GetNodeId() != string(d.To) {
				t.Errorf("%s was sent task %s of %s", d.To, task.GetId(), task.GetNodeId())
			}
		}
	}
	if sent < 9 {
		t.Fatalf("only %d task assignments seen: the test proves nothing", sent)
	}
}
