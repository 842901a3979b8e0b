package dispatcher_test

import (
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/dispatcher"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/store"
	"github.com/swarmsim/swarmsim/sim"
)

// BenchmarkHeartbeats runs N workers that open sessions with one leader
// and heartbeat every 5s for one virtual minute, all in one simulator
// process: the dispatcher's side (sessions, expiry sweep, node writes) and
// the agents' (timers, heartbeats) together.
func BenchmarkHeartbeats(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("workers=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			var events uint64
			var heapPerWorker float64
			var cpu time.Duration
			for range b.N {
				b.StopTimer()
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				c := newCluster(b, clusterOpts{seed: 1, workers: n, link: sim.LinkModel{
					Latency: sim.Range{Min: time.Millisecond, Max: 5 * time.Millisecond},
				}})
				restore := c.k.Activate()
				cpu0 := cpuTime()
				b.StartTimer()
				c.run(time.Minute)
				b.StopTimer()
				cpu += cpuTime() - cpu0
				restore()
				if got := c.readyNodes(); got != n {
					b.Fatalf("%d of %d nodes ready", got, n)
				}
				st := c.disp["m1"].Stats()
				if st.NodesDown != 0 || st.HeartbeatsReceived < uint64(n)*9 {
					b.Fatalf("stats %+v", st)
				}
				events += c.k.Processed()
				runtime.GC()
				runtime.ReadMemStats(&after)
				heapPerWorker = float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
				runtime.KeepAlive(c)
				b.StartTimer()
			}
			sec := b.Elapsed().Seconds()
			b.ReportMetric(float64(events)/sec, "events/s")
			b.ReportMetric(float64(events)/float64(b.N), "events/op")
			b.ReportMetric(60*float64(b.N)/sec, "virtual-s/wall-s")
			b.ReportMetric(heapPerWorker, "heap-B/worker")
			// CPU time is what the machine spent, whatever else it ran: on
			// a shared machine wall time overstates the cost.
			b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
			b.ReportMetric(float64(events)/cpu.Seconds(), "events/cpu-s")
		})
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkHandleHeartbeat is the leader's cost of one heartbeat with
// 100,000 sessions open: the session lookup, the last-seen stamp and the
// answer (the transport here drops it). The expiry sweep's share is
// measured apart, by BenchmarkSweep.
func BenchmarkHandleHeartbeat(b *testing.B) {
	d, _, peers, ids := benchDispatcher(b, 100_000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		j := i % len(peers)
		d.Handle(peers[j], &api.Heartbeat{SessionId: ids[j]})
	}
}

// BenchmarkSweep is the expiry sweep's cost per session and heartbeat
// period, with 100,000 live sessions: the sweep runs every period/5 and
// refiles each session about once per grace.
func BenchmarkSweep(b *testing.B) {
	d, k, peers, ids := benchDispatcher(b, 100_000)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		// One period: every session beats once, the sweep runs five times.
		for j := range peers {
			d.Handle(peers[j], &api.Heartbeat{SessionId: ids[j]})
		}
		k.RunUntil(k.Now()+5*time.Second, nil)
	}
	b.StopTimer()
	if st := d.Stats(); st.NodesDown != 0 {
		b.Fatalf("stats %+v", st)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(peers)), "ns/session-period")
}

// benchDispatcher is a started dispatcher with n sessions open, driven
// directly (no agents, no network).
func benchDispatcher(b *testing.B, n int) (*dispatcher.Dispatcher, *sim.Kernel, []env.Peer, []string) {
	k := sim.NewKernel(1)
	b.Cleanup(k.Activate())
	m := k.AddNode("m1")
	st := store.New(m)
	st.SetProposer(store.NewLoopback(st, m))
	ids := make([]string, n)
	var cur int
	d := dispatcher.New(dispatcher.Deps{
		ID: "m1", Loop: m, Clock: m, Rand: m.Rand("dispatcher"), Store: st,
		Transport: transportFunc(func(_ env.NodeID, msg env.Message) {
			if r, ok := msg.(*api.SessionResponse); ok {
				ids[cur] = r.SessionId
			}
		}),
	})
	d.Start()
	peers := make([]env.Peer, n)
	for i := range n {
		peers[i] = env.Peer{ID: env.NodeID(fmt.Sprint("w", i)), Role: env.RoleWorker}
		cur = i
		d.Handle(peers[i], &api.SessionRequest{Incarnation: 1, Attempt: 1,
			Description: &api.NodeDescription{Hostname: string(peers[i].ID)}})
	}
	k.RunUntil(time.Second, nil)
	return d, k, peers, ids
}
