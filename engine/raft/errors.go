package raft

import (
	"errors"
	"fmt"

	"github.com/swarmsim/swarmsim/engine/env"
)

// Sentinel errors. Callers test them with errors.Is; the errors handed to
// callbacks usually wrap one of them with context.
var (
	// ErrStopped: the node was stopped (Stop, removal or a fatal error)
	// before the operation finished.
	ErrStopped = errors.New("raft: node stopped")
	// ErrNoLeader: no leader is known, so a proposal or read cannot be
	// forwarded. Retrying after an election is safe: nothing was proposed.
	ErrNoLeader = errors.New("raft: no leader")
	// ErrNotLeader: the call must run on the leader. The error is a
	// *NotLeaderError naming the leader when one is known.
	ErrNotLeader = errors.New("raft: not the leader")
	// ErrLeadershipLost: the leader the proposal went through lost its
	// leadership before the entry was applied here. The outcome is
	// ambiguous: the entry may still commit. Proposals must be idempotent or
	// be checked after a retry.
	ErrLeadershipLost = errors.New("raft: leadership lost before the proposal applied (it may still commit)")
	// ErrProposalDropped: raft refused the proposal (a leadership transfer
	// in progress, the uncommitted log over its limit). Nothing was
	// appended; retrying is safe.
	ErrProposalDropped = errors.New("raft: proposal dropped")
	// ErrTimeout: the operation did not finish within its configured
	// timeout. For proposals the outcome is ambiguous, as with
	// ErrLeadershipLost.
	ErrTimeout = errors.New("raft: timed out")
	// ErrRemoved: this node was removed from the cluster.
	ErrRemoved = errors.New("raft: node removed from the cluster")
	// ErrQuorumAtRisk: a membership change was refused because the cluster
	// would be left with fewer reachable voters than a quorum.
	ErrQuorumAtRisk = errors.New("raft: membership change would leave fewer reachable voters than a quorum")
	// ErrTooLarge: a proposal is bigger than Config.MaxProposalBytes.
	ErrTooLarge = errors.New("raft: proposal too large")
	// ErrOverloaded: too many proposals are waiting to be applied.
	ErrOverloaded = errors.New("raft: too many proposals in flight")
	// ErrMemberExists: the raft ID or node is already a member.
	ErrMemberExists = errors.New("raft: already a member")
	// ErrUnknownMember: no member has that raft ID.
	ErrUnknownMember = errors.New("raft: unknown member")
	// ErrIDRemoved: the raft ID belonged to a removed member and cannot be
	// reused.
	ErrIDRemoved = errors.New("raft: raft ID was removed and cannot be reused")
	// ErrInitialized: Bootstrap was called on a node that already has raft
	// state (from its disk or an earlier Bootstrap).
	ErrInitialized = errors.New("raft: node already has raft state")
	// ErrCorruptEntry: a committed entry could not be decoded. The node
	// stops with it: every replica would hit the same entry.
	ErrCorruptEntry = errors.New("raft: undecodable log entry")
	// ErrCorruptSnapshot: a snapshot could not be decoded.
	ErrCorruptSnapshot = errors.New("raft: undecodable snapshot")
	// ErrRefused: a conf change in the log was invalid against the
	// configuration it applied to and was skipped on every replica.
	ErrRefused = errors.New("raft: conf change refused at apply")
)

// NotLeaderError is returned by calls that must run on the leader. It
// matches ErrNotLeader with errors.Is.
type NotLeaderError struct {
	// Leader is the current leader, or "" when none is known.
	Leader env.NodeID
	// LeaderID is the leader's raft ID, or 0.
	LeaderID uint64
}

func (e *NotLeaderError) Error() string {
	if e.LeaderID == 0 {
		return "raft: not the leader (no leader known)"
	}
	return fmt.Sprintf("raft: not the leader (leader is %s, raft ID %x)", e.Leader, e.LeaderID)
}

// Is makes errors.Is(err, ErrNotLeader) true.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }
