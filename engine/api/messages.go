package api

import "strconv"

// RPC names of the dispatcher protocol (dispatcher.proto), one per message
// and direction. Authorization keys on the service prefix: workers and
// managers may use every method of "/swarm.Dispatcher/".
const (
	DispatcherService       = "/swarm.Dispatcher/"
	MethodSessionRequest    = DispatcherService + "SessionRequest"
	MethodSessionResponse   = DispatcherService + "SessionResponse"
	MethodHeartbeat         = DispatcherService + "Heartbeat"
	MethodHeartbeatResponse = DispatcherService + "HeartbeatResponse"
	MethodAssignments       = DispatcherService + "Assignments"
	MethodTaskStatusReport  = DispatcherService + "TaskStatusReport"
	MethodTaskStatusAck     = DispatcherService + "TaskStatusAck"
)

// traceBufLen is the initial capacity of a TraceString's buffer.
const traceBufLen = 48

// Method implements env.Message.
func (*SessionRequest) Method() string { return MethodSessionRequest }

// Method implements env.Message.
func (*SessionResponse) Method() string { return MethodSessionResponse }

// Method implements env.Message.
func (*Heartbeat) Method() string { return MethodHeartbeat }

// Method implements env.Message.
func (*HeartbeatResponse) Method() string { return MethodHeartbeatResponse }

// Method implements env.Message.
func (*Assignments) Method() string { return MethodAssignments }

// Method implements env.Message.
func (*TaskStatusReport) Method() string { return MethodTaskStatusReport }

// Method implements env.Message.
func (*TaskStatusAck) Method() string { return MethodTaskStatusAck }

// TraceString is a short description for traces: "Assignments seq=7 full +10 -0",
// then " secrets +1 -0" and " configs +0 -1" when the message carries any.
func (x *Assignments) TraceString() string {
	b := make([]byte, 0, traceBufLen)
	b = append(b, "Assignments seq="...)
	b = strconv.AppendUint(b, x.GetSeq(), 10)
	if x.GetFull() {
		b = append(b, " full"...)
	}
	b = append(b, " +"...)
	b = strconv.AppendInt(b, int64(len(x.GetTasks())), 10)
	b = append(b, " -"...)
	b = strconv.AppendInt(b, int64(len(x.GetRemoved())), 10)
	// Secrets and configs are counted, never shown: a trace must not carry
	// their data (nor, for secrets, even their names).
	if n, r := len(x.GetSecrets()), len(x.GetRemovedSecrets()); n+r > 0 {
		b = append(b, " secrets +"...)
		b = strconv.AppendInt(b, int64(n), 10)
		b = append(b, " -"...)
		b = strconv.AppendInt(b, int64(r), 10)
	}
	if n, r := len(x.GetConfigs()), len(x.GetRemovedConfigs()); n+r > 0 {
		b = append(b, " configs +"...)
		b = strconv.AppendInt(b, int64(n), 10)
		b = append(b, " -"...)
		b = strconv.AppendInt(b, int64(r), 10)
	}
	return string(b)
}

// TraceString is a short description for traces: "TaskStatusReport seq=3 n=2".
func (x *TaskStatusReport) TraceString() string {
	b := make([]byte, 0, traceBufLen)
	b = append(b, "TaskStatusReport seq="...)
	b = strconv.AppendUint(b, x.GetSeq(), 10)
	b = append(b, " n="...)
	b = strconv.AppendInt(b, int64(len(x.GetUpdates())), 10)
	return string(b)
}

// RPC names of the raft membership protocol (manager.proto).
const (
	MethodRaftJoin         = "/swarm.RaftMembership/Join"
	MethodRaftJoinResponse = "/swarm.RaftMembership/JoinResponse"
)

// Method implements env.Message.
func (*RaftJoinRequest) Method() string { return MethodRaftJoin }

// Method implements env.Message.
func (*RaftJoinResponse) Method() string { return MethodRaftJoinResponse }
