package raft

import (
	"fmt"
	"strconv"

	"google.golang.org/protobuf/proto"

	"go.etcd.io/raft/v3/raftpb"
)

// MethodStep is the RPC name every raft message travels under.
const MethodStep = "/swarm.Raft/Step"

// Message is what one node's raft sends another: an env.Message. The
// simulator passes it by pointer; neither side changes it after Send (the
// receiver clones the few kinds raft would modify).
type Message struct {
	// Raft is the raft message. For a removal notice it carries only From
	// and To.
	Raft *raftpb.Message
	// Removed marks a notice, not a raft message: the sender's cluster
	// removed the receiver, which stops.
	Removed bool
}

// Method implements env.Message.
func (m *Message) Method() string { return MethodStep }

// TraceString is a short description for traces: "MsgApp t3 i41 n2".
func (m *Message) TraceString() string {
	if m.Removed {
		return "Removed " + strconv.FormatUint(m.Raft.GetTo(), 16)
	}
	r := m.Raft
	b := make([]byte, 0, 40)
	b = append(b, r.GetType().String()...)
	b = append(b, " t"...)
	b = strconv.AppendUint(b, r.GetTerm(), 10)
	b = append(b, " i"...)
	b = strconv.AppendUint(b, r.GetIndex(), 10)
	b = append(b, " n"...)
	b = strconv.AppendInt(b, int64(len(r.GetEntries())), 10)
	if r.GetReject() {
		b = append(b, " rej"...)
	}
	if s := r.GetSnapshot(); s != nil && s.GetMetadata().GetIndex() > 0 {
		b = append(b, " snap@"...)
		b = strconv.AppendUint(b, s.GetMetadata().GetIndex(), 10)
	}
	return string(b)
}

// Marshal encodes the message for a real transport: one flag byte, then
// the raft message in protobuf.
func (m *Message) Marshal() ([]byte, error) {
	flag := byte(0)
	if m.Removed {
		flag = 1
	}
	b, err := proto.MarshalOptions{}.MarshalAppend([]byte{flag}, m.Raft)
	if err != nil {
		return nil, fmt.Errorf("raft: marshal message: %w", err)
	}
	return b, nil
}

// UnmarshalMessage decodes what Marshal produced.
func UnmarshalMessage(b []byte) (*Message, error) {
	if len(b) == 0 || b[0] > 1 {
		return nil, fmt.Errorf("raft: unmarshal message: bad flag")
	}
	pm := &raftpb.Message{}
	if err := proto.Unmarshal(b[1:], pm); err != nil {
		return nil, fmt.Errorf("raft: unmarshal message: %w", err)
	}
	return &Message{Raft: pm, Removed: b[0] == 1}, nil
}
