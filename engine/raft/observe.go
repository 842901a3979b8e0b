package raft

import (
	"fmt"
	"slices"

	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/swarmsim/swarmsim/engine/env"
)

// Member is one raft member: its raft ID, the node it runs on and the
// address real mode dials.
type Member struct {
	RaftID uint64
	NodeID env.NodeID
	Addr   string
	// Learner is set by Members for a member that does not vote yet.
	Learner bool
}

func (m Member) String() string { return fmt.Sprintf("%s (raft ID %x)", m.NodeID, m.RaftID) }

// Role is a node's raft role.
type Role uint8

const (
	RoleFollower Role = iota
	RoleCandidate
	RoleLeader
	RolePreCandidate
)

func (r Role) String() string {
	switch r {
	case RoleCandidate:
		return "candidate"
	case RoleLeader:
		return "leader"
	case RolePreCandidate:
		return "precandidate"
	default:
		return "follower"
	}
}

// AppliedEntry is one raft entry as this node applied it, for observers.
type AppliedEntry struct {
	Node        env.NodeID
	Index, Term uint64
	Type        env.EntryType
	// Data is the entry's bytes as they are in the log (headers included).
	// Observers must not keep or change it.
	Data []byte
}

// StateChange is a change of a node's term, leader or role.
type StateChange struct {
	Node     env.NodeID
	Term     uint64
	Leader   env.NodeID // "" when no leader is known
	LeaderID uint64
	Role     Role
}

// Observer sees everything a checker outside the code under test needs:
// every applied entry, every change of term, leader or role, and every
// snapshot restored in place of entries. It is called on the node's loop
// and must not call back into the node.
type Observer interface {
	EntryApplied(AppliedEntry)
	StateChanged(StateChange)
	SnapshotRestored(node env.NodeID, index, term uint64)
}

// Status is a node's view of the cluster.
type Status struct {
	RaftID   uint64
	NodeID   env.NodeID
	Term     uint64
	Leader   env.NodeID
	LeaderID uint64
	IsLeader bool
	Role     Role
	Applied  uint64
	Commit   uint64
	// Voters and Learners are raft IDs, sorted, as of the last applied
	// configuration.
	Voters, Learners []uint64
	// Stopped is set once the node stopped; Err says why.
	Stopped bool
	Err     error
}

// HasMember reports whether raft ID id is a voter or learner.
func (s Status) HasMember(id uint64) bool {
	return slices.Contains(s.Voters, id) || slices.Contains(s.Learners, id)
}

// MessageCount counts raft messages of one type.
type MessageCount struct {
	Type           string
	Sent, Received uint64
}

// Stats are counters for metrics. All are totals since New except
// AppliedIndex and CommitIndex.
type Stats struct {
	Proposals        uint64 // Propose calls accepted into a batch
	ProposalsFailed  uint64 // proposals whose done got an error
	ProposalsApplied uint64 // proposals made here and applied here
	EntriesCommitted uint64 // raft entries applied (normal and conf change)
	AppliedIndex     uint64
	CommitIndex      uint64
	LeaderChanges    uint64 // times the known leader changed to a new one
	ReadIndexes      uint64 // ReadIndex requests raft was asked for (batched)
	Syncs            uint64

	SnapshotsTaken, SnapshotBytesTaken       uint64
	SnapshotsSent, SnapshotBytesSent         uint64
	SnapshotsReceived, SnapshotBytesReceived uint64

	MessagesSent, MessagesReceived, MessagesDropped uint64
	// Messages counts by raft message type, in type order; types never
	// seen are left out.
	Messages []MessageCount
}

const numMsgTypes = 32

type msgCounters struct {
	sent, received [numMsgTypes]uint64
}

func (c *msgCounters) count(sent bool, t pb.MessageType) {
	i := int(t)
	if i < 0 || i >= numMsgTypes {
		i = numMsgTypes - 1
	}
	if sent {
		c.sent[i]++
	} else {
		c.received[i]++
	}
}

func (c *msgCounters) list() []MessageCount {
	var out []MessageCount
	for i := 0; i < numMsgTypes; i++ {
		if c.sent[i] == 0 && c.received[i] == 0 {
			continue
		}
		out = append(out, MessageCount{Type: pb.MessageType(i).String(), Sent: c.sent[i], Received: c.received[i]})
	}
	return out
}

// logger passes raft's warnings and errors to Config.Logf and drops its
// chatter. raft's default logger writes to stderr, which engine code must
// not do.
type logger struct{ logf func(string, ...any) }

func (l logger) Debug(...any)          {}
func (l logger) Debugf(string, ...any) {}
func (l logger) Info(...any)           {}
func (l logger) Infof(string, ...any)  {}
func (l logger) Warning(v ...any)      { l.out("warning", fmt.Sprint(v...)) }
func (l logger) Warningf(f string, v ...any) {
	l.out("warning", fmt.Sprintf(f, v...))
}
func (l logger) Error(v ...any)            { l.out("error", fmt.Sprint(v...)) }
func (l logger) Errorf(f string, v ...any) { l.out("error", fmt.Sprintf(f, v...)) }
func (l logger) Fatal(v ...any)            { panic("raft: fatal: " + fmt.Sprint(v...)) }
func (l logger) Fatalf(f string, v ...any) { panic("raft: fatal: " + fmt.Sprintf(f, v...)) }
func (l logger) Panic(v ...any)            { panic("raft: " + fmt.Sprint(v...)) }
func (l logger) Panicf(f string, v ...any) { panic("raft: " + fmt.Sprintf(f, v...)) }

func (l logger) out(level, s string) {
	if l.logf != nil {
		l.logf("raft %s: %s", level, s)
	}
}
