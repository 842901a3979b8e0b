package store

import "testing"

// NodeRemoved answers like a lookup of the node's Removed flag through
// creation, marking, unmarking and deletion.
func TestNodeRemovedFollowsWrites(t *testing.T) {
	s, _ := newSyncStore()
	mustUpdate(t, s, func(tx *Tx) error {
		if err := tx.Create(node("n1", "a")); err != nil {
			return err
		}
		return tx.Create(node("n2", "b"))
	})
	check := func(when string) {
		t.Helper()
		for _, id := range []string{"n1", "n2", "n3"} {
			if got, want := s.NodeRemoved(id), s.Node(id).GetRemoved(); got != want {
				t.Fatalf("%s: NodeRemoved(%s) = %v, want %v", when, id, got, want)
			}
		}
	}
	check("created")
	setRemoved := func(id string, on bool) {
		t.Helper()
		mustUpdate(t, s, func(tx *Tx) error {
			n := withVersion(s.Node(id), s.Node(id).GetMeta().GetVersion())
			n.Removed = on
			return tx.Update(n)
		})
	}
	setRemoved("n1", true)
	if !s.NodeRemoved("n1") {
		t.Fatal("n1 marked removed, NodeRemoved says no")
	}
	check("n1 removed")
	setRemoved("n1", false)
	check("n1 back")
	setRemoved("n2", true)
	check("n2 removed")
	mustUpdate(t, s, func(tx *Tx) error { return tx.Delete(KindNode, "n2", s.Node("n2").GetMeta().GetVersion()) })
	check("n2 deleted")
	if s.c.removedNodes != 0 {
		t.Fatalf("removedNodes = %d after the removed node was deleted", s.c.removedNodes)
	}
}
