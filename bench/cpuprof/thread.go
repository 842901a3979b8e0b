package cpuprof

import (
	"runtime"
	"time"
)

// OnThread runs f locked to one OS thread and returns the CPU time that
// thread spent in it (0 where the platform cannot say). On a simulation or
// benchmark that runs on one goroutine, that is its own work and the GC
// assists it paid, without the background GC workers or the time it
// waited for a CPU: on a busy machine it stays what an idle one would
// show as wall time, give or take the garbage collector.
func OnThread(f func()) time.Duration {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t0, ok := ThreadCPU()
	f()
	t1, _ := ThreadCPU()
	if !ok {
		return 0
	}
	return t1 - t0
}
