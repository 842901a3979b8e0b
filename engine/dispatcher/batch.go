package dispatcher

import (
	"errors"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/store"
)

func (d *Dispatcher) handleStatus(from env.Peer, m *api.TaskStatusReport) {
	if !d.running {
		d.stats.Redirects++
		d.tr.Send(from.ID, &api.TaskStatusAck{
			SessionId: m.SessionId, Seq: m.Seq,
			Error: api.DispatcherError_DISPATCHER_ERROR_NOT_LEADER, Leader: d.leader(),
		})
		return
	}
	s := d.liveSession(from.ID, m.SessionId)
	if s == nil {
		d.stats.UnknownSessions++
		d.tr.Send(from.ID, &api.TaskStatusAck{
			SessionId: m.SessionId, Seq: m.Seq, Error: api.DispatcherError_DISPATCHER_ERROR_UNKNOWN_SESSION,
		})
		return
	}
	n := len(m.Updates)
	d.stats.StatusReceived += uint64(n)
	if len(d.status)+n > d.cfg.MaxPendingStatus {
		// The store is behind: let the agent resend later rather than grow
		// without bound.
		d.stats.StatusDropped += uint64(n)
		return
	}
	for _, u := range m.Updates {
		if u.GetTaskId() == "" || u.GetStatus() == nil {
			continue
		}
		d.status = append(d.status, statusItem{node: s.node, upd: u})
	}
	d.acks = append(d.acks, ack{to: from.ID, session: s.id, seq: m.Seq})
	if len(d.status) >= d.cfg.MaxBatch {
		d.flushStatus()
		return
	}
	d.armBatch()
}

// armBatch makes sure a flush comes within one batch window.
func (d *Dispatcher) armBatch() {
	if d.batchTimer != nil {
		return
	}
	gen := d.gen
	d.batchTimer = d.clock.AfterFunc(d.cfg.BatchWindow, func() {
		if gen != d.gen {
			return
		}
		d.batchTimer = nil
		d.flushStatus()
		d.flushNodes()
	})
}

// flushStatus writes the collected status updates, MaxBatch per
// transaction, and acknowledges the reports once every one applied.
func (d *Dispatcher) flushStatus() {
	items, acks := d.status, d.acks
	d.status, d.acks = nil, nil
	if len(items) == 0 {
		d.sendAcks(acks)
		return
	}
	gen := d.gen
	size := batchLimit(&d.statusBatch, d.cfg.MaxBatch)
	left := (len(items) + size - 1) / size
	failed := false
	for start := 0; start < len(items); start += size {
		chunk := items[start:min(start+size, len(items))]
		d.stats.StatusBatches++
		d.st.Update(func(tx *store.Tx) error {
			for _, it := range chunk {
				d.recordStatus(tx, it)
			}
			return nil
		}, func(err error) {
			if gen != d.gen {
				return
			}
			if err != nil {
				// Not acknowledged: the agents resend.
				if errors.Is(err, store.ErrProposalTooLarge) {
					halveBatch(&d.statusBatch, len(chunk))
				}
				d.stats.StatusBatchFailures++
				d.log.Warn("status batch failed", "updates", len(chunk), "err", err)
				failed = true
			}
			if left--; left == 0 && !failed {
				d.sendAcks(acks)
			}
		})
	}
}

func (d *Dispatcher) recordStatus(tx *store.Tx, it statusItem) {
	t := tx.Task(it.upd.TaskId)
	if t == nil || t.NodeId != it.node {
		// Gone, or not this node's to report on.
		d.stats.StatusSkipped++
		return
	}
	switch err := tx.UpdateTaskStatus(t.Id, it.upd.Status); {
	case err == nil:
		d.stats.StatusWritten++
	case errors.Is(err, store.ErrStatusRegression):
		d.stats.StatusSkipped++
	default:
		d.stats.StatusSkipped++
		d.log.Warn("status update refused", "task", t.Id, "node", it.node, "err", err)
	}
}

func (d *Dispatcher) sendAcks(acks []ack) {
	for _, a := range acks {
		d.stats.AcksSent++
		d.tr.Send(a.to, &api.TaskStatusAck{SessionId: a.session, Seq: a.seq})
	}
}

// queueNodeWrite records what a node should look like; a later write for
// the same node replaces an earlier one not yet proposed.
func (d *Dispatcher) queueNodeWrite(node string, w nodeWrite) {
	d.nodeWrites[node] = w
	if len(d.nodeWrites) >= d.cfg.MaxBatch {
		d.flushNodes()
		return
	}
	d.armBatch()
}

// flushNodes writes the queued node changes in one transaction. Only one
// is in flight at a time, so a write is never based on a version an
// earlier write of ours is about to change.
func (d *Dispatcher) flushNodes() {
	if d.nodeInFlight || len(d.nodeWrites) == 0 {
		return
	}
	ids := make([]string, 0, len(d.nodeWrites))
	for id := range d.nodeWrites {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	ids = ids[:min(len(ids), batchLimit(&d.nodeBatch, d.cfg.MaxBatch))]
	batch := make([]nodeWrite, len(ids))
	for i, id := range ids {
		batch[i] = d.nodeWrites[id]
		delete(d.nodeWrites, id)
	}
	d.nodeInFlight = true
	gen := d.gen
	written := 0
	d.st.Update(func(tx *store.Tx) error {
		for i, id := range ids {
			if d.recordNode(tx, id, batch[i]) {
				written++
			}
		}
		return nil
	}, func(err error) {
		if gen != d.gen {
			return
		}
		d.nodeInFlight = false
		if err != nil {
			// Someone changed one of the nodes meanwhile: try again with
			// what the store says now, unless a newer write replaced ours.
			d.stats.NodeWriteFailures++
			if errors.Is(err, store.ErrProposalTooLarge) {
				halveBatch(&d.nodeBatch, len(ids))
			}
			d.log.Warn("node batch failed; retrying", "nodes", len(ids), "err", err)
			for i, id := range ids {
				if _, newer := d.nodeWrites[id]; !newer {
					d.nodeWrites[id] = batch[i]
				}
			}
		} else {
			d.stats.NodeWrites += uint64(written)
		}
		if len(d.nodeWrites) > 0 {
			d.armBatch()
		}
	})
}

// batchLimit is the size a batch may have now: *b, or max until a batch
// was refused as too large.
func batchLimit(b *int, limit int) int {
	if *b <= 0 || *b > limit {
		*b = limit
	}
	return *b
}

// halveBatch shrinks the limit below a batch of n the store refused as
// too large, down to one action.
func halveBatch(b *int, n int) {
	*b = max(1, min(*b, n)/2)
}

// recordNode records one node write, if the store does not already say it.
func (d *Dispatcher) recordNode(tx *store.Tx, id string, w nodeWrite) bool {
	n := tx.Node(id)
	ts := tx.Timestamp()
	var err error
	switch {
	case w.ready && n == nil:
		err = tx.Create(&api.Node{
			Id:          id,
			Spec:        &api.NodeSpec{Name: w.desc.GetHostname(), DesiredRole: w.role},
			Description: w.desc,
			Status:      &api.NodeStatus{State: api.NodeState_NODE_STATE_READY, Addr: w.addr, Timestamp: ts},
			Role:        w.role,
		})
	case n == nil || n.GetRemoved():
		return false // a removed node stays removed
	case w.ready:
		st := n.GetStatus()
		if st.GetState() == api.NodeState_NODE_STATE_READY && st.GetAddr() == w.addr &&
			(w.desc == nil || proto.Equal(n.GetDescription(), w.desc)) {
			return false
		}
		c := n.ShallowCopy()
		if w.desc != nil {
			c.Description = w.desc
		}
		c.Status = &api.NodeStatus{State: api.NodeState_NODE_STATE_READY, Addr: w.addr, Timestamp: ts}
		err = tx.Update(c)
	default:
		if n.GetStatus().GetState() == api.NodeState_NODE_STATE_DOWN {
			return false
		}
		c := n.ShallowCopy()
		c.Status = &api.NodeStatus{State: api.NodeState_NODE_STATE_DOWN, Message: w.message,
			Addr: n.GetStatus().GetAddr(), Timestamp: ts}
		err = tx.Update(c)
	}
	if err != nil {
		d.log.Warn("node write refused", "node", id, "err", err)
		return false
	}
	return true
}
