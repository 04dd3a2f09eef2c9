// Package logtest is the log sink that tests give to the slog loggers of
// servers and services they run, to check what was (and was not) logged.
// It is imported by tests only.
package logtest

import (
	"bytes"
	"sync"
)

// Buffer is an io.Writer that keeps everything written to it. Safe for
// concurrent use: the logged service's goroutines write while the test
// reads.
type Buffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

// Write appends p.
func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
