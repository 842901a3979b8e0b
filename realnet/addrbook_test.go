package realnet

import (
	"testing"

	"github.com/swarmsim/swarmsim/engine/env"
)

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// Changed is closed by a change (a new address, a manager mark set or
// cleared) and by nothing else, so a stream waiting on it sends a book
// only when there is something new.
func TestAddressBookChanged(t *testing.T) {
	b := NewAddressBook()
	c := b.Changed()
	b.Learn("m1", "m1:4242", true, AddrMember)
	if !closed(c) {
		t.Fatal("learning a new manager did not signal")
	}
	c = b.Changed()
	if closed(c) {
		t.Fatal("a fresh Changed channel is already closed")
	}
	b.Learn("m1", "m1:4242", true, AddrGossip) // nothing new, and a worse source
	b.SetManagers([]env.NodeID{"m1"})          // already a manager
	if closed(c) {
		t.Fatal("a change that changed nothing signalled")
	}
	b.SetManagers(nil)
	if !closed(c) {
		t.Fatal("clearing the manager mark did not signal")
	}
}
