package store

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors returned by a Tx, and the error value a failed
// proposal yields, wrap one of these with the object's kind and ID; test for
// them with errors.Is.
var (
	// ErrNotExist: the object to update or delete is not in the store.
	ErrNotExist = errors.New("object does not exist")
	// ErrExist: an object of that kind and ID is already in the store.
	ErrExist = errors.New("object already exists")
	// ErrNameConflict: another object of the kind already has that name.
	ErrNameConflict = errors.New("name already in use")
	// ErrSequenceConflict: the version named by an update, a delete or a
	// task assignment is not the stored one; someone changed the object
	// since it was read.
	ErrSequenceConflict = errors.New("update out of sequence")
	// ErrInvalid: an object without an ID, or an action without a target.
	ErrInvalid = errors.New("invalid object or action")
	// ErrStatusRegression: a task update would move its status.state
	// backwards. Task state only moves forward (design/task_model in
	// SwarmKit's terms); a new attempt is a new task.
	ErrStatusRegression = errors.New("task status would move backwards")
	// ErrNotPending: a task assignment names a task that is already on a
	// node or past the pending state.
	ErrNotPending = errors.New("task is not pending")
	// ErrNodeUnavailable: a task assignment names a node that does not exist
	// or was removed.
	ErrNodeUnavailable = errors.New("node does not exist or was removed")
	// ErrNoProposer: Update was called before SetProposer.
	ErrNoProposer = errors.New("store has no proposer")
	// ErrProposalTooLarge: a transaction encodes to more than the store's
	// proposal limit; split it.
	ErrProposalTooLarge = errors.New("proposal too large")
	// ErrTxClosed: a Tx was used after its function returned.
	ErrTxClosed = errors.New("transaction is closed")
)

// objectError wraps a sentinel with the object's kind and ID.
func objectError(k Kind, id string, err error) error {
	return fmt.Errorf("%s %q: %w", k, id, err)
}
