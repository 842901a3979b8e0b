package realnet

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/ca"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/raft"
	"github.com/swarmsim/swarmsim/realnet/rpc"
)

// sampleMessages is one message of every kind the engine sends.
func sampleMessages() []env.Message {
	typ, term, to := raftpb.MsgApp, uint64(3), uint64(2)
	return []env.Message{
		&raft.Message{Raft: &raftpb.Message{Type: &typ, Term: &term, To: &to, Entries: []*raftpb.Entry{{Data: []byte("x")}}}},
		&raft.Message{Raft: &raftpb.Message{To: &to}, Removed: true},
		&api.SessionRequest{Incarnation: 1, Attempt: 2, Description: &api.NodeDescription{Hostname: "h"}},
		&api.SessionResponse{SessionId: "s", Managers: []string{"m1"}},
		&api.Heartbeat{SessionId: "s", Resync: true},
		&api.HeartbeatResponse{SessionId: "s", AssignmentsSeq: 4},
		&api.Assignments{SessionId: "s", Seq: 2, Full: true, Tasks: []*api.Task{{Id: "t"}}, Removed: []string{"u"}},
		&api.TaskStatusReport{SessionId: "s", Seq: 9},
		&api.TaskStatusAck{SessionId: "s", Seq: 9},
		&api.RaftJoinRequest{RequestId: 5, Member: &api.RaftMember{RaftId: 7, NodeId: "n", Addr: "127.0.0.1:1"}},
		&api.RaftJoinResponse{RequestId: 5, Leader: "m"},
		&api.IssueNodeCertificate{RequestId: 6, Name: "w1"},
		&api.IssueNodeCertificateResponse{RequestId: 6, Message: "refused"},
		&api.GetRootCA{RequestId: 7},
		&api.GetRootCAResponse{RequestId: 7},
		&api.RootRotation{},
	}
}

// Every message the engine sends between nodes (every method of the
// authorization table but the control API's, which has its own gRPC
// service) can cross the transport: a kind added to the engine without a
// decoder here fails this test, not a cluster.
func TestEveryEngineMessageHasADecoder(t *testing.T) {
	known := map[string]bool{}
	for _, m := range Methods() {
		known[m] = true
	}
	for _, m := range ca.Methods() {
		if strings.HasPrefix(m, "/swarm.Control/") {
			continue
		}
		if !known[m] {
			t.Errorf("%s is in the authorization table but the transport cannot decode it", m)
		}
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range sampleMessages() {
		e, err := Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		b, err := proto.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeEnvelope(b)
		if err != nil {
			t.Fatalf("%s: %v", m.Method(), err)
		}
		if got.Method() != m.Method() {
			t.Fatalf("method %s came back as %s", m.Method(), got.Method())
		}
		if rm, ok := m.(*raft.Message); ok {
			g := got.(*raft.Message)
			if g.Removed != rm.Removed || !proto.Equal(g.Raft, rm.Raft) {
				t.Fatalf("raft message changed: %v -> %v", rm, g)
			}
		} else if !proto.Equal(got.(proto.Message), m.(proto.Message)) {
			t.Fatalf("%s changed on the way: %v -> %v", m.Method(), m, got)
		}
		seen[m.Method()] = true
	}
	// Every method the decode table knows has a sample, and so a test.
	for _, method := range Methods() {
		if !seen[method] {
			t.Errorf("no sample message for %s", method)
		}
	}
}

func TestDecodeRefusesUnknownMethod(t *testing.T) {
	if _, err := Decode(&rpc.Envelope{Method: "/swarm.Nope/X"}); err == nil {
		t.Fatal("unknown method decoded")
	}
	if _, err := Decode(&rpc.Envelope{Method: raft.MethodStep, Payload: []byte{7}}); err == nil {
		t.Fatal("bad raft flag decoded")
	}
}

// FuzzDecodeEnvelope: whatever bytes a peer sends, decoding returns a
// message or an error and never panics; a decoded message encodes again
// and decodes to the same method.
func FuzzDecodeEnvelope(f *testing.F) {
	for _, m := range sampleMessages() {
		e, _ := Encode(m)
		b, _ := proto.Marshal(e)
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x10, '/', 's', 'w', 'a', 'r', 'm'})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeEnvelope(b)
		if err != nil {
			return
		}
		e, err := Encode(m)
		if err != nil {
			t.Fatalf("decoded %s does not encode: %v", m.Method(), err)
		}
		again, err := Decode(e)
		if err != nil || again.Method() != m.Method() {
			t.Fatalf("re-decoding %s: %v", m.Method(), err)
		}
	})
}
