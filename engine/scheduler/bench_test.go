package scheduler_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/swarmsim/swarmsim/bench/schedbench"
)

// BenchmarkScheduler places ten tasks per node of one service on 1,000,
// 10,000 and 100,000 ready nodes, for each workload variant of schedbench
// (plain; three constraints that leave half the nodes; spread over three
// zones). One op is a whole placement: the scheduler starts over a store
// where every task is pending and the op ends when the last assignment has
// applied through the store's codec and Apply. tasks/s (wall clock) is the
// headline; tasks/cpu-s divides by the process's CPU time instead.
//
//	go test -run '^$' -bench Scheduler -benchtime 3x ./engine/scheduler
func BenchmarkScheduler(b *testing.B) {
	for _, nodes := range []int{1000, 10000, 100000} {
		for _, v := range schedbench.Variants {
			b.Run(fmt.Sprintf("nodes=%d/tasks=%d/%s", nodes, 10*nodes, v), func(b *testing.B) {
				benchPlace(b, nodes, 10, v)
			})
		}
	}
}

func benchPlace(b *testing.B, nodes, perNode int, variant string) {
	b.ReportAllocs()
	b.StopTimer()
	var cpu time.Duration
	for range b.N {
		c, err := schedbench.Prepare(nodes, perNode, variant, nil)
		if err != nil {
			b.Fatal(err)
		}
		c0 := schedbench.CPUTime()
		b.StartTimer()
		c.Place()
		b.StopTimer()
		cpu += schedbench.CPUTime() - c0
		if _, err := c.Verify(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(nodes*perNode*b.N)/b.Elapsed().Seconds(), "tasks/s")
	// CPU time of the whole process (the collector's threads included):
	// on a machine busy with other work it is the steadier figure.
	b.ReportMetric(float64(nodes*perNode*b.N)/cpu.Seconds(), "tasks/cpu-s")
}
