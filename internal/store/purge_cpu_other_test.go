//go:build !unix

package store

import (
	"testing"
	"time"
)

// processCPU is not measured on this platform: BenchmarkPurgeScale reports 0.
func processCPU(*testing.B) time.Duration { return 0 }
