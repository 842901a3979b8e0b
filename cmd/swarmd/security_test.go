package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/swarmsim/swarmsim/engine/ca"
	"github.com/swarmsim/swarmsim/engine/crypt"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/raft"
	"github.com/swarmsim/swarmsim/realnet"
	"github.com/swarmsim/swarmsim/realnet/daemon"
	"github.com/swarmsim/swarmsim/realnet/rpc"
)

// stop stops a daemon with SIGTERM and waits for it.
func (h *harness) stop(p *proc) {
	h.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		h.t.Fatalf("%s did not stop", p.name)
	}
}

// credentials reads a stopped node's CA credentials from its data
// directory.
func (h *harness) credentials(p *proc) *ca.Credentials {
	h.t.Helper()
	c, err := daemon.ReadCredentials(p.dir)
	if err != nil || c == nil {
		h.t.Fatalf("credentials of %s: %v", p.name, err)
	}
	return c
}

// rawStatus is the status fields protojson writes as strings.
type rawStatus struct {
	RaftID   string `json:"raft_id"`
	Term     string `json:"term"`
	IsLeader bool   `json:"is_leader"`
	Locked   bool   `json:"locked"`
}

func (h *harness) rawStatus(p *proc) (rawStatus, bool) {
	out, _, code := h.cli(p.addr, "status", "--format", "json")
	var st rawStatus
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
		return rawStatus{}, false
	}
	return st, true
}

// deniedMessages reads the node's count of messages refused by
// authorization from its /metrics.
func deniedMessages(t *testing.T, httpAddr string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		// swarm_transport_messages_denied_total{node="..."} N
		name, _, _ := strings.Cut(sc.Text(), "{")
		if f := strings.Fields(sc.Text()); len(f) == 2 && name == "swarm_transport_messages_denied_total" {
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatal("no swarm_transport_messages_denied_total in /metrics")
	return 0
}

// callAs dials addr with tc (nil: plain gRPC) and lists the nodes and
// the daemon's status, returning both errors.
func callAs(t *testing.T, addr string, tc *realnet.TLSConfig) (control, daemonErr error) {
	t.Helper()
	conn, err := grpc.NewClient(addr, realnet.DialOptions(tc, 0)...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, control = rpc.NewControlClient(conn).ListNodes(ctx, &rpc.ListNodesRequest{})
	_, daemonErr = rpc.NewDaemonClient(conn).Status(ctx, &rpc.Empty{})
	return control, daemonErr
}

// The cluster runs on mutual TLS with the CA's certificates: a client
// without a certificate, with a worker's, or with another cluster's is
// refused the control API and raft; a removed node's certificate is
// refused everything.
func TestMutualTLS(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	httpAddr := freePort(t)
	m1 := h.start("m1", freePort(t), "init", "--http", httpAddr)
	h.eventually("m1 leads", func() bool { st, ok := h.status(m1); return ok && st.IsLeader })
	wtok := strings.TrimSpace(h.must(m1.addr, "join-token", "-q", "worker"))
	w1 := h.start("w1", freePort(t), "join", "--token", wtok, m1.addr)
	w2 := h.start("w2", freePort(t), "join", "--token", wtok, m1.addr)
	h.eventually("w1, w2 ready", func() bool {
		out, _, code := h.cli(m1.addr, "node", "ls", "--format", "json")
		return code == 0 && strings.Count(out, `"Status":"Ready"`) == 3
	})
	// A promotion reissues the certificate, and raft takes the new one.
	h.must(m1.addr, "node", "promote", "w2")
	h.eventually("w2 a raft voter", func() bool {
		st, ok := h.status(m1)
		if !ok || len(st.Members) != 2 {
			return false
		}
		for _, mb := range st.Members {
			if mb.Learner {
				return false
			}
		}
		w, ok := h.status(w2)
		return ok && w.Role == "manager" && w.Leader == st.NodeID
	})
	h.stop(w1)
	worker := h.credentials(w1)
	if worker.Role() != env.RoleWorker || worker.Cert.Peer.ID == "" {
		t.Fatalf("w1's certificate: %+v", worker.Cert.Peer)
	}
	asWorker := realnet.NewNodeTLS(worker, "", nil).Config()

	// Another cluster's manager.
	x1 := h.start("x1", freePort(t), "init")
	h.eventually("x1 leads", func() bool { st, ok := h.status(x1); return ok && st.IsLeader })
	h.stop(x1)
	stranger := h.credentials(x1)

	// No certificate: plain gRPC gets no handshake; TLS without a client
	// certificate (a joiner's) gets nothing but joining.
	if c, d := callAs(t, m1.addr, nil); c == nil || d == nil {
		t.Fatalf("plain gRPC: control %v, status %v", c, d)
	}
	anon := realnet.NewNodeTLS(nil, wtok, nil).Config()
	if c, d := callAs(t, m1.addr, anon); status.Code(c) != codes.PermissionDenied || status.Code(d) != codes.PermissionDenied {
		t.Fatalf("no certificate: control %v, status %v", c, d)
	}
	if _, errs, code := h.cliTo([]string{"--host", m1.addr}, "", "node", "ls"); code == 0 {
		t.Fatalf("the CLI without a certificate listed nodes over the network (%s)", errs)
	}

	// A worker's certificate: a member, but no manager.
	if c, d := callAs(t, m1.addr, asWorker); status.Code(c) != codes.PermissionDenied || d != nil {
		t.Fatalf("worker certificate: control %v, status %v", c, d)
	}
	// ... nor raft: a heartbeat of a far term would depose the leader.
	st, ok := h.rawStatus(m1)
	if !ok {
		t.Fatal("no status from m1")
	}
	raftID, _ := strconv.ParseUint(st.RaftID, 10, 64)
	before := deniedMessages(t, httpAddr)
	conn, err := grpc.NewClient(m1.addr, realnet.DialOptions(asWorker, 0)...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sctx := metadata.NewOutgoingContext(ctx, metadata.Pairs(realnet.HeaderNodeID, string(worker.Cert.Peer.ID), realnet.HeaderRole, "manager"))
	stream, err := rpc.NewPeerClient(conn).Stream(sctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil { // the server's address book
		t.Fatal(err)
	}
	e, err := realnet.Encode(&raft.Message{Raft: &raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), Term: proto.Uint64(1000), From: proto.Uint64(raftID + 1), To: proto.Uint64(raftID)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(e); err != nil {
		t.Fatal(err)
	}
	h.eventually("the worker's raft message denied", func() bool { return deniedMessages(t, httpAddr) > before })
	if st, ok := h.rawStatus(m1); !ok || !st.IsLeader || st.Term == "1000" {
		t.Fatalf("m1 after a worker's raft message: %+v", st)
	}

	// Another cluster's certificate fails the handshake.
	if c, d := callAs(t, m1.addr, realnet.NewNodeTLS(stranger, "", nil).Config()); c == nil || d == nil {
		t.Fatalf("another cluster's manager: control %v, status %v", c, d)
	}

	// A removed node's certificate, still valid, is refused.
	h.must(m1.addr, "node", "rm", "--force", string(worker.Cert.Peer.ID))
	h.eventually("the removed worker refused", func() bool {
		_, d := callAs(t, m1.addr, asWorker)
		return status.Code(d) == codes.PermissionDenied
	})
}

// An autolocked manager that restarts stays locked, serving nothing but
// unlock, until it is given the unlock key; a wrong key keeps it locked.
func TestAutolock(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	m1 := h.start("m1", freePort(t), "init")
	h.eventually("m1 leads", func() bool { st, ok := h.status(m1); return ok && st.IsLeader })
	out := h.must(m1.addr, "swarm", "update", "--autolock=true")
	key := strings.TrimSpace(h.must(m1.addr, "unlock-key", "-q"))
	if !strings.HasPrefix(key, crypt.UnlockKeyPrefix) || !strings.Contains(out, key) {
		t.Fatalf("swarm update printed %q; unlock-key %q", out, key)
	}
	h.must(m1.addr, "service", "create", "--name", "web", "--replicas", "1", "busybox", "sleep", "1000")

	h.stop(m1)
	self := realnet.NewNodeTLS(h.credentials(m1), "", nil).Config()
	h.launch(m1)
	h.eventually("m1 back, locked", func() bool { st, ok := h.rawStatus(m1); return ok && st.Locked })
	// Locked, the network port serves nothing, even to a manager's
	// certificate.
	if c, d := callAs(t, m1.addr, self); status.Code(c) != codes.FailedPrecondition || status.Code(d) != codes.FailedPrecondition {
		t.Fatalf("a locked manager over the network: control %v, status %v", c, d)
	}
	if _, errs, code := h.cli(m1.addr, "service", "ls"); code == 0 || !strings.Contains(errs, "locked") {
		t.Fatalf("a locked manager served service ls (exit %d: %s)", code, errs)
	}
	// A well-formed key, not the cluster's.
	wrong := crypt.UnlockKeyPrefix + strings.Repeat("A", len(key)-len(crypt.UnlockKeyPrefix))
	if _, errs, code := h.cliTo([]string{"--data-dir", m1.dir}, wrong+"\n", "unlock"); code != exitFailed {
		t.Fatalf("unlock with a wrong key: exit %d: %s", code, errs)
	}
	if st, ok := h.rawStatus(m1); !ok || !st.Locked {
		t.Fatalf("after a wrong key: %+v", st)
	}
	if _, errs, code := h.cliTo([]string{"--data-dir", m1.dir}, key+"\n", "unlock"); code != 0 {
		t.Fatalf("unlock: exit %d: %s", code, errs)
	}
	h.eventually("m1 unlocked and leading", func() bool { st, ok := h.status(m1); return ok && st.IsLeader })
	if ls := h.services(m1.addr); len(ls) != 1 || ls[0].Name != "web" {
		t.Fatalf("services after unlock: %+v", ls)
	}
	// The local socket names the key the disk is wrapped under; the
	// network port, where any member may ask, does not.
	local, err := dialKV(t, m1).status()
	if err != nil || local.GetUnlockKeyFingerprint() != realnet.UnlockKeyFingerprint(key) || !local.GetKeysDurable() {
		t.Fatalf("local status: fingerprint %q durable %v (%v); want %q", local.GetUnlockKeyFingerprint(), local.GetKeysDurable(), err, realnet.UnlockKeyFingerprint(key))
	}
	conn, err := grpc.NewClient(m1.addr, realnet.DialOptions(self, 0)...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	remote, err := rpc.NewDaemonClient(conn).Status(ctx, &rpc.Empty{})
	if err != nil || remote.GetUnlockKeyFingerprint() != "" || remote.GetRole() != "manager" {
		t.Fatalf("status over the network: %v (%v); want a manager's, without the key's fingerprint", remote, err)
	}
}

// init --autolock starts a cluster autolocked: it prints the unlock key
// the manager's disk is wrapped under, the manager restarted with the same
// command comes back locked, and that key unlocks it.
func TestInitAutolock(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	m1 := h.start("m1", freePort(t), "init", "--autolock")
	var key string
	h.eventually("init prints the unlock key", func() bool {
		out, err := os.ReadFile(m1.log)
		if err != nil {
			return false
		}
		_, after, ok := strings.Cut(string(out), "give it this key:")
		if !ok {
			return false
		}
		key, _, _ = strings.Cut(strings.TrimSpace(after), "\n")
		return true
	})
	if !strings.HasPrefix(key, crypt.UnlockKeyPrefix) {
		t.Fatalf("init printed %q as the unlock key", key)
	}
	if got := strings.TrimSpace(h.must(m1.addr, "unlock-key", "-q")); got != key {
		t.Fatalf("unlock-key says %q; init printed %q", got, key)
	}
	h.eventually("m1's disk keys wrapped under it, and synced", func() bool {
		st, err := dialKV(t, m1).status()
		return err == nil && st.GetUnlockKeyFingerprint() == realnet.UnlockKeyFingerprint(key) && st.GetKeysDurable()
	})

	h.stop(m1)
	h.launch(m1, "init", "--autolock") // resumes: the cluster's setting applies
	h.eventually("m1 back, locked", func() bool { st, ok := h.rawStatus(m1); return ok && st.Locked })
	// Locked, its local socket still takes the fault injections that stand
	// for its machine's clock and network, and nothing of the manager's.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	local := dialKV(t, m1).daemon
	if _, err := local.SkewClock(ctx, &rpc.SkewClockRequest{}); err != nil {
		t.Fatalf("SkewClock on a locked node: %v", err)
	}
	if _, err := local.SetLinkFault(ctx, &rpc.SetLinkFaultRequest{To: "someone"}); err != nil {
		t.Fatalf("SetLinkFault on a locked node: %v", err)
	}
	if _, err := local.LedTerms(ctx, &rpc.Empty{}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("LedTerms on a locked node: %v", err)
	}
	if _, errs, code := h.cliTo([]string{"--data-dir", m1.dir}, key+"\n", "unlock"); code != 0 {
		t.Fatalf("unlock: exit %d: %s", code, errs)
	}
	h.eventually("m1 unlocked and leading", func() bool { st, ok := h.status(m1); return ok && st.IsLeader })
	if got := strings.TrimSpace(h.must(m1.addr, "unlock-key", "-q")); got != key {
		t.Fatalf("after the restart, unlock-key says %q; want the key init printed, %q", got, key)
	}
	// The resumed node printed no banner, tokens or key again.
	if out, err := os.ReadFile(m1.log); err != nil || strings.Count(string(out), "Swarm initialized") != 1 || strings.Count(string(out), key) != 1 {
		t.Fatalf("m1's output, started then resumed, holds the init banner %d times and the key %d times (%v); want once each",
			strings.Count(string(out), "Swarm initialized"), strings.Count(string(out), key), err)
	}

	// On a node of a cluster started without it, the flag changes nothing,
	// and says so.
	x := h.start("x", freePort(t), "init")
	h.eventually("x leads", func() bool { st, ok := h.status(x); return ok && st.IsLeader })
	h.stop(x)
	h.launch(x, "init", "--autolock")
	h.eventually("x warns that its cluster is not autolocked", func() bool {
		out, err := os.ReadFile(x.log)
		return err == nil && strings.Contains(string(out), "a cluster that is not autolocked")
	})
	if st, ok := h.rawStatus(x); !ok || st.Locked {
		t.Fatalf("x after init --autolock resumed it: %+v", st)
	}
}

// A root rotation over real TLS: nodes renew under the new root without
// losing contact, the join tokens change, the new one joins a node and
// the old one no longer does.
func TestRootRotation(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	m1 := h.start("m1", freePort(t), "init")
	h.eventually("m1 leads", func() bool { st, ok := h.status(m1); return ok && st.IsLeader })
	oldTok := strings.TrimSpace(h.must(m1.addr, "join-token", "-q", "worker"))
	h.start("w1", freePort(t), "join", "--token", oldTok, m1.addr)
	ready := func(n int) func() bool {
		return func() bool {
			out, _, code := h.cli(m1.addr, "node", "ls", "--format", "json")
			return code == 0 && strings.Count(out, `"Status":"Ready"`) == n
		}
	}
	h.eventually("w1 ready", ready(2))

	h.must(m1.addr, "swarm", "ca", "--rotate")
	var newTok string
	h.eventually("the rotation finishes (new tokens)", func() bool {
		out, _, code := h.cli(m1.addr, "join-token", "-q", "worker")
		newTok = strings.TrimSpace(out)
		return code == 0 && newTok != "" && newTok[:len("SWMTKN-1-")+50] != oldTok[:len("SWMTKN-1-")+50]
	})
	h.eventually("w1 still ready", ready(2))
	h.start("w2", freePort(t), "join", "--token", newTok, m1.addr)
	h.eventually("w2 joined with the new token", ready(3))
	bad := exec.Command(h.bin, "join", "--token", oldTok, "--listen", freePort(t), "--data-dir", filepath.Join(h.dir, "old"), "--executor", "memory", m1.addr)
	if out, err := bad.CombinedOutput(); err == nil {
		t.Fatalf("joined with the token of the old root:\n%s", out)
	}
}
