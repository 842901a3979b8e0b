//go:build !linux

package cpuprof

import "time"

// ThreadCPU is the CPU time the calling OS thread has used; this platform
// cannot say.
func ThreadCPU() (time.Duration, bool) { return 0, false }
