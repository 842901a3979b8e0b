package ca

import (
	"fmt"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/env"
)

// Decision is one admission decision on an inbound message.
type Decision struct {
	To     env.NodeID // the node that decided
	From   env.Peer
	Method string
	Msg    env.Message
	Err    error // nil: admitted
}

// NodeReader finds node objects by ID: a manager's store. Lookups must be
// O(1): they run for every inbound message.
type NodeReader interface {
	Node(id string) *api.Node
}

// removedReader is what a NodeReader may also offer: whether a node is
// marked removed, answered without a lookup when none is (the store).
type removedReader interface {
	NodeRemoved(id string) bool
}

// Admit decides whether an inbound message from an authenticated peer
// (VerifyPeer in the simulator, the TLS handshake in real mode) reaches
// the node: the authorization table, the cluster the peer's certificate
// belongs to, and, on a manager (nodes non-nil), whether the peer's node
// was removed. It returns nil or an error wrapping ErrPermissionDenied,
// ErrWrongCluster or ErrNodeRemoved, and reports the decision to
// Config.OnDecision.
func (c *Client) Admit(from env.Peer, m env.Message, nodes NodeReader) error {
	err := c.admit(from, m, nodes)
	if err != nil {
		c.refusedMsgs++
	} else {
		c.admitted++
	}
	if c.onDecision != nil {
		c.onDecision(Decision{To: c.id, From: from, Method: m.Method(), Msg: m, Err: err})
	}
	return err
}

func (c *Client) admit(from env.Peer, m env.Message, nodes NodeReader) error {
	if err := Authorize(m.Method(), from); err != nil {
		return err
	}
	if from.Role == env.RoleNone {
		return nil // only what the table lets anyone do; the handler checks the token
	}
	if org := c.Org(); org != "" && from.Org != org {
		return fmt.Errorf("%w: %s belongs to %q", ErrWrongCluster, from.ID, from.Org)
	}
	if nodes != nil {
		var removed bool
		if rr, ok := nodes.(removedReader); ok {
			removed = rr.NodeRemoved(string(from.ID))
		} else if n := nodes.Node(string(from.ID)); n != nil && n.GetRemoved() {
			removed = true
		}
		if removed {
			return fmt.Errorf("%w: %s", ErrNodeRemoved, from.ID)
		}
	}
	return nil
}
