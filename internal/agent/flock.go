package agent

import (
	"os"
	"syscall"
)

// flock takes a non-blocking exclusive advisory lock on f.
func flock(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}
