//go:build !linux

package store

import "os"

// adviseWillNeed is a no-op where posix_fadvise is not used.
func adviseWillNeed(*os.File, int64, int64) {}
