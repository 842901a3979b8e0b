package dispatcher_test

import (
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

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
