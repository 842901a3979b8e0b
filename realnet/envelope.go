package realnet

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/raft"
	"github.com/swarmsim/swarmsim/realnet/rpc"
)

// MethodAddresses is the transport's own message: a server's address book,
// sent back to a peer that opened a stream to it. It never reaches the
// engine.
const MethodAddresses = "/swarm.Peer/Addresses"

// ErrUnknownMethod: an envelope names a method no decoder is registered
// for.
var ErrUnknownMethod = errors.New("unknown method")

// decoders maps each engine message's method to its decoder. A message
// kind the engine adds must be added here (TestEveryEngineMessageHasADecoder).
var decoders = map[string]func([]byte) (env.Message, error){
	raft.MethodStep: func(b []byte) (env.Message, error) { return raft.UnmarshalMessage(b) },

	api.MethodSessionRequest:    protoDecoder[api.SessionRequest](),
	api.MethodSessionResponse:   protoDecoder[api.SessionResponse](),
	api.MethodHeartbeat:         protoDecoder[api.Heartbeat](),
	api.MethodHeartbeatResponse: protoDecoder[api.HeartbeatResponse](),
	api.MethodAssignments:       protoDecoder[api.Assignments](),
	api.MethodTaskStatusReport:  protoDecoder[api.TaskStatusReport](),
	api.MethodTaskStatusAck:     protoDecoder[api.TaskStatusAck](),

	api.MethodRaftJoin:         protoDecoder[api.RaftJoinRequest](),
	api.MethodRaftJoinResponse: protoDecoder[api.RaftJoinResponse](),

	api.MethodIssueNodeCertificate:         protoDecoder[api.IssueNodeCertificate](),
	api.MethodIssueNodeCertificateResponse: protoDecoder[api.IssueNodeCertificateResponse](),
	api.MethodGetRootCA:                    protoDecoder[api.GetRootCA](),
	api.MethodGetRootCAResponse:            protoDecoder[api.GetRootCAResponse](),
	api.MethodRootRotation:                 protoDecoder[api.RootRotation](),
}

// protoMessage is a generated engine/api message that is also an
// env.Message.
type protoMessage[T any] interface {
	*T
	proto.Message
	env.Message
}

func protoDecoder[T any, P protoMessage[T]]() func([]byte) (env.Message, error) {
	return func(b []byte) (env.Message, error) {
		m := P(new(T))
		if err := proto.Unmarshal(b, m); err != nil {
			return nil, err
		}
		return m, nil
	}
}

// Methods lists the methods the transport can carry, for authorization
// tables.
func Methods() []string {
	out := make([]string, 0, len(decoders))
	for m := range decoders {
		out = append(out, m)
	}
	return out
}

// Encode wraps m in an envelope.
func Encode(m env.Message) (*rpc.Envelope, error) {
	method := m.Method()
	if _, ok := decoders[method]; !ok {
		return nil, fmt.Errorf("encode %s: %w", method, ErrUnknownMethod)
	}
	var b []byte
	var err error
	switch m := m.(type) {
	case *raft.Message:
		b, err = m.Marshal()
	case proto.Message:
		b, err = proto.Marshal(m)
	default:
		err = fmt.Errorf("%T is neither a raft message nor protobuf", m)
	}
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", method, err)
	}
	return &rpc.Envelope{Method: method, Payload: b}, nil
}

// Decode turns an envelope back into the engine message it carries.
func Decode(e *rpc.Envelope) (env.Message, error) {
	dec, ok := decoders[e.GetMethod()]
	if !ok {
		return nil, fmt.Errorf("decode %.64q: %w", e.GetMethod(), ErrUnknownMethod)
	}
	m, err := dec(e.GetPayload())
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", e.GetMethod(), err)
	}
	return m, nil
}

// DecodeEnvelope decodes a marshalled envelope and the message in it.
func DecodeEnvelope(b []byte) (env.Message, error) {
	e := &rpc.Envelope{}
	if err := proto.Unmarshal(b, e); err != nil {
		return nil, fmt.Errorf("decode envelope: %w", err)
	}
	return Decode(e)
}
