//go:build !linux

package server

import (
	"bufio"
	"time"
)

// writeProcessMetrics writes what is portable: the start time of the server.
func writeProcessMetrics(w *bufio.Writer, start time.Time) {
	gauge(w, "process_start_time_seconds", "Start time of the process since unix epoch in seconds.", float64(start.UnixNano())/1e9)
}
