package raft

import (
	"encoding/binary"
	"fmt"

	etcdraft "go.etcd.io/raft/v3"
)

// readBatch is the ReadIndex calls of one turn, asked of raft together.
type readBatch struct {
	id       uint64
	dones    []func(error)
	issued   uint64 // tick
	deadline uint64 // tick
	index    uint64 // read index, once confirmed
}

type reads struct {
	queued    []func(error)
	issued    []*readBatch // asked, not yet answered; oldest first
	confirmed []*readBatch // answered, waiting for apply to reach the index
	nextID    uint64
	reissue   bool
}

// ReadIndex calls done(nil) once this node has applied everything the
// leader had committed when it confirmed (with a quorum) that it was still
// leader, after this call: a read of the state machine then is
// linearizable. It works on followers, which ask the leader. done gets
// ErrNoLeader, ErrTimeout or ErrStopped otherwise; retrying is always
// safe.
func (n *Node) ReadIndex(done func(error)) {
	var err error
	switch {
	case n.stopped:
		err = n.stoppedErr()
	case len(n.reads.queued) >= n.cfg.MaxInflightProposals:
		err = fmt.Errorf("%w: %d reads queued", ErrOverloaded, len(n.reads.queued))
	}
	if err != nil {
		n.later(func() { done(err) })
		return
	}
	n.reads.queued = append(n.reads.queued, done)
	n.kick()
}

// flushReads asks raft for one read index covering this turn's reads. An
// answer to a later request also answers every earlier one: its index was
// confirmed after they were made. So retrying is just asking again.
func (n *Node) flushReads() {
	r := &n.reads
	if len(r.queued) == 0 && !(r.reissue && len(r.issued) > 0) {
		return
	}
	r.reissue = false
	if n.rn.BasicStatus().Lead == 0 {
		q := r.queued
		r.queued = nil
		for _, done := range q {
			done(ErrNoLeader)
		}
		return
	}
	r.nextID++
	b := &readBatch{
		id:       r.nextID,
		dones:    r.queued,
		issued:   n.ticks,
		deadline: n.ticks + n.cfg.ticks(n.cfg.ProposalTimeout),
	}
	r.queued = nil
	var ctx [16]byte
	binary.LittleEndian.PutUint64(ctx[:8], n.incarnation)
	binary.LittleEndian.PutUint64(ctx[8:], b.id)
	n.rn.ReadIndex(ctx[:])
	n.stats.ReadIndexes++
	r.issued = append(r.issued, b)
}

func (n *Node) recordReadStates(states []etcdraft.ReadState) {
	r := &n.reads
	for _, s := range states {
		ctx := s.RequestCtx
		if len(ctx) != 16 || binary.LittleEndian.Uint64(ctx[:8]) != n.incarnation {
			continue
		}
		id := binary.LittleEndian.Uint64(ctx[8:])
		for i, b := range r.issued {
			if b.id != id {
				continue
			}
			for _, ob := range r.issued[:i+1] {
				ob.index = s.Index
				r.confirmed = append(r.confirmed, ob)
			}
			r.issued = r.issued[i+1:]
			break
		}
	}
}

// resolveReads answers confirmed reads whose index this node has applied.
func (n *Node) resolveReads() {
	r := &n.reads
	if len(r.confirmed) == 0 {
		return
	}
	var ready []*readBatch
	kept := r.confirmed[:0]
	for _, b := range r.confirmed {
		if b.index <= n.applied {
			ready = append(ready, b)
		} else {
			kept = append(kept, b)
		}
	}
	r.confirmed = kept
	for _, b := range ready {
		for _, done := range b.dones {
			done(nil)
		}
	}
}

// reissueReads asks again for unanswered reads after a change of leader:
// the old leader may have dropped them.
func (n *Node) reissueReads() {
	if len(n.reads.issued) > 0 {
		n.reads.reissue = true
	}
}

func (n *Node) expireReads() {
	r := &n.reads
	if len(r.issued) == 0 && len(r.confirmed) == 0 {
		return
	}
	// A forwarded request or its answer may be lost: ask again now and
	// then.
	retry := uint64(max(3*n.cfg.HeartbeatTicks, n.cfg.ElectionTicks/2))
	if k := len(r.issued); k > 0 && n.ticks >= r.issued[k-1].issued+retry {
		r.reissue = true
	}
	var expired []*readBatch
	r.issued, expired = splitExpired(r.issued, n.ticks, expired)
	r.confirmed, expired = splitExpired(r.confirmed, n.ticks, expired)
	err := fmt.Errorf("%w: read index not confirmed and applied within %v", ErrTimeout, n.cfg.ProposalTimeout)
	for _, b := range expired {
		for _, done := range b.dones {
			done(err)
		}
	}
}

func splitExpired(bs []*readBatch, now uint64, expired []*readBatch) ([]*readBatch, []*readBatch) {
	kept := bs[:0]
	for _, b := range bs {
		if b.deadline <= now {
			expired = append(expired, b)
		} else {
			kept = append(kept, b)
		}
	}
	return kept, expired
}

func (rs *reads) failAll(n *Node, err error) {
	var all [][]func(error)
	all = append(all, rs.queued)
	for _, b := range rs.issued {
		all = append(all, b.dones)
	}
	for _, b := range rs.confirmed {
		all = append(all, b.dones)
	}
	rs.queued, rs.issued, rs.confirmed = nil, nil, nil
	for _, ds := range all {
		for _, done := range ds {
			done(err)
		}
	}
}
