//go:build !unix

package main

import "time"

// childrenCPU is unknown on this platform.
func childrenCPU() time.Duration { return 0 }
