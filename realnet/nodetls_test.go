package realnet

import (
	"testing"
	"time"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/ca"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/raft"
)

func caAuthorize(p env.Peer, method string) error { return ca.Authorize(method, p) }

// clusterCA bootstraps a cluster CA at now and returns it with a function
// that issues a node's credentials under it.
func clusterCA(t *testing.T, now time.Time) (*ca.Bootstrap, func(env.NodeID, env.Role) *ca.Credentials) {
	t.Helper()
	rnd := NewRand()
	boot, err := ca.NewBootstrap(rnd, now)
	if err != nil {
		t.Fatal(err)
	}
	return boot, func(id env.NodeID, role env.Role) *ca.Credentials {
		c, err := boot.Issue(id, role, rnd, now, 0)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
}

// Over the CA's TLS: a joiner without a certificate reaches a manager
// pinned by its token and gets the CA's answer on its own stream, and
// nothing else; a joiner whose token names another root reaches nobody; a
// worker is known by its certificate and refused raft.
func TestNodeTLS(t *testing.T) {
	rnd, now := NewRand(), time.Now()
	boot, issue := clusterCA(t, now)
	mgr := issue("m", env.RoleManager)
	org := mgr.Cert.Peer.Org
	m := startNode(t, "m", TransportConfig{Role: env.RoleManager, TLS: NewNodeTLS(mgr, "", nil).Config(), Authorize: caAuthorize})
	j := startNode(t, "j", TransportConfig{Role: env.RoleWorker, TLS: NewNodeTLS(nil, boot.Tokens.GetWorker(), nil).Config(), Authorize: caAuthorize})

	j.tr.Book().Learn("m", m.addr, true, AddrStatic)
	j.tr.Send("m", &api.IssueNodeCertificate{RequestId: 7, NodeId: "j", Token: boot.Tokens.GetWorker()})
	m.waitFor(t, 1)
	m.mu.Lock()
	from := m.from[0]
	m.mu.Unlock()
	if from != (env.Peer{ID: "j"}) {
		t.Fatalf("a joiner without a certificate seen as %+v", from)
	}
	// Not a CA answer: it would need a dial, and j serves nothing yet.
	m.tr.Send("j", &api.Assignments{})
	m.tr.Send("j", &api.IssueNodeCertificateResponse{RequestId: 7})
	j.waitFor(t, 1)
	j.mu.Lock()
	if len(j.got) != 1 || j.got[0].Method() != api.MethodIssueNodeCertificateResponse || j.from[0] != (env.Peer{ID: "m", Role: env.RoleManager, Org: org}) {
		t.Fatalf("the joiner got %v from %v", j.got, j.from)
	}
	j.mu.Unlock()

	// A token naming another root: the handshake fails, nothing goes.
	other, err := ca.NewBootstrap(rnd, now)
	if err != nil {
		t.Fatal(err)
	}
	x := startNode(t, "x", TransportConfig{Role: env.RoleWorker, TLS: NewNodeTLS(nil, other.Tokens.GetWorker(), nil).Config(), Authorize: caAuthorize})
	x.tr.Book().Learn("m", m.addr, true, AddrStatic)
	x.tr.Send("m", &api.IssueNodeCertificate{RequestId: 8, NodeId: "x", Token: other.Tokens.GetWorker()})
	for x.tr.PeerStats("m").Lost == 0 && !ctxDone(t) {
		time.Sleep(10 * time.Millisecond)
	}

	// A worker: known by its certificate, whatever it claims; refused raft.
	w := startNode(t, "w", TransportConfig{Role: env.RoleManager, TLS: NewNodeTLS(issue("w", env.RoleWorker), "", nil).Config(), Authorize: caAuthorize})
	w.tr.Book().Learn("m", m.addr, true, AddrStatic)
	w.tr.Send("m", &raft.Message{Removed: true})
	w.tr.Send("m", &api.Heartbeat{SessionId: "s"})
	m.waitFor(t, 2)
	m.mu.Lock()
	if len(m.got) != 2 || m.got[1].Method() != api.MethodHeartbeat || m.from[1] != (env.Peer{ID: "w", Role: env.RoleWorker, Org: org}) {
		t.Fatalf("the manager got %v from %v", m.got, m.from)
	}
	if d := m.tr.Stats().Denied; d != 1 {
		t.Fatalf("%d messages denied, want the worker's raft message", d)
	}
	m.mu.Unlock()

	// An impostor without a certificate claims w's ID: w's renewal answer
	// still goes to w, whose certificate opened a stream.
	imp := startNode(t, "w", TransportConfig{Role: env.RoleWorker, TLS: NewNodeTLS(nil, boot.Tokens.GetWorker(), nil).Config(), Authorize: caAuthorize})
	imp.tr.Book().Learn("m", m.addr, true, AddrStatic)
	imp.tr.Send("m", &api.IssueNodeCertificate{RequestId: 9, NodeId: "w", Token: boot.Tokens.GetWorker()})
	m.waitFor(t, 3)
	m.tr.Send("w", &api.IssueNodeCertificateResponse{RequestId: 9})
	deadline := time.Now().Add(5 * time.Second)
	for {
		w.mu.Lock()
		n := len(w.got)
		w.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("w's answer did not reach w")
		}
		time.Sleep(10 * time.Millisecond)
	}
	imp.mu.Lock()
	defer imp.mu.Unlock()
	if len(imp.got) != 0 {
		t.Fatalf("the impostor got %v", imp.got)
	}
}

// A node whose clock runs past its peers' certificates' NotAfter refuses
// them, so nothing it sends gets through; set right (Loop.SetSkew), it
// reaches them again. Its monotonic clock never moved.
func TestNodeTLSSkewedClock(t *testing.T) {
	now := time.Now()
	_, issue := clusterCA(t, now)
	clock := NewLoop()
	defer clock.Stop()
	m := startNode(t, "m", TransportConfig{Role: env.RoleManager, TLS: NewNodeTLS(issue("m", env.RoleManager), "", nil).Config(), Authorize: caAuthorize})
	w := startNode(t, "w", TransportConfig{Role: env.RoleWorker, TLS: NewNodeTLS(issue("w", env.RoleWorker), "", clock.Now).Config(), Authorize: caAuthorize})
	w.tr.Book().Learn("m", m.addr, true, AddrStatic)

	mono := clock.Monotonic()
	clock.SetSkew(100 * 24 * time.Hour) // past the 90 days certificates last
	if d := clock.Now().Sub(now); d < 100*24*time.Hour {
		t.Fatalf("skewed clock reads %v after the certificates were issued", d)
	}
	if d := clock.Monotonic() - mono; d < 0 || d > time.Hour {
		t.Fatalf("the monotonic clock moved by %v", d)
	}
	w.tr.Send("m", &api.Heartbeat{SessionId: "s"})
	got := 0
	for w.tr.PeerStats("m").Lost == 0 && got == 0 && !ctxDone(t) {
		time.Sleep(10 * time.Millisecond)
		m.mu.Lock()
		got = len(m.got)
		m.mu.Unlock()
	}
	if got != 0 {
		t.Fatalf("the manager got %d messages from a worker whose clock says its certificate expired", got)
	}

	clock.SetSkew(0)
	for {
		w.tr.Send("m", &api.Heartbeat{SessionId: "s"})
		m.mu.Lock()
		got := len(m.got)
		m.mu.Unlock()
		if got > 0 {
			return
		}
		if ctxDone(t) {
			t.Fatal("the worker set right did not reach the manager")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
