//go:build !unix

package server

import "fmt"

type dirLock struct{}

func lockDataDir(dir string) (*dirLock, error) {
	return nil, fmt.Errorf("lock %s: data directory locking is only implemented on unix systems", dir)
}

func (l *dirLock) release() error { return nil }
