package raft

import (
	"errors"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	etcdraft "go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"

	"github.com/swarmsim/swarmsim/engine/env"
)

type ccKind uint8

const (
	ccAddLearner ccKind = iota + 1
	ccPromote
	ccRemove
)

func (k ccKind) String() string {
	switch k {
	case ccAddLearner:
		return "add learner"
	case ccPromote:
		return "promote"
	default:
		return "remove"
	}
}

// ccOp is one conf change the leader proposes. The leader proposes one at
// a time, and only once it has applied an entry of its own term, so raft
// never turns a proposal into a no-op because an earlier change is still
// pending.
type ccOp struct {
	kind     ccKind
	member   Member
	seq      uint64
	done     func(error) // nil for promotions the leader decides itself
	deadline uint64
}

// memberWait is an AddMember waiting for its member to become a voter.
type memberWait struct {
	done     func(error)
	deadline uint64
}

// selfRemoval is the leader-removes-itself flow: transfer leadership to
// the most up-to-date follower, then forward the removal to it.
type selfRemoval struct {
	done     func(error)
	deadline uint64
	seq      uint64
	nextTry  uint64
}

// Members returns the members (voters and learners), sorted by raft ID.
//
// The slice is shared until the membership changes: callers must not
// modify it (the dispatcher asks on every heartbeat).
func (n *Node) Members() []Member {
	if n.membersView != nil {
		return n.membersView
	}
	out := make([]Member, 0, len(n.members))
	learners := n.confState.GetLearners()
	for _, m := range n.members {
		m.Learner = slices.Contains(learners, m.RaftID)
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b Member) int { return cmpU64(a.RaftID, b.RaftID) })
	n.membersView = out
	return out
}

// setConfState records a new configuration; members change with it.
func (n *Node) setConfState(cs *pb.ConfState) {
	n.confState = cs
	n.membersView = nil
}

// MemberByNode finds the member running on node id.
func (n *Node) MemberByNode(id env.NodeID) (Member, bool) {
	for _, m := range n.Members() {
		if m.NodeID == id {
			return m, true
		}
	}
	return Member{}, false
}

// Reachable reports whether this leader has heard from the member on node
// id within an election timeout (itself always): what its quorum checks
// count. ok is false when this node does not lead, or id is no member.
func (n *Node) Reachable(id env.NodeID) (reachable, ok bool) {
	if n.stopped || !n.isLeader() {
		return false, false
	}
	m, found := n.MemberByNode(id)
	if !found {
		return false, false
	}
	return n.active(m.RaftID, false), true
}

// AddMember adds m to the cluster. It must run on the leader (otherwise
// done gets a *NotLeaderError). The member joins as a learner; once its log
// is within Config.PromoteLagEntries of the leader's it is promoted to
// voter, and then done(nil) runs. The new node is started fresh (New
// without Bootstrap) with m.RaftID and catches up from the leader.
func (n *Node) AddMember(m Member, done func(error)) {
	if done == nil {
		done = func(error) {}
	}
	if err := n.checkAdd(m); err != nil {
		n.later(func() { done(err) })
		return
	}
	deadline := n.ticks + n.cfg.ticks(n.cfg.MembershipTimeout)
	m.Learner = false
	n.addWaiters[m.RaftID] = &memberWait{done: done, deadline: deadline}
	n.seq++
	n.ccQueue = append(n.ccQueue, &ccOp{kind: ccAddLearner, member: m, seq: n.seq, deadline: deadline})
	n.pumpConfChanges()
	n.kick()
}

func (n *Node) checkAdd(m Member) error {
	switch {
	case n.stopped:
		return n.stoppedErr()
	case !n.isLeader():
		return n.notLeader()
	case m.RaftID == 0 || m.RaftID >= 1<<63 || m.NodeID == "":
		return fmt.Errorf("raft: add member: raft ID %x or node ID %q invalid", m.RaftID, m.NodeID)
	case n.removed[m.RaftID]:
		return fmt.Errorf("raft: add %s: %w", m, ErrIDRemoved)
	case n.inConfig(m.RaftID) || n.addWaiters[m.RaftID] != nil:
		return fmt.Errorf("raft: add %s: %w", m, ErrMemberExists)
	}
	for _, o := range n.members {
		if o.NodeID == m.NodeID {
			return fmt.Errorf("raft: add %s: node already a member as %s: %w", m, o, ErrMemberExists)
		}
	}
	return nil
}

// RemoveMember removes the member with raft ID id. It must run on the
// leader. A change that would leave fewer reachable voters than a quorum is
// refused with ErrQuorumAtRisk. When the leader removes itself it first
// transfers leadership to the most up-to-date follower, then has the new
// leader commit the removal; done(nil) runs when this node applies its own
// removal, just before it stops with ErrRemoved.
func (n *Node) RemoveMember(id uint64, done func(error)) {
	if done == nil {
		done = func(error) {}
	}
	err := n.checkRemove(id)
	if err != nil {
		n.later(func() { done(err) })
		return
	}
	deadline := n.ticks + n.cfg.ticks(n.cfg.MembershipTimeout)
	n.seq++
	if id == n.id {
		n.selfRemove = &selfRemoval{done: done, deadline: deadline, seq: n.seq, nextTry: n.ticks}
		n.kick()
		return
	}
	m, ok := n.members[id]
	if !ok {
		m = Member{RaftID: id}
	}
	n.ccQueue = append(n.ccQueue, &ccOp{kind: ccRemove, member: m, seq: n.seq, done: done, deadline: deadline})
	n.pumpConfChanges()
	n.kick()
}

func (n *Node) checkRemove(id uint64) error {
	switch {
	case n.stopped:
		return n.stoppedErr()
	case !n.isLeader():
		return n.notLeader()
	case !n.inConfig(id):
		return fmt.Errorf("raft: remove raft ID %x: %w", id, ErrUnknownMember)
	case n.selfRemove != nil:
		return errors.New("raft: remove: this leader is already removing itself")
	}
	for _, op := range n.ccQueue {
		if op.member.RaftID == id && op.kind == ccRemove {
			return fmt.Errorf("raft: remove raft ID %x: already being removed", id)
		}
	}
	if op := n.ccInflight; op != nil && op.kind == ccRemove && op.member.RaftID == id {
		return fmt.Errorf("raft: remove raft ID %x: already being removed", id)
	}
	return n.quorumAfter(0, id)
}

func (n *Node) isLeader() bool {
	return n.rn.BasicStatus().RaftState == etcdraft.StateLeader
}

func (n *Node) notLeader() error {
	lead := n.rn.BasicStatus().Lead
	e := &NotLeaderError{LeaderID: lead}
	if lead != 0 {
		e.Leader, _ = n.nodeOf(lead)
	}
	return e
}

func (n *Node) inConfig(id uint64) bool {
	return slices.Contains(n.confState.GetVoters(), id) || slices.Contains(n.confState.GetLearners(), id)
}

// active says whether the leader has heard from a peer lately. raft's
// RecentActive is reset every election timeout under CheckQuorum and set
// again by the next response, so right after a reset it undercounts; a
// message within the last election timeout counts too.
func (n *Node) active(id uint64, recent bool) bool {
	if id == n.id || recent {
		return true
	}
	t, ok := n.lastHeard[id]
	return ok && n.ticks-t <= uint64(n.cfg.ElectionTicks)
}

// quorumAfter refuses a change (adding voter add, removing member remove;
// zero for none) that would leave fewer reachable voters than a quorum.
func (n *Node) quorumAfter(add, remove uint64) error {
	var voters, reachable int
	n.rn.WithProgress(func(id uint64, typ etcdraft.ProgressType, pr tracker.Progress) {
		isVoter := typ == etcdraft.ProgressTypePeer
		if id == add {
			isVoter = true
		}
		if id == remove || !isVoter {
			return
		}
		voters++
		if n.active(id, pr.RecentActive) {
			reachable++
		}
	})
	verb, target := "removing", remove
	if add != 0 {
		verb, target = "promoting", add
	}
	what := fmt.Sprintf("%s raft ID %x", verb, target)
	if m, ok := n.members[target]; ok {
		what = verb + " " + m.String()
	}
	if voters == 0 {
		return fmt.Errorf("%w: %s would leave no voters", ErrQuorumAtRisk, what)
	}
	if need := voters/2 + 1; reachable < need {
		return fmt.Errorf("%w: %s would leave %d voters of which %d are reachable, and a quorum needs %d",
			ErrQuorumAtRisk, what, voters, reachable, need)
	}
	return nil
}

// pumpConfChanges proposes the next queued conf change when raft will
// take it: this node leads, has applied an entry of its term (so raft's
// pending-change guard is clear), no transfer is under way and no change
// of ours is in flight.
func (n *Node) pumpConfChanges() {
	if n.stopped || n.ccInflight != nil || len(n.ccQueue) == 0 {
		return
	}
	st := n.rn.BasicStatus()
	if st.RaftState != etcdraft.StateLeader || n.appliedTerm != st.GetTerm() || st.LeadTransferee != 0 {
		return
	}
	op := n.ccQueue[0]
	if !n.proposeConfChange(op.confChange(n.incarnation)) {
		return // raft would not take it now; the next tick tries again
	}
	n.ccQueue = n.ccQueue[1:]
	n.ccInflight = op
	n.kick()
}

func (op *ccOp) confChange(inc uint64) *pb.ConfChangeV2 {
	typ := pb.ConfChangeRemoveNode
	switch op.kind {
	case ccAddLearner:
		typ = pb.ConfChangeAddLearnerNode
	case ccPromote:
		typ = pb.ConfChangeAddNode
	}
	return &pb.ConfChangeV2{
		Changes: []*pb.ConfChangeSingle{{Type: typ.Enum(), NodeId: new(op.member.RaftID)}},
		Context: encodeContext(ccContext{inc: inc, seq: op.seq, member: op.member}),
	}
}

// proposeConfChange steps a conf change into raft (a follower forwards it
// to the leader). It reports false when raft refused it: raft signals that
// only by swapping an empty entry into the proposal.
func (n *Node) proposeConfChange(cc *pb.ConfChangeV2) bool {
	data, err := proto.Marshal(cc)
	if err != nil {
		return false
	}
	ent := &pb.Entry{Type: pb.EntryConfChangeV2.Enum(), Data: data}
	msg := &pb.Message{Type: pb.MsgProp.Enum(), From: new(n.id), Entries: []*pb.Entry{ent}}
	if err := n.rn.Step(msg); err != nil {
		return false
	}
	return msg.Entries[0] == ent
}

func unmarshalConfChange(e *pb.Entry) (pb.ConfChangeI, error) {
	switch e.GetType() {
	case pb.EntryConfChange:
		var cc pb.ConfChange
		if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
			return nil, fmt.Errorf("%w: conf change at %d: %w", ErrCorruptEntry, e.GetIndex(), err)
		}
		return &cc, nil
	default:
		var cc pb.ConfChangeV2
		if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
			return nil, fmt.Errorf("%w: conf change at %d: %w", ErrCorruptEntry, e.GetIndex(), err)
		}
		return &cc, nil
	}
}

// applyConfChange applies a committed conf change. Whether it is valid is
// decided from the configuration it applies to, which every replica shares
// at that index, so every replica takes or skips it alike.
func (n *Node) applyConfChange(e *pb.Entry) {
	cc, err := unmarshalConfChange(e)
	if err != nil {
		n.fatal(err)
		return
	}
	v2 := cc.AsV2()
	var ctx ccContext
	hasCtx := len(v2.GetContext()) > 0
	if hasCtx {
		if ctx, err = decodeContext(v2.GetContext()); err != nil {
			n.fatal(fmt.Errorf("raft: entry %d: %w", e.GetIndex(), err))
			return
		}
	}
	if err := n.validateConfChange(v2, ctx, hasCtx); err != nil {
		n.finishConfChange(ctx, fmt.Errorf("%w: entry %d: %w", ErrRefused, e.GetIndex(), err))
		return
	}
	ch := v2.GetChanges()[0]
	id := ch.GetNodeId()
	prev, known := n.members[id]
	n.setConfState(n.rn.ApplyConfChange(v2))
	switch ch.GetType() {
	case pb.ConfChangeAddNode, pb.ConfChangeAddLearnerNode:
		n.members[id] = Member{RaftID: id, NodeID: ctx.member.NodeID, Addr: ctx.member.Addr}
		delete(n.learned, id)
		// raft drops a snapshot whose configuration lacks the receiver,
		// and a leader sends its latest one: without a fresh snapshot, a
		// joiner behind the compacted log would wait for the next
		// interval's snapshot, forever on an idle cluster.
		n.snapshotNow = ch.GetType() == pb.ConfChangeAddLearnerNode || !known
		if w := n.addWaiters[id]; w != nil && ch.GetType() == pb.ConfChangeAddNode {
			delete(n.addWaiters, id)
			w.done(nil)
		}
	case pb.ConfChangeRemoveNode:
		delete(n.members, id)
		delete(n.learned, id)
		delete(n.lastHeard, id)
		delete(n.snapSent, id)
		n.removed[id] = true
		if w := n.addWaiters[id]; w != nil {
			delete(n.addWaiters, id)
			w.done(fmt.Errorf("raft: add raft ID %x: %w", id, ErrRemoved))
		}
		if known && id != n.id && n.role == RoleLeader {
			// The leader stops replicating to it, so it might never learn.
			n.sendRemovedNotice(prev.NodeID, id)
		}
	}
	n.finishConfChange(ctx, nil)
	if ch.GetType() == pb.ConfChangeRemoveNode && id == n.id {
		if sr := n.selfRemove; sr != nil {
			n.selfRemove = nil
			sr.done(nil)
		}
		n.stopWith(fmt.Errorf("%w at index %d", ErrRemoved, e.GetIndex()))
	}
}

func (n *Node) validateConfChange(v2 *pb.ConfChangeV2, ctx ccContext, hasCtx bool) error {
	if len(v2.GetChanges()) != 1 || v2.GetTransition() != pb.ConfChangeTransitionAuto {
		return errors.New("only single-member changes are supported")
	}
	ch := v2.GetChanges()[0]
	id := ch.GetNodeId()
	voters, learners := n.confState.GetVoters(), n.confState.GetLearners()
	isVoter, isLearner := slices.Contains(voters, id), slices.Contains(learners, id)
	switch {
	case id == 0:
		return errors.New("raft ID 0")
	case ch.GetType() == pb.ConfChangeAddNode || ch.GetType() == pb.ConfChangeAddLearnerNode:
		switch {
		case n.removed[id]:
			return fmt.Errorf("raft ID %x was removed", id)
		case isVoter && ch.GetType() == pb.ConfChangeAddLearnerNode:
			// Adding a voter again is harmless and must pass: Bootstrap
			// gives raft the whole initial configuration before the
			// bootstrap entries apply, while a member that joins later
			// replays them one by one.
			return fmt.Errorf("raft ID %x is a voter; it cannot become a learner", id)
		case ch.GetType() == pb.ConfChangeAddLearnerNode && isLearner:
			return fmt.Errorf("raft ID %x is already a learner", id)
		case !hasCtx || ctx.member.RaftID != id || ctx.member.NodeID == "":
			return fmt.Errorf("raft ID %x: no member in the context", id)
		}
	case ch.GetType() == pb.ConfChangeRemoveNode:
		switch {
		case !isVoter && !isLearner:
			return fmt.Errorf("raft ID %x is not a member", id)
		case isVoter && len(voters) == 1:
			return fmt.Errorf("raft ID %x is the last voter", id)
		}
	default:
		return fmt.Errorf("conf change type %s not supported", ch.GetType())
	}
	return nil
}

// finishConfChange completes the leader's in-flight change when ctx names
// it.
func (n *Node) finishConfChange(ctx ccContext, err error) {
	if ctx.inc != n.incarnation {
		return
	}
	if sr := n.selfRemove; sr != nil && sr.seq == ctx.seq && err != nil {
		n.selfRemove = nil
		sr.done(err)
		return
	}
	op := n.ccInflight
	if op == nil || op.seq != ctx.seq {
		return
	}
	n.ccInflight = nil
	n.finishOp(op, err)
}

func (n *Node) finishOp(op *ccOp, err error) {
	if op.done != nil {
		op.done(err)
	}
	if err != nil && op.kind == ccAddLearner {
		if w := n.addWaiters[op.member.RaftID]; w != nil {
			delete(n.addWaiters, op.member.RaftID)
			w.done(err)
		}
	}
}

// failLeaderWork fails the membership work only a leader can finish.
func (n *Node) failLeaderWork(err error) {
	op, queue := n.ccInflight, n.ccQueue
	n.ccInflight, n.ccQueue = nil, nil
	if op != nil {
		n.finishOp(op, err)
	}
	for _, op := range queue {
		n.finishOp(op, err)
	}
	for _, id := range sortedKeys(n.addWaiters) {
		if w := n.addWaiters[id]; w != nil {
			delete(n.addWaiters, id)
			w.done(err)
		}
	}
	clear(n.snapSent)
}

func (n *Node) expireMembership() {
	now := n.ticks
	timeout := func(what string) error {
		return fmt.Errorf("%w: %s not done within %v", ErrTimeout, what, n.cfg.MembershipTimeout)
	}
	if op := n.ccInflight; op != nil && op.deadline <= now {
		n.ccInflight = nil
		n.finishOp(op, timeout(op.kind.String()+" "+op.member.String()))
	}
	kept := n.ccQueue[:0]
	var expired []*ccOp
	for _, op := range n.ccQueue {
		if op.deadline <= now {
			expired = append(expired, op)
		} else {
			kept = append(kept, op)
		}
	}
	n.ccQueue = kept
	for _, op := range expired {
		n.finishOp(op, timeout(op.kind.String()+" "+op.member.String()))
	}
	for _, id := range sortedKeys(n.addWaiters) {
		if w := n.addWaiters[id]; w != nil && w.deadline <= now {
			delete(n.addWaiters, id)
			w.done(timeout(fmt.Sprintf("promoting raft ID %x (it stays a learner until it catches up)", id)))
		}
	}
	if sr := n.selfRemove; sr != nil && sr.deadline <= now {
		n.selfRemove = nil
		sr.done(timeout("removing this leader"))
	}
}

// leaderDuties runs every tick on the leader.
func (n *Node) leaderDuties() {
	st := n.rn.BasicStatus()
	if st.RaftState != etcdraft.StateLeader {
		clear(n.snapSent)
		return
	}
	n.checkSnapshotsSent()
	n.maybePromote(st)
	n.pumpConfChanges()
}

// checkSnapshotsSent reports a snapshot as failed when its follower has
// not acknowledged it in time, so raft sends another.
func (n *Node) checkSnapshotsSent() {
	if len(n.snapSent) == 0 {
		return
	}
	waiting := make(map[uint64]bool, len(n.snapSent))
	n.rn.WithProgress(func(id uint64, _ etcdraft.ProgressType, pr tracker.Progress) {
		if _, ok := n.snapSent[id]; ok && pr.State == tracker.StateSnapshot {
			waiting[id] = true
		}
	})
	for _, id := range sortedKeys(n.snapSent) {
		switch {
		case !waiting[id]:
			delete(n.snapSent, id)
		case n.ticks >= n.snapSent[id]:
			delete(n.snapSent, id)
			n.rn.ReportSnapshot(id, etcdraft.SnapshotFailure)
		}
	}
}

// maybePromote queues the promotion of the first learner that has caught
// up. Any leader does this, so an addition survives a change of leader.
func (n *Node) maybePromote(st etcdraft.BasicStatus) {
	if n.ccInflight != nil || len(n.ccQueue) > 0 || n.appliedTerm != st.GetTerm() {
		return
	}
	type learner struct {
		id, match uint64
		recent    bool
	}
	var selfMatch uint64
	var ls []learner
	n.rn.WithProgress(func(id uint64, typ etcdraft.ProgressType, pr tracker.Progress) {
		if id == n.id {
			selfMatch = pr.Match
		}
		if typ == etcdraft.ProgressTypeLearner {
			ls = append(ls, learner{id, pr.Match, pr.RecentActive})
		}
	})
	for _, l := range ls {
		m, ok := n.members[l.id]
		if !ok || !n.active(l.id, l.recent) || l.match+n.cfg.PromoteLagEntries < selfMatch {
			continue
		}
		if n.quorumAfter(l.id, 0) != nil {
			continue
		}
		n.seq++
		n.ccQueue = append(n.ccQueue, &ccOp{
			kind: ccPromote, member: m, seq: n.seq,
			deadline: n.ticks + n.cfg.ticks(n.cfg.MembershipTimeout),
		})
		return
	}
}

// stepSelfRemoval moves the leader-removes-itself flow on: while this node
// leads, hand leadership to the most up-to-date voter; once another node
// leads, forward the removal to it (again each election timeout until it
// applies: a new leader refuses conf changes until it has applied an entry
// of its own term).
func (n *Node) stepSelfRemoval() {
	sr := n.selfRemove
	if sr == nil || n.ticks < sr.nextTry {
		return
	}
	sr.nextTry = n.ticks + uint64(n.cfg.ElectionTicks)
	st := n.rn.BasicStatus()
	switch {
	case st.RaftState == etcdraft.StateLeader:
		if st.LeadTransferee != 0 {
			return
		}
		if target := n.transferTarget(); target != 0 {
			n.rn.TransferLeader(target)
		}
	case st.Lead != 0:
		self, ok := n.members[n.id]
		if !ok {
			self = Member{RaftID: n.id, NodeID: n.env.ID}
		}
		op := &ccOp{kind: ccRemove, member: self, seq: sr.seq}
		n.proposeConfChange(op.confChange(n.incarnation))
	}
}

// transferTarget is the reachable voter with the longest log, lowest raft
// ID first on ties.
func (n *Node) transferTarget() uint64 {
	var best, bestMatch uint64
	n.rn.WithProgress(func(id uint64, typ etcdraft.ProgressType, pr tracker.Progress) {
		if id == n.id || typ != etcdraft.ProgressTypePeer || !n.active(id, pr.RecentActive) {
			return
		}
		if best == 0 || pr.Match > bestMatch {
			best, bestMatch = id, pr.Match
		}
	})
	return best
}

func sortedKeys[V any](m map[uint64]V) []uint64 {
	keys := make([]uint64, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
