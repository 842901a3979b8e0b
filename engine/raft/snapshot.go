package raft

import (
	"errors"
	"fmt"
	"slices"

	etcdraft "go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/swarmsim/swarmsim/engine/env"
)

// maybeSnapshot takes a snapshot once Config.SnapshotEntries entries have
// applied since the last one, stages it on disk, and compacts raft's
// in-memory log, keeping Config.LogTailEntries entries behind the snapshot
// so a follower a little behind catches up from the log.
func (n *Node) maybeSnapshot() {
	if n.applied < n.snapIndex+n.cfg.SnapshotEntries && !(n.snapshotNow && n.applied > n.snapIndex) {
		return
	}
	n.snapshotNow = false
	state, err := n.sm.Snapshot()
	if err != nil {
		n.fatal(fmt.Errorf("raft: state machine snapshot at %d: %w", n.applied, err))
		return
	}
	data := encodeSnapshot(n.image(state))
	snap, err := n.ms.CreateSnapshot(n.applied, n.confState, data)
	if errors.Is(err, etcdraft.ErrSnapOutOfDate) {
		return
	}
	if err != nil {
		n.fatal(fmt.Errorf("raft: snapshot at %d: %w", n.applied, err))
		return
	}
	// Staged, it becomes durable with the next sync; until then the disk
	// still holds the entries it covers.
	if err := n.env.Storage.SaveSnapshot(snapshotFromPB(snap)); err != nil {
		n.fatal(fmt.Errorf("raft: stage snapshot at %d: %w", n.applied, err))
		return
	}
	n.snapIndex = n.applied
	n.stats.SnapshotsTaken++
	n.stats.SnapshotBytesTaken += uint64(len(data))
	if n.applied <= n.cfg.LogTailEntries {
		return
	}
	compact := n.applied - n.cfg.LogTailEntries
	if first, _ := n.ms.FirstIndex(); compact >= first {
		if err := n.ms.Compact(compact); err != nil && !errors.Is(err, etcdraft.ErrCompacted) {
			n.fatal(fmt.Errorf("raft: compact to %d: %w", compact, err))
		}
	}
}

// image is what a snapshot holds besides the state machine's bytes.
func (n *Node) image(state []byte) snapshotImage {
	img := snapshotImage{state: state, removed: sortedKeys(n.removed)}
	for _, id := range sortedKeys(n.members) {
		img.members = append(img.members, n.members[id])
	}
	return img
}

func (n *Node) installImage(img snapshotImage) {
	clear(n.members)
	n.membersView = nil
	clear(n.removed)
	for _, m := range img.members {
		m.Learner = false
		n.members[m.RaftID] = m
		delete(n.learned, m.RaftID)
	}
	for _, id := range img.removed {
		n.removed[id] = true
	}
}

// restoreSnapshot replaces the state machine with a snapshot the leader
// sent, once it is durable.
func (n *Node) restoreSnapshot(s *pb.Snapshot) error {
	md := s.GetMetadata()
	img, err := decodeSnapshot(s.GetData())
	if err != nil {
		return fmt.Errorf("raft: snapshot at %d: %w", md.GetIndex(), err)
	}
	if err := n.sm.Restore(img.state); err != nil {
		return fmt.Errorf("raft: restore snapshot at %d: %w", md.GetIndex(), err)
	}
	n.installImage(img)
	n.setConfState(cloneConfState(md.GetConfState()))
	n.applied, n.appliedTerm, n.snapIndex = md.GetIndex(), md.GetTerm(), md.GetIndex()
	n.stats.AppliedIndex = n.applied
	if n.obs != nil {
		n.obs.SnapshotRestored(n.env.ID, md.GetIndex(), md.GetTerm())
	}
	return nil
}

// ---- conversions between raft's protobuf types and env's disk types

func entryTypeFromPB(t pb.EntryType) env.EntryType {
	switch t {
	case pb.EntryConfChange:
		return env.EntryConfChange
	case pb.EntryConfChangeV2:
		return env.EntryConfChangeV2
	default:
		return env.EntryNormal
	}
}

func entryTypeToPB(t env.EntryType) pb.EntryType {
	switch t {
	case env.EntryConfChange:
		return pb.EntryConfChange
	case env.EntryConfChangeV2:
		return pb.EntryConfChangeV2
	default:
		return pb.EntryNormal
	}
}

func entriesFromPB(es []*pb.Entry) []env.Entry {
	out := make([]env.Entry, len(es))
	for i, e := range es {
		out[i] = env.Entry{Term: e.GetTerm(), Index: e.GetIndex(), Type: entryTypeFromPB(e.GetType()), Data: e.GetData()}
	}
	return out
}

func entriesToPB(es []env.Entry) []*pb.Entry {
	out := make([]*pb.Entry, len(es))
	for i := range es {
		e := &es[i]
		out[i] = &pb.Entry{Term: new(e.Term), Index: new(e.Index), Type: entryTypeToPB(e.Type).Enum(), Data: e.Data}
	}
	return out
}

func confStateFromPB(c *pb.ConfState) env.ConfState {
	return env.ConfState{
		Voters:         slices.Clone(c.GetVoters()),
		Learners:       slices.Clone(c.GetLearners()),
		VotersOutgoing: slices.Clone(c.GetVotersOutgoing()),
		LearnersNext:   slices.Clone(c.GetLearnersNext()),
		AutoLeave:      c.GetAutoLeave(),
	}
}

func confStateToPB(c env.ConfState) *pb.ConfState {
	return &pb.ConfState{
		Voters:         slices.Clone(c.Voters),
		Learners:       slices.Clone(c.Learners),
		VotersOutgoing: slices.Clone(c.VotersOutgoing),
		LearnersNext:   slices.Clone(c.LearnersNext),
		AutoLeave:      new(c.AutoLeave),
	}
}

func cloneConfState(c *pb.ConfState) *pb.ConfState { return confStateToPB(confStateFromPB(c)) }

func snapshotFromPB(s *pb.Snapshot) env.Snapshot {
	md := s.GetMetadata()
	return env.Snapshot{Index: md.GetIndex(), Term: md.GetTerm(), Conf: confStateFromPB(md.GetConfState()), Data: s.GetData()}
}

func snapshotToPB(s env.Snapshot) *pb.Snapshot {
	return &pb.Snapshot{
		Data: s.Data,
		Metadata: &pb.SnapshotMetadata{
			ConfState: confStateToPB(s.Conf),
			Index:     new(s.Index),
			Term:      new(s.Term),
		},
	}
}
