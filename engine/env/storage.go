package env

// EntryType says how a raft log entry's Data is to be read.
type EntryType uint8

const (
	EntryNormal       EntryType = iota // a store proposal
	EntryConfChange                    // a raft ConfChange (v1)
	EntryConfChangeV2                  // a raft ConfChangeV2
)

// Entry is one raft log entry as it is kept on disk.
type Entry struct {
	Term, Index uint64
	Type        EntryType
	Data        []byte
}

// HardState is raft's durable vote and commit state.
type HardState struct {
	Term, Vote, Commit uint64
}

// IsEmpty reports whether nothing was ever saved.
func (h HardState) IsEmpty() bool { return h == HardState{} }

// ConfState is the raft membership a snapshot was taken at.
type ConfState struct {
	Voters, Learners, VotersOutgoing, LearnersNext []uint64
	AutoLeave                                      bool
}

// Snapshot is a point-in-time image of a node's applied state. Index 0
// means no snapshot.
type Snapshot struct {
	Index, Term uint64
	Conf        ConfState
	Data        []byte
}

// DiskState is what a node finds on its disk when it starts.
type DiskState struct {
	Snapshot  Snapshot
	HardState HardState
	// Entries follow Snapshot.Index contiguously, in index order.
	Entries []Entry
	// Meta holds small named values the node keeps across restarts (its
	// identity, certificate, wrapped keys).
	Meta map[string][]byte
}

// Storage is a node's disk. Writes are staged and become durable only when a
// later Sync completes: a crash loses everything staged but not synced.
// Implementations: the simulator's disk (sync takes virtual time) and
// realnet's write-ahead log (fsync).
type Storage interface {
	// Load returns what survived on disk. A fresh disk returns a zero
	// DiskState. Corruption anywhere but a torn final record is an error.
	Load() (DiskState, error)
	// Append stages entries. An entry at an index already staged or durable
	// replaces it and every entry after it (raft log truncation).
	Append(ents []Entry) error
	// SetHardState stages the hard state.
	SetHardState(hs HardState) error
	// SaveSnapshot stages a snapshot; once it is durable, entries at or
	// below its index are no longer returned by Load.
	SaveSnapshot(s Snapshot) error
	// SetMeta stages a named value; a nil value deletes it.
	SetMeta(key string, value []byte) error
	// Sync makes everything staged before the call durable, then calls done
	// on the node's loop.
	Sync(done func(error))
}
