package realnet

import (
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/env"
)

// A faulty link delays, loses and duplicates what one node sends another,
// and keeps the order of what it delays unless told to reorder; cleared,
// the link is plain again.
func TestTransportLinkFault(t *testing.T) {
	a := startNode(t, "a", TransportConfig{Role: env.RoleManager})
	b := startNode(t, "b", TransportConfig{Role: env.RoleWorker})
	a.tr.Book().Learn("b", b.addr, false, AddrStatic)
	seqOf := func(m env.Message) string { return m.(*api.Heartbeat).SessionId }

	// Delayed by 1 to 10 ms each, in order.
	if err := a.tr.SetLinkFault("b", LinkFault{Latency: time.Millisecond, Jitter: 9 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	const n = 100
	for i := range n {
		a.tr.Send("b", &api.Heartbeat{SessionId: strconv.Itoa(i)})
	}
	for i, m := range b.waitFor(t, n) {
		if seqOf(m) != strconv.Itoa(i) {
			t.Fatalf("message %d arrived as %s: a delayed link without reorder reordered", i, seqOf(m))
		}
	}

	// Everything lost, then the link cleared: only what came after
	// arrives (a stream keeps order, so anything not lost would be first).
	if err := a.tr.SetLinkFault("b", LinkFault{Loss: 1}); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		a.tr.Send("b", &api.Heartbeat{SessionId: "lost"})
	}
	if err := a.tr.SetLinkFault("b", LinkFault{}); err != nil {
		t.Fatal(err)
	}
	a.tr.Send("b", &api.Heartbeat{SessionId: "after"})
	if got := b.waitFor(t, n+1)[n]; seqOf(got) != "after" {
		t.Fatalf("after the lossy spell, got %s", seqOf(got))
	}
	if lost := a.tr.Stats().FaultLost; lost != 10 {
		t.Fatalf("%d messages lost by the fault, want 10", lost)
	}

	// Everything twice, delays reordered freely: all arrive, twice each.
	if err := a.tr.SetLinkFault("b", LinkFault{Duplicate: 1, Jitter: 5 * time.Millisecond, Reorder: true}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		a.tr.Send("b", &api.Heartbeat{SessionId: "dup" + strconv.Itoa(i)})
	}
	count := map[string]int{}
	for _, m := range b.waitFor(t, n+1+10)[n+1:] {
		count[seqOf(m)]++
	}
	for i := range 5 {
		if c := count["dup"+strconv.Itoa(i)]; c != 2 {
			t.Fatalf("dup%d arrived %d times, want 2 (%v)", i, c, count)
		}
	}

	for _, bad := range []LinkFault{{Latency: -1}, {Jitter: -time.Second}, {Loss: 1.5}, {Duplicate: -0.1},
		{Jitter: math.MaxInt64}, {Latency: time.Hour, Jitter: 1}, {Loss: math.NaN()}} {
		if err := a.tr.SetLinkFault("b", bad); err == nil {
			t.Errorf("SetLinkFault(%+v) accepted", bad)
		}
	}
}
