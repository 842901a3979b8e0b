package raft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	etcdraft "go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/swarmsim/swarmsim/engine/env"
)

// StateMachine is what committed entries are applied to. The store
// implements it.
type StateMachine interface {
	// Apply applies one proposal. index is the raft index of the entry that
	// carried it; when several proposals share an entry (unless
	// Config.EntryPerProposal), consecutive calls share an index. A non-nil
	// err means the data cannot be decoded: the node stops with that error,
	// since every replica would fail on the same entry. result goes to the proposer's done and
	// may itself be an error value (a conflict, say).
	//
	// own is the Proposal this node's Propose was given for these very
	// bytes, while it waits for them; nil for any other entry (another
	// node's, or one proposed before a restart). The state machine may
	// apply what own holds in memory instead of decoding data, so long as
	// the outcome is the one decoding would give: every replica must end
	// in the same state.
	Apply(index uint64, data []byte, own Proposal) (result any, err error)
	// Snapshot returns the state as of the last Apply.
	Snapshot() ([]byte, error)
	// Restore replaces the state with a snapshot's.
	Restore(data []byte) error
}

// Node drives one raft member. All its methods run on the node's loop.
type Node struct {
	env env.Env
	cfg Config
	sm  StateMachine
	id  uint64
	rn  *etcdraft.RawNode
	ms  *etcdraft.MemoryStorage
	obs Observer

	// incarnation names this run of the node in proposal headers, so an
	// entry a previous run proposed never matches a waiter of this one.
	incarnation uint64
	seq         uint64

	stopped bool
	stopErr error
	fresh   bool // no raft state yet: waiting for Bootstrap or a leader
	reached bool // a peer's message was stepped: too late to Bootstrap
	ticker  env.Timer
	ticks   uint64
	kicked  bool
	syncing bool

	// Mirror of raft's state as last seen in a Ready.
	term           uint64
	lead           uint64
	role           Role
	leaderNotified bool

	applied     uint64
	appliedTerm uint64
	snapIndex   uint64
	confState   *pb.ConfState
	// snapshotNow asks for a snapshot after this apply batch, whatever the
	// interval: the configuration gained a member.
	snapshotNow bool

	props props
	reads reads

	members map[uint64]Member
	// membersView is Members(), kept until the configuration changes.
	membersView []Member
	removed     map[uint64]bool
	learned     map[uint64]env.NodeID // senders not (yet) in the member list
	lastHeard   map[uint64]uint64     // raft ID -> tick of its last message
	ccQueue     []*ccOp
	ccInflight  *ccOp
	addWaiters  map[uint64]*memberWait
	selfRemove  *selfRemoval
	snapSent    map[uint64]uint64 // raft ID -> tick by which it must have acked

	onLeader []func(isLeader bool, term uint64)
	onStop   []func(error)

	stats Stats
	msgs  msgCounters
	refs  []proposalRef // scratch for decodeEntry
}

// New starts a node on e. It loads e.Storage: when the disk holds raft
// state the node restarts from it (restoring the snapshot into sm, which
// must be empty, and re-applying committed entries after it); otherwise
// the node is fresh and waits either for Bootstrap or for a leader that
// added it with AddMember to reach it. The node ticks from e.Clock from
// the start.
func New(e env.Env, cfg Config, sm StateMachine) (*Node, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if e.Loop == nil || e.Clock == nil || e.Rand == nil || e.Transport == nil || e.Storage == nil {
		return nil, errors.New("raft: env lacks a loop, clock, rand, transport or storage")
	}
	n := &Node{
		env:        e,
		cfg:        cfg,
		sm:         sm,
		id:         cfg.RaftID,
		obs:        cfg.Observer,
		ms:         etcdraft.NewMemoryStorage(),
		confState:  &pb.ConfState{},
		members:    make(map[uint64]Member),
		removed:    make(map[uint64]bool),
		learned:    make(map[uint64]env.NodeID),
		lastHeard:  make(map[uint64]uint64),
		addWaiters: make(map[uint64]*memberWait),
		snapSent:   make(map[uint64]uint64),
	}
	n.incarnation = newIncarnation(e)

	disk, err := e.Storage.Load()
	if err != nil {
		return nil, fmt.Errorf("raft: load disk: %w", err)
	}
	if err := n.restoreDisk(disk); err != nil {
		return nil, err
	}
	rn, err := etcdraft.NewRawNode(&etcdraft.Config{
		ID:                        n.id,
		ElectionTick:              cfg.ElectionTicks,
		HeartbeatTick:             cfg.HeartbeatTicks,
		Storage:                   n.ms,
		Applied:                   n.applied,
		MaxSizePerMsg:             cfg.MaxSizePerMsg,
		MaxUncommittedEntriesSize: cfg.MaxUncommittedBytes,
		MaxInflightMsgs:           cfg.MaxInflightMsgs,
		CheckQuorum:               true,
		PreVote:                   true,
		ReadOnlyOption:            etcdraft.ReadOnlySafe,
		StepDownOnRemoval:         true,
		Logger:                    logger{cfg.Logf},
	})
	if err != nil {
		return nil, fmt.Errorf("raft: %w", err)
	}
	n.rn = rn
	st := rn.BasicStatus()
	n.term, n.lead = st.GetTerm(), st.Lead
	n.ticker = e.Clock.AfterFunc(cfg.Tick, n.onTick)
	n.kick()
	return n, nil
}

// newIncarnation draws a number that differs between runs of one node: a
// restarted simulated node gets the same random stream again, but never the
// same virtual time.
func newIncarnation(e env.Env) uint64 {
	var b [8]byte
	_, _ = e.Rand.Read(b[:])
	x := splitmix(binary.LittleEndian.Uint64(b[:])) ^ splitmix(uint64(e.Clock.Now().UnixNano()))
	if x == 0 {
		x = 1
	}
	return x
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// restoreDisk loads what survived on disk into the state machine and
// raft's in-memory storage.
func (n *Node) restoreDisk(d env.DiskState) error {
	if s := d.Snapshot; s.Index > 0 {
		img, err := decodeSnapshot(s.Data)
		if err != nil {
			return fmt.Errorf("raft: snapshot on disk at %d: %w", s.Index, err)
		}
		if err := n.sm.Restore(img.state); err != nil {
			return fmt.Errorf("raft: restore snapshot on disk at %d: %w", s.Index, err)
		}
		n.installImage(img)
		ps := snapshotToPB(s)
		if err := n.ms.ApplySnapshot(ps); err != nil {
			return fmt.Errorf("raft: snapshot on disk at %d: %w", s.Index, err)
		}
		n.setConfState(ps.GetMetadata().GetConfState())
		n.applied, n.appliedTerm, n.snapIndex = s.Index, s.Term, s.Index
		if n.obs != nil {
			n.obs.SnapshotRestored(n.env.ID, s.Index, s.Term)
		}
	}
	if len(d.Entries) > 0 {
		if d.Entries[0].Index != d.Snapshot.Index+1 {
			return fmt.Errorf("raft: disk log starts at %d, after a snapshot at %d", d.Entries[0].Index, d.Snapshot.Index)
		}
		if err := n.ms.Append(entriesToPB(d.Entries)); err != nil {
			return fmt.Errorf("raft: disk log: %w", err)
		}
	}
	if hs := d.HardState; !hs.IsEmpty() {
		// The commit index is only a hint raft re-learns from the leader;
		// keep it within what the disk holds so raft accepts it.
		last := d.Snapshot.Index + uint64(len(d.Entries))
		hs.Commit = min(max(hs.Commit, d.Snapshot.Index), last)
		if err := n.ms.SetHardState(&pb.HardState{Term: &hs.Term, Vote: &hs.Vote, Commit: &hs.Commit}); err != nil {
			return fmt.Errorf("raft: disk hard state: %w", err)
		}
	}
	n.fresh = d.Snapshot.Index == 0 && d.HardState.IsEmpty() && len(d.Entries) == 0
	return nil
}

// Bootstrap starts a fresh node as one of the initial members of a fixed
// cluster. Every initial member calls it with the same list (order does
// not matter); the list must include this node. Call it right after New:
// it returns ErrInitialized once the node has raft state, from its disk or
// from a peer that reached it first (a node being joined), so a manager
// that restarts can call it unconditionally and ignore ErrInitialized.
func (n *Node) Bootstrap(members []Member) error {
	if n.stopped {
		return ErrStopped
	}
	if !n.fresh || n.reached {
		// A node a leader already reached is being joined; bootstrapping
		// it too would give it a second, conflicting log.
		return ErrInitialized
	}
	if len(members) == 0 {
		return errors.New("raft: bootstrap: no members")
	}
	ms := slices.Clone(members)
	slices.SortFunc(ms, func(a, b Member) int { return cmpU64(a.RaftID, b.RaftID) })
	self := false
	peers := make([]etcdraft.Peer, 0, len(ms))
	for i, m := range ms {
		if m.RaftID == 0 || m.RaftID >= 1<<63 || m.NodeID == "" {
			return fmt.Errorf("raft: bootstrap: member %d has no raft ID or node ID", i)
		}
		if i > 0 && ms[i-1].RaftID == m.RaftID {
			return fmt.Errorf("raft: bootstrap: raft ID %x listed twice", m.RaftID)
		}
		self = self || m.RaftID == n.id
		m.Learner = false
		peers = append(peers, etcdraft.Peer{ID: m.RaftID, Context: encodeContext(ccContext{member: m})})
	}
	if !self {
		return fmt.Errorf("raft: bootstrap: this node (raft ID %x) is not in the member list", n.id)
	}
	if err := n.rn.Bootstrap(peers); err != nil {
		return fmt.Errorf("raft: bootstrap: %w", err)
	}
	n.fresh = false
	n.kick()
	return nil
}

// Campaign makes this node start an election now instead of waiting for
// its election timeout (tests and planned failovers use it).
func (n *Node) Campaign() error {
	if n.stopped {
		return ErrStopped
	}
	err := n.rn.Campaign()
	n.kick()
	return err
}

// Stop stops the node: timers stop, and every waiting proposal, read and
// membership change fails with ErrStopped. Messages and sync completions
// that arrive later are ignored.
func (n *Node) Stop() { n.stopWith(ErrStopped) }

// Err is why the node stopped, or nil while it runs.
func (n *Node) Err() error { return n.stopErr }

// OnLeadershipChange registers f to hear when this node becomes leader
// (isLeader true, once it has applied every entry committed before its
// term, so its state machine is current) and when it stops being leader.
func (n *Node) OnLeadershipChange(f func(isLeader bool, term uint64)) {
	n.onLeader = append(n.onLeader, f)
}

// OnStop registers f to hear that the node stopped on its own: removed
// from the cluster (ErrRemoved), or a fatal error applying or persisting.
// Stop calls it too, with ErrStopped.
func (n *Node) OnStop(f func(error)) { n.onStop = append(n.onStop, f) }

// Step hands the node a message another node sent it; from is the
// sender's authenticated identity. It returns why a message was refused,
// for logs and metrics; refusals need no action.
func (n *Node) Step(from env.NodeID, msg *Message) error {
	if n.stopped {
		return ErrStopped
	}
	m := msg.Raft
	if m == nil {
		return fmt.Errorf("raft: empty message from %s", from)
	}
	if m.GetTo() != n.id {
		return fmt.Errorf("raft: message for raft ID %x reached %x", m.GetTo(), n.id)
	}
	rid := m.GetFrom()
	if msg.Removed {
		// A notice carries no raft message type (its zero value is a local
		// one, refused below): it is checked on its own.
		if known, ok := n.nodeOf(rid); rid == 0 || !ok || known != from {
			return fmt.Errorf("raft: removal notice from non-member %s", from)
		}
		n.stopWith(fmt.Errorf("%w (notified by %s)", ErrRemoved, from))
		return nil
	}
	if rid == 0 || etcdraft.IsLocalMsgTarget(rid) || etcdraft.IsLocalMsg(m.GetType()) {
		return fmt.Errorf("raft: message from %s claims local sender %x or type %s", from, rid, m.GetType())
	}
	if mem, ok := n.members[rid]; ok && mem.NodeID != from {
		return fmt.Errorf("raft: %s sent a message as raft ID %x, which is %s", from, rid, mem.NodeID)
	}
	if n.removed[rid] {
		n.sendRemovedNotice(from, rid)
		return fmt.Errorf("raft: message from removed member %s (raft ID %x)", from, rid)
	}
	switch m.GetType() {
	case pb.MsgProp:
		if err := n.checkForwardedProposal(rid, m); err != nil {
			return fmt.Errorf("raft: proposal from %s: %w", from, err)
		}
		fallthrough
	case pb.MsgReadIndex, pb.MsgTransferLeader:
		// raft rewrites these in place (forwarding sets To; a leader swaps
		// a refused conf change out of the entry slice), and a received
		// message is shared with its sender and any duplicate of itself.
		m = cloneMessage(m)
	case pb.MsgSnap:
		n.stats.SnapshotsReceived++
		n.stats.SnapshotBytesReceived += uint64(len(m.GetSnapshot().GetData()))
	}
	if _, ok := n.members[rid]; !ok {
		n.learned[rid] = from
	}
	n.lastHeard[rid] = n.ticks
	n.reached = true
	n.stats.MessagesReceived++
	n.msgs.count(false, m.GetType())
	err := n.rn.Step(m)
	n.kick()
	if err != nil {
		return fmt.Errorf("raft: step %s from %s: %w", m.GetType(), from, err)
	}
	return nil
}

// checkForwardedProposal keeps a peer from putting what this node would
// not have proposed into the log: a normal entry must decode (or every
// replica would stop on it), and the only conf change a peer may forward
// is its own removal (the leader-removes-itself flow).
func (n *Node) checkForwardedProposal(from uint64, m *pb.Message) error {
	if len(m.GetEntries()) == 0 {
		return errors.New("no entries")
	}
	for _, e := range m.GetEntries() {
		switch e.GetType() {
		case pb.EntryNormal:
			if _, refs, err := decodeEntry(e.GetData(), n.refs[:0]); err != nil {
				return err
			} else {
				n.refs = refs[:0]
			}
		case pb.EntryConfChangeV2:
			cc, err := unmarshalConfChange(e)
			if err != nil {
				return err
			}
			v2 := cc.AsV2()
			if len(v2.GetChanges()) != 1 || v2.GetTransition() != pb.ConfChangeTransitionAuto ||
				v2.GetChanges()[0].GetType() != pb.ConfChangeRemoveNode || v2.GetChanges()[0].GetNodeId() != from {
				return errors.New("a peer may only propose its own removal")
			}
			if _, err := decodeContext(v2.GetContext()); err != nil {
				return err
			}
		default:
			return fmt.Errorf("entry type %s not accepted from a peer", e.GetType())
		}
	}
	return nil
}

func cloneMessage(m *pb.Message) *pb.Message {
	c := &pb.Message{
		Type: m.Type, To: m.To, From: m.From, Term: m.Term, LogTerm: m.LogTerm,
		Index: m.Index, Commit: m.Commit, Vote: m.Vote, Reject: m.Reject,
		RejectHint: m.RejectHint, Context: m.Context, Snapshot: m.Snapshot,
	}
	// The entries themselves are never changed: raft clones a proposed
	// entry before stamping its term and index.
	c.Entries = slices.Clone(m.Entries)
	return c
}

// kick makes sure a turn runs soon: proposals, reads and Ready work
// gathered during the current loop function are handled together.
func (n *Node) kick() {
	if n.kicked || n.stopped {
		return
	}
	n.kicked = true
	n.env.Loop.Post(n.turn)
}

func (n *Node) turn() {
	n.kicked = false
	if n.stopped {
		return
	}
	n.stepSelfRemoval()
	n.flushProposals()
	n.flushReads()
	n.handleReady()
}

func (n *Node) onTick() {
	if n.stopped {
		return
	}
	n.ticker = n.env.Clock.AfterFunc(n.cfg.Tick, n.onTick)
	n.ticks++
	n.rn.Tick()
	n.expireProposals()
	n.expireReads()
	n.expireMembership()
	n.leaderDuties()
	n.kick()
}

// handleReady takes raft's next Ready, stages what it asks to persist and
// syncs; the rest waits for the sync.
func (n *Node) handleReady() {
	if n.syncing || n.stopped || !n.rn.HasReady() {
		return
	}
	rd := n.rn.Ready()
	n.observeState(rd)
	if n.stopped {
		return
	}
	if len(rd.ReadStates) > 0 {
		n.recordReadStates(rd.ReadStates)
	}
	if err := n.stage(rd); err != nil {
		n.fatal(err)
		return
	}
	if !rd.MustSync && etcdraft.IsEmptySnap(rd.Snapshot) {
		// Nothing raft needs durable (at most a new commit index, staged
		// for the next sync): carry on at once.
		n.finishReady(rd)
		return
	}
	n.syncing = true
	n.env.Storage.Sync(func(err error) {
		if n.stopped {
			return
		}
		n.syncing = false
		n.stats.Syncs++
		if err != nil {
			n.fatal(fmt.Errorf("raft: sync: %w", err))
			return
		}
		n.finishReady(rd)
	})
}

// stage hands a Ready's snapshot, entries and hard state to the disk, in
// that order, so a durable hard state never points past durable entries.
func (n *Node) stage(rd etcdraft.Ready) error {
	st := n.env.Storage
	if !etcdraft.IsEmptySnap(rd.Snapshot) {
		if err := st.SaveSnapshot(snapshotFromPB(rd.Snapshot)); err != nil {
			return fmt.Errorf("raft: stage snapshot: %w", err)
		}
	}
	if len(rd.Entries) > 0 {
		if err := st.Append(entriesFromPB(rd.Entries)); err != nil {
			return fmt.Errorf("raft: stage entries: %w", err)
		}
	}
	if !etcdraft.IsEmptyHardState(rd.HardState) {
		hs := rd.HardState
		if err := st.SetHardState(env.HardState{Term: hs.GetTerm(), Vote: hs.GetVote(), Commit: hs.GetCommit()}); err != nil {
			return fmt.Errorf("raft: stage hard state: %w", err)
		}
	}
	return nil
}

// finishReady runs once a Ready's state is durable: raft's storage learns
// it, messages go out, committed entries apply, and raft advances.
func (n *Node) finishReady(rd etcdraft.Ready) {
	if !etcdraft.IsEmptySnap(rd.Snapshot) {
		if err := n.ms.ApplySnapshot(rd.Snapshot); err != nil {
			n.fatal(fmt.Errorf("raft: install snapshot: %w", err))
			return
		}
		if err := n.restoreSnapshot(rd.Snapshot); err != nil {
			n.fatal(err)
			return
		}
	}
	if len(rd.Entries) > 0 {
		if err := n.ms.Append(rd.Entries); err != nil {
			n.fatal(fmt.Errorf("raft: append: %w", err))
			return
		}
	}
	if !etcdraft.IsEmptyHardState(rd.HardState) {
		if err := n.ms.SetHardState(rd.HardState); err != nil {
			n.fatal(fmt.Errorf("raft: hard state: %w", err))
			return
		}
		n.stats.CommitIndex = rd.HardState.GetCommit()
	}
	n.send(rd.Messages)
	n.apply(rd.CommittedEntries)
	if n.stopped {
		return
	}
	n.rn.Advance(rd)
	n.maybeSnapshot()
	if n.stopped {
		return
	}
	n.resolveReads()
	n.maybeNotifyLeader()
	n.pumpConfChanges()
	if n.rn.HasReady() || len(n.props.queued) > 0 || len(n.reads.queued) > 0 {
		n.kick()
	}
}

func (n *Node) send(msgs []*pb.Message) {
	for _, m := range msgs {
		to := m.GetTo()
		node, ok := n.nodeOf(to)
		if !ok {
			n.stats.MessagesDropped++
			n.rn.ReportUnreachable(to)
			if m.GetType() == pb.MsgSnap {
				n.rn.ReportSnapshot(to, etcdraft.SnapshotFailure)
			}
			continue
		}
		if m.GetType() == pb.MsgSnap {
			n.stats.SnapshotsSent++
			n.stats.SnapshotBytesSent += uint64(len(m.GetSnapshot().GetData()))
			// raft leaves StateSnapshot when the follower acknowledges the
			// snapshot's index; if it never does (the message was lost),
			// report a failure so raft sends another.
			n.snapSent[to] = n.ticks + 2*uint64(n.cfg.ElectionTicks)
		}
		n.stats.MessagesSent++
		n.msgs.count(true, m.GetType())
		n.env.Transport.Send(node, &Message{Raft: m})
	}
}

// nodeOf maps a raft ID to the node to send to.
func (n *Node) nodeOf(rid uint64) (env.NodeID, bool) {
	if m, ok := n.members[rid]; ok {
		return m.NodeID, true
	}
	id, ok := n.learned[rid]
	return id, ok
}

func (n *Node) sendRemovedNotice(to env.NodeID, rid uint64) {
	n.env.Transport.Send(to, &Message{
		Raft:    &pb.Message{From: &n.id, To: &rid},
		Removed: true,
	})
}

// observeState follows raft's term, leader and role, telling the observer
// and failing what a change of leader leaves in doubt.
func (n *Node) observeState(rd etcdraft.Ready) {
	term, lead, role := n.term, n.lead, n.role
	if rd.HardState != nil && rd.HardState.GetTerm() > 0 {
		term = rd.HardState.GetTerm()
	}
	if rd.SoftState != nil {
		lead, role = rd.SoftState.Lead, roleOf(rd.SoftState.RaftState)
	}
	if term == n.term && lead == n.lead && role == n.role {
		return
	}
	prevLead, wasLeader := n.lead, n.role == RoleLeader
	n.term, n.lead, n.role = term, lead, role
	if n.obs != nil {
		leader, _ := n.nodeOf(lead)
		if lead == n.id {
			leader = n.env.ID
		}
		n.obs.StateChanged(StateChange{Node: n.env.ID, Term: term, Leader: leader, LeaderID: lead, Role: role})
	}
	if lead != prevLead && lead != 0 {
		n.stats.LeaderChanges++
	}
	if wasLeader && role != RoleLeader {
		n.leaderNotified = false
		n.failLeaderWork(ErrLeadershipLost)
		n.notifyLeader(false, term)
	}
	n.failStaleProposals()
	n.reissueReads()
	if n.selfRemove != nil {
		n.selfRemove.nextTry = n.ticks // forward the removal to the new leader now
	}
}

func roleOf(s etcdraft.StateType) Role {
	switch s {
	case etcdraft.StateLeader:
		return RoleLeader
	case etcdraft.StateCandidate:
		return RoleCandidate
	case etcdraft.StatePreCandidate:
		return RolePreCandidate
	default:
		return RoleFollower
	}
}

func (n *Node) maybeNotifyLeader() {
	if n.role == RoleLeader && !n.leaderNotified && n.appliedTerm == n.term {
		n.leaderNotified = true
		n.notifyLeader(true, n.term)
	}
}

func (n *Node) notifyLeader(isLeader bool, term uint64) {
	for _, f := range n.onLeader {
		f(isLeader, term)
		if n.stopped && isLeader {
			return
		}
	}
}

// apply applies committed entries in order. It stops early if the node
// stops (a fatal error, or its own removal).
func (n *Node) apply(ents []*pb.Entry) {
	for _, e := range ents {
		if n.stopped {
			return
		}
		switch e.GetType() {
		case pb.EntryNormal:
			n.applyNormal(e)
		case pb.EntryConfChange, pb.EntryConfChangeV2:
			n.applyConfChange(e)
		default:
			n.fatal(fmt.Errorf("%w: entry %d has type %s", ErrCorruptEntry, e.GetIndex(), e.GetType()))
		}
		if n.stopped && !errors.Is(n.stopErr, ErrRemoved) {
			return
		}
		n.applied, n.appliedTerm = e.GetIndex(), e.GetTerm()
		n.stats.EntriesCommitted++
		n.stats.AppliedIndex = n.applied
		if n.obs != nil {
			n.obs.EntryApplied(AppliedEntry{
				Node: n.env.ID, Index: e.GetIndex(), Term: e.GetTerm(),
				Type: entryTypeFromPB(e.GetType()), Data: e.GetData(),
			})
		}
	}
}

func (n *Node) applyNormal(e *pb.Entry) {
	inc, refs, err := decodeEntry(e.GetData(), n.refs[:0])
	n.refs = refs[:0]
	if err != nil {
		n.fatal(fmt.Errorf("raft: entry %d: %w", e.GetIndex(), err))
		return
	}
	for _, r := range refs {
		var own Proposal
		if inc == n.incarnation {
			own = n.props.waitingFor(r.seq)
		}
		res, err := n.sm.Apply(e.GetIndex(), r.data, own)
		if err != nil {
			n.fatal(fmt.Errorf("raft: apply entry %d: %w", e.GetIndex(), err))
			return
		}
		if inc == n.incarnation {
			n.props.applied(n, r.seq, res)
			if n.stopped {
				return
			}
		}
	}
}

// fatal stops the node with an error it cannot get past.
func (n *Node) fatal(err error) { n.stopWith(err) }

func (n *Node) stopWith(err error) {
	if n.stopped {
		return
	}
	n.stopped, n.stopErr = true, err
	if n.ticker != nil {
		n.ticker.Stop()
	}
	wasLeader := n.role == RoleLeader && n.leaderNotified
	failErr := err
	if !errors.Is(err, ErrStopped) {
		failErr = fmt.Errorf("%w: %w", ErrStopped, err)
	}
	n.props.failAll(n, failErr)
	n.reads.failAll(n, failErr)
	n.failLeaderWork(failErr)
	if sr := n.selfRemove; sr != nil {
		n.selfRemove = nil
		if errors.Is(err, ErrRemoved) {
			// The removal it asked for happened: a member's notice can
			// come before this node applies the entry itself.
			sr.done(nil)
		} else {
			sr.done(failErr)
		}
	}
	if wasLeader {
		for _, f := range n.onLeader {
			f(false, n.term)
		}
	}
	for _, f := range n.onStop {
		f(err)
	}
}

// later calls f on the loop after the current function: callbacks never
// run inside the call that registered them.
func (n *Node) later(f func()) { n.env.Loop.Post(f) }

// Status reports this node's view of the cluster.
func (n *Node) Status() Status {
	st := n.rn.BasicStatus()
	s := Status{
		RaftID:   n.id,
		NodeID:   n.env.ID,
		Term:     st.GetTerm(),
		LeaderID: st.Lead,
		IsLeader: st.RaftState == etcdraft.StateLeader && !n.stopped,
		Role:     roleOf(st.RaftState),
		Applied:  n.applied,
		Commit:   st.GetCommit(),
		Voters:   slices.Sorted(slices.Values(n.confState.GetVoters())),
		Learners: slices.Sorted(slices.Values(n.confState.GetLearners())),
		Stopped:  n.stopped,
		Err:      n.stopErr,
	}
	if st.Lead == n.id {
		s.Leader = n.env.ID
	} else if id, ok := n.nodeOf(st.Lead); ok {
		s.Leader = id
	}
	return s
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	s := n.stats
	s.AppliedIndex = n.applied
	s.Messages = n.msgs.list()
	return s
}

// ID is this node's raft ID.
func (n *Node) ID() uint64 { return n.id }
