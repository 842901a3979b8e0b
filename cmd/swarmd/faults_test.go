package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/swarmsim/swarmsim/realnet/rpc"
)

// SetLinkFault on the daemons' local sockets: the first manager losing
// everything it sends the others, and they everything they send it, is cut
// off, and the other two elect a leader; the links cleared, it follows
// that leader again.
func TestLinkFaultCutsLeader(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	m1 := h.start("m1", freePort(t), "init")
	h.eventually("m1 leads", func() bool { st, ok := h.status(m1); return ok && st.IsLeader })
	tok := strings.TrimSpace(h.must(m1.addr, "join-token", "-q", "manager"))
	m2 := h.start("m2", freePort(t), "join", "--token", tok, m1.addr)
	m3 := h.start("m3", freePort(t), "join", "--token", tok, m1.addr)
	conns := []*kvConn{dialKV(t, m1), dialKV(t, m2), dialKV(t, m3)}
	ids := make([]string, 3)
	h.eventually("three voters, m1 leading", func() bool {
		for i, c := range conns {
			st, err := c.status()
			if err != nil || len(st.GetMembers()) != 3 || st.GetLeader() == "" {
				return false
			}
			for _, m := range st.GetMembers() {
				if m.GetLearner() {
					return false
				}
			}
			ids[i] = st.GetNodeId()
		}
		l, ok := leaderOf(conns)
		return ok && l == conns[0]
	})

	setLink := func(from, to int, loss float64) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := conns[from].daemon.SetLinkFault(ctx, &rpc.SetLinkFaultRequest{To: ids[to], Loss: loss}); err != nil {
			t.Fatal(err)
		}
	}
	for _, other := range []int{1, 2} {
		setLink(0, other, 1)
		setLink(other, 0, 1)
	}
	h.eventually("m2 or m3 leads", func() bool {
		l, ok := leaderOf(conns[1:])
		return ok && l != conns[0]
	})
	for _, other := range []int{1, 2} {
		setLink(0, other, 0)
		setLink(other, 0, 0)
	}
	h.eventually("m1 follows the new leader", func() bool {
		l, ok := leaderOf(conns)
		return ok && l != conns[0]
	})

	// A fault no link can have is refused.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := conns[0].daemon.SetLinkFault(ctx, &rpc.SetLinkFaultRequest{To: ids[1], Loss: 2}); err == nil || !strings.Contains(err.Error(), "within [0, 1]") {
		t.Fatalf("a loss of 200%%: %v", err)
	}
}
