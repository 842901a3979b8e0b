package realnet

import (
	"slices"
	"strings"
	"sync"

	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/realnet/rpc"
)

// AddrSource says where an address was learned; a better source replaces
// a worse one's entry, never the other way round.
type AddrSource uint8

const (
	// AddrGossip: another node's address book said so.
	AddrGossip AddrSource = iota
	// AddrMember: the raft member list, or a join answer.
	AddrMember
	// AddrHello: the node itself, in the hello of a stream it opened.
	AddrHello
	// AddrStatic: configured (this node, or a join target).
	AddrStatic
)

type addrEntry struct {
	addr    string
	manager bool
	src     AddrSource
}

// AddressBook maps node IDs to the addresses their transports listen on.
// It is safe for concurrent use.
type AddressBook struct {
	mu      sync.Mutex
	m       map[env.NodeID]addrEntry
	version uint64
	changed chan struct{} // closed at the next change
}

// NewAddressBook returns an empty book.
func NewAddressBook() *AddressBook {
	return &AddressBook{m: make(map[env.NodeID]addrEntry), changed: make(chan struct{})}
}

// bump records a change; b.mu is held.
func (b *AddressBook) bump() {
	b.version++
	close(b.changed)
	b.changed = make(chan struct{})
}

// Changed is closed at the book's next change: a stream that keeps a
// dialer's copy current sends it then, so that a manager that just joined
// is known to the workers before the manager they know can vanish.
func (b *AddressBook) Changed() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.changed
}

// Learn records id's address. An entry learned from a better source is
// kept; manager marks the node as a manager (only SetManagers clears
// the mark). It reports whether anything changed.
func (b *AddressBook) Learn(id env.NodeID, addr string, manager bool, src AddrSource) bool {
	if id == "" || addr == "" {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	cur, ok := b.m[id]
	next := cur
	switch {
	case !ok || src >= cur.src:
		next = addrEntry{addr: addr, manager: manager || cur.manager, src: src}
	case manager && !cur.manager:
		next.manager = true
	}
	if ok && next == cur {
		return false
	}
	b.m[id] = next
	b.bump()
	return true
}

// SetManagers marks exactly the nodes in ids as managers (the raft member
// list, on a manager).
func (b *AddressBook) SetManagers(ids []env.NodeID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for id, e := range b.m {
		want := slices.Contains(ids, id)
		if e.manager != want {
			e.manager = want
			b.m[id] = e
			b.bump()
		}
	}
}

// Lookup returns id's address.
func (b *AddressBook) Lookup(id env.NodeID) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.m[id]
	return e.addr, ok
}

// Version changes whenever the book does.
func (b *AddressBook) Version() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.version
}

// Managers lists the managers' addresses, sorted by node ID.
func (b *AddressBook) Managers() []*rpc.PeerAddress {
	return b.list(true)
}

// All lists every address, sorted by node ID.
func (b *AddressBook) All() []*rpc.PeerAddress { return b.list(false) }

func (b *AddressBook) list(managersOnly bool) []*rpc.PeerAddress {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]*rpc.PeerAddress, 0, len(b.m))
	for id, e := range b.m {
		if managersOnly && !e.manager {
			continue
		}
		out = append(out, &rpc.PeerAddress{NodeId: string(id), Addr: e.addr, Manager: e.manager})
	}
	slices.SortFunc(out, func(x, y *rpc.PeerAddress) int { return strings.Compare(x.NodeId, y.NodeId) })
	return out
}
