//go:build unix

package engine

import (
	"syscall"
	"time"
)

// processCPU is this process's user+system CPU time: on a shared machine
// it is a steadier measure than wall time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processSysCPU is the system part of processCPU (page faults, madvise).
func processSysCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Stime.Nano())
}
