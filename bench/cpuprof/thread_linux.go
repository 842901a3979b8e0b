package cpuprof

import (
	"syscall"
	"time"
)

// rusageThread is Linux's RUSAGE_THREAD: the calling thread only.
const rusageThread = 1

// ThreadCPU is the CPU time (user and system) the calling OS thread has
// used, and whether the platform could say. Callers lock their goroutine
// to its thread (runtime.LockOSThread) around what they measure.
func ThreadCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
