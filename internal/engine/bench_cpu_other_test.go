//go:build !unix

package engine

import "time"

// processCPU is not measured here: the benchmarks report 0 CPU.
func processCPU() time.Duration { return 0 }

// processSysCPU is not measured here either.
func processSysCPU() time.Duration { return 0 }
