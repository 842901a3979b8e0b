package raft

import (
	"fmt"
	"time"
)

// Config tunes a Node. Zero fields take the defaults in parentheses.
type Config struct {
	// RaftID is this node's raft ID, nonzero and unique for the life of the
	// cluster (a removed ID is never reused). RaftIDFor derives one from a
	// NodeID for fixed clusters.
	RaftID uint64

	// Tick is the length of one raft tick (100ms).
	Tick time.Duration
	// ElectionTicks is the election timeout in ticks (10). raft randomizes
	// it between ElectionTicks and 2*ElectionTicks-1.
	ElectionTicks int
	// HeartbeatTicks is the leader's heartbeat interval in ticks (1).
	HeartbeatTicks int

	// SnapshotEntries takes a snapshot every this many applied entries
	// (10000).
	SnapshotEntries uint64
	// LogTailEntries is how many entries behind a snapshot stay in memory,
	// so a follower that lags by less than this catches up from the log
	// rather than from a snapshot (SnapshotEntries/2).
	LogTailEntries uint64

	// EntryPerProposal gives each proposal a raft entry of its own. By
	// default the proposals of one loop turn are packed into as few
	// entries as MaxBatch and MaxEntryBytes allow: each entry costs raft,
	// the disk and the network, a packed one no more than a single one.
	// Either way they reach raft in one step and one Ready, and each is
	// applied and answered on its own.
	EntryPerProposal bool
	// MaxBatch bounds the proposals packed into one entry (256).
	MaxBatch int
	// MaxEntryBytes bounds the payload bytes packed into one entry
	// (64 KiB). A single larger proposal still goes in an entry of its own.
	MaxEntryBytes int
	// MaxProposalBytes is the largest proposal accepted (1 MiB).
	MaxProposalBytes int
	// MaxInflightProposals bounds the proposals made here and not yet
	// applied or failed (16384); more fail with ErrOverloaded.
	MaxInflightProposals int

	// MaxSizePerMsg bounds the entry bytes in one append message (1 MiB).
	MaxSizePerMsg uint64
	// MaxInflightMsgs bounds append messages in flight to one follower
	// (256).
	MaxInflightMsgs int
	// MaxUncommittedBytes bounds the leader's uncommitted log; proposals
	// beyond it are dropped (64 MiB).
	MaxUncommittedBytes uint64

	// ProposalTimeout fails a proposal or read that has not applied within
	// it (10s).
	ProposalTimeout time.Duration
	// MembershipTimeout fails a membership change that has not completed
	// within it (60s). An added member that has not caught up by then
	// stays a learner.
	MembershipTimeout time.Duration
	// PromoteLagEntries: a learner is promoted to voter once its matched
	// index is within this many entries of the leader's last index (64).
	PromoteLagEntries uint64

	// Logf receives raft's warnings and errors; nil discards them.
	Logf func(format string, args ...any)
	// Observer, when set, sees every applied entry and state change.
	Observer Observer
}

func (c *Config) setDefaults() error {
	if c.RaftID == 0 || c.RaftID >= 1<<63 {
		return fmt.Errorf("raft: config: RaftID %d must be in [1, 2^63)", c.RaftID)
	}
	if c.Tick <= 0 {
		c.Tick = 100 * time.Millisecond
	}
	if c.HeartbeatTicks <= 0 {
		c.HeartbeatTicks = 1
	}
	if c.ElectionTicks <= 0 {
		c.ElectionTicks = 10
	}
	if c.ElectionTicks <= c.HeartbeatTicks {
		return fmt.Errorf("raft: config: ElectionTicks %d must exceed HeartbeatTicks %d", c.ElectionTicks, c.HeartbeatTicks)
	}
	if c.SnapshotEntries == 0 {
		c.SnapshotEntries = 10000
	}
	if c.LogTailEntries == 0 {
		c.LogTailEntries = c.SnapshotEntries / 2
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 256
	}
	if c.MaxEntryBytes <= 0 {
		c.MaxEntryBytes = 64 << 10
	}
	if c.MaxProposalBytes <= 0 {
		c.MaxProposalBytes = 1 << 20
	}
	if c.MaxInflightProposals <= 0 {
		c.MaxInflightProposals = 16384
	}
	if c.MaxSizePerMsg == 0 {
		c.MaxSizePerMsg = 1 << 20
	}
	if c.MaxInflightMsgs <= 0 {
		c.MaxInflightMsgs = 256
	}
	if c.MaxUncommittedBytes == 0 {
		c.MaxUncommittedBytes = 64 << 20
	}
	if c.ProposalTimeout <= 0 {
		c.ProposalTimeout = 10 * time.Second
	}
	if c.MembershipTimeout <= 0 {
		c.MembershipTimeout = 60 * time.Second
	}
	if c.PromoteLagEntries == 0 {
		c.PromoteLagEntries = 64
	}
	return nil
}

// ticks converts d to a whole number of ticks, at least one.
func (c *Config) ticks(d time.Duration) uint64 {
	n := uint64((d + c.Tick - 1) / c.Tick)
	return max(n, 1)
}
