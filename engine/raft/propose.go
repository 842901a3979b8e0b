package raft

import (
	"cmp"
	"fmt"
	"slices"

	pb "go.etcd.io/raft/v3/raftpb"
)

// Proposal is the proposer's side of one Propose call. It is an alias,
// so that a package below raft (the store) can name the same type.
type Proposal = interface {
	// Done gets the outcome, exactly once, on the loop and never inside
	// Propose: Apply's result once the entry applied on this node, or an
	// error.
	Done(result any, err error)
}

// DoneFunc is a Proposal that calls a function (none when nil).
type DoneFunc func(result any, err error)

// Done implements Proposal.
func (f DoneFunc) Done(result any, err error) {
	if f != nil {
		f(result, err)
	}
}

// proposal is one Propose call from queueing until its done runs. It is
// held by value, in the queue and then among the waiting ones, so that a
// proposal costs no allocation of its own; done is nil once it ran.
type proposal struct {
	seq      uint64
	data     []byte
	done     Proposal
	deadline uint64 // tick
	// term and lead are raft's when the proposal was stepped: a change of
	// either leaves its fate in doubt.
	term, lead uint64
}

type props struct {
	queued []proposal // this turn's proposals, not yet stepped
	// waiting holds the proposals stepped into raft and not yet answered,
	// in stepping order: by increasing seq, with deadlines growing along
	// it. Their entries apply in that order too, so the one applied is
	// almost always at the front: no map insert and delete per proposal.
	// An answered proposal leaves its slot (done nil) until the front
	// passes it.
	waiting []proposal
	head    int // waiting[:head] are answered
	live    int // slots of waiting[head:] still waiting
}

// add appends a proposal just stepped, whose seq is above every waiting
// one's.
func (ps *props) add(p *proposal) {
	ps.waiting = append(ps.waiting, *p)
	ps.live++
}

// find returns the index in waiting of the proposal of seq still waiting,
// or -1.
func (ps *props) find(seq uint64) int {
	w := ps.waiting[ps.head:]
	i := 0
	if len(w) == 0 || w[0].seq != seq {
		var found bool
		if i, found = slices.BinarySearchFunc(w, seq, func(e proposal, seq uint64) int { return cmp.Compare(e.seq, seq) }); !found {
			return -1
		}
	}
	if w[i].done == nil {
		return -1
	}
	return ps.head + i
}

// take removes the proposal of seq from the waiting ones and returns its
// done, or nil if none waits under seq.
func (ps *props) take(seq uint64) Proposal {
	i := ps.find(seq)
	if i < 0 {
		return nil
	}
	done := ps.waiting[i].done
	ps.waiting[i] = proposal{seq: seq}
	ps.live--
	ps.trim()
	return done
}

// trim moves the front past answered slots, and gives their room back.
func (ps *props) trim() {
	for ps.head < len(ps.waiting) && ps.waiting[ps.head].done == nil {
		ps.head++
	}
	switch {
	case ps.head == len(ps.waiting):
		ps.waiting, ps.head = ps.waiting[:0], 0
	case ps.head >= 256 && 2*ps.head >= len(ps.waiting):
		n := copy(ps.waiting, ps.waiting[ps.head:])
		clear(ps.waiting[n:])
		ps.waiting, ps.head = ps.waiting[:n], 0
	}
}

// Propose proposes data for the log. p.Done is called exactly once, on
// the loop and never inside Propose: with Apply's result once the entry is
// applied on this node, or with an error (ErrNoLeader, ErrProposalDropped,
// ErrLeadershipLost, ErrTimeout, ErrStopped, ErrTooLarge, ErrOverloaded).
// ErrLeadershipLost and ErrTimeout are ambiguous: the entry may still
// commit. p may be nil. data must not change after the call. Until p.Done
// runs, the state machine's Apply of these bytes gets p as own.
//
// Proposals made during one loop turn reach raft in one step and are
// persisted and replicated by one Ready, packed into shared entries unless
// Config.EntryPerProposal.
func (n *Node) Propose(data []byte, p Proposal) {
	done := p
	if done == nil {
		done = DoneFunc(nil)
	}
	var err error
	switch {
	case n.stopped:
		err = n.stoppedErr()
	case len(data) > n.cfg.MaxProposalBytes:
		err = fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), n.cfg.MaxProposalBytes)
	case n.props.live+len(n.props.queued) >= n.cfg.MaxInflightProposals:
		err = fmt.Errorf("%w: %d waiting", ErrOverloaded, n.props.live+len(n.props.queued))
	}
	if err != nil {
		n.stats.ProposalsFailed++
		n.later(func() { done.Done(nil, err) })
		return
	}
	n.seq++
	n.props.queued = append(n.props.queued, proposal{seq: n.seq, data: data, done: done})
	n.stats.Proposals++
	n.kick()
}

func (n *Node) stoppedErr() error {
	if n.stopErr == nil || n.stopErr == ErrStopped {
		return ErrStopped
	}
	return fmt.Errorf("%w: %w", ErrStopped, n.stopErr)
}

// flushProposals steps this turn's proposals into raft as one MsgProp.
func (n *Node) flushProposals() {
	q := n.props.queued
	if len(q) == 0 {
		return
	}
	n.props.queued = nil
	st := n.rn.BasicStatus()
	if st.Lead == 0 {
		n.props.fail(n, q, ErrNoLeader)
		return
	}
	msg := &pb.Message{Type: pb.MsgProp.Enum(), From: new(n.id), Entries: n.buildEntries(q)}
	if err := n.rn.Step(msg); err != nil {
		n.props.fail(n, q, fmt.Errorf("%w: %w", ErrProposalDropped, err))
		return
	}
	deadline := n.ticks + n.cfg.ticks(n.cfg.ProposalTimeout)
	for i := range q {
		p := &q[i]
		p.deadline, p.term, p.lead = deadline, st.GetTerm(), st.Lead
		n.props.add(p)
	}
	// No callback ran since q was taken, so nothing queued meanwhile: the
	// next turn's proposals reuse q's room (its entries were copied).
	if n.props.queued == nil {
		clear(q)
		n.props.queued = q[:0]
	}
}

// buildEntries turns proposals into raft entries: one each, or packed.
func (n *Node) buildEntries(q []proposal) []*pb.Entry {
	if n.cfg.EntryPerProposal {
		// Raft clones what it is stepped (raft.appendEntry), so the
		// entries and their data share one allocation each, whatever
		// their number.
		size := 0
		for _, p := range q {
			size += singleHeaderMax + len(p.data)
		}
		buf := make([]byte, 0, size)
		slab := make([]pb.Entry, len(q))
		ents := make([]*pb.Entry, len(q))
		for i, p := range q {
			start := len(buf)
			buf = appendSingle(buf, n.incarnation, p.seq, p.data)
			slab[i].Data = buf[start:len(buf):len(buf)]
			ents[i] = &slab[i]
		}
		return ents
	}
	var ents []*pb.Entry
	for start := 0; start < len(q); {
		end, size := start, 0
		for end < len(q) && end-start < n.cfg.MaxBatch && (end == start || size+len(q[end].data) <= n.cfg.MaxEntryBytes) {
			size += len(q[end].data)
			end++
		}
		group := q[start:end]
		var data []byte
		if len(group) == 1 {
			data = appendSingle(make([]byte, 0, size+20), n.incarnation, group[0].seq, group[0].data)
		} else {
			data = appendPacked(make([]byte, 0, packedSize(group)), n.incarnation, group)
		}
		ents = append(ents, &pb.Entry{Data: data})
		start = end
	}
	return ents
}

// waitingFor returns the proposal of seq while it waits, else nil.
func (ps *props) waitingFor(seq uint64) Proposal {
	if i := ps.find(seq); i >= 0 {
		return ps.waiting[i].done
	}
	return nil
}

// applied hands a proposal made here its result.
func (ps *props) applied(n *Node, seq uint64, res any) {
	done := ps.take(seq)
	if done == nil {
		return
	}
	n.stats.ProposalsApplied++
	done.Done(res, nil)
}

func (ps *props) fail(n *Node, q []proposal, err error) {
	for i := range q {
		n.stats.ProposalsFailed++
		q[i].done.Done(nil, err)
	}
}

// failWhere fails the waiting proposals that match, in stepping order.
func (ps *props) failWhere(n *Node, match func(*proposal) bool, err error) {
	kept := ps.waiting[:0]
	var failed []proposal
	for i := ps.head; i < len(ps.waiting); i++ {
		w := &ps.waiting[i]
		switch {
		case w.done == nil:
		case match(w):
			ps.live--
			failed = append(failed, *w)
		default:
			kept = append(kept, *w)
		}
	}
	clear(ps.waiting[len(kept):])
	ps.waiting, ps.head = kept, 0
	ps.fail(n, failed, err)
}

func (ps *props) failAll(n *Node, err error) {
	q := ps.queued
	ps.queued = nil
	ps.failWhere(n, func(*proposal) bool { return true }, err)
	ps.fail(n, q, err)
}

// failStaleProposals fails proposals stepped under another leader or term
// than raft's current ones: the entry may have been lost or may still
// commit, and nobody can tell which until it applies.
func (n *Node) failStaleProposals() {
	if n.props.live == 0 {
		return
	}
	term, lead := n.term, n.lead
	n.props.failWhere(n, func(p *proposal) bool { return p.term != term || p.lead != lead },
		fmt.Errorf("%w (leader %x in term %d)", ErrLeadershipLost, lead, term))
}

func (n *Node) expireProposals() {
	ps := &n.props
	var expired []proposal
	for ps.head < len(ps.waiting) {
		w := &ps.waiting[ps.head]
		if w.done != nil && w.deadline > n.ticks {
			break
		}
		ps.head++
		if w.done != nil {
			ps.live--
			expired = append(expired, *w)
			*w = proposal{seq: w.seq}
		}
	}
	ps.trim()
	if len(expired) > 0 {
		ps.fail(n, expired, fmt.Errorf("%w: proposal not applied within %v", ErrTimeout, n.cfg.ProposalTimeout))
	}
}
