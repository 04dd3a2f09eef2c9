//go:build !unix

package store

import (
	"os"
	"path/filepath"
)

// lockDir opens dir/LOCK; on this platform it does not lock.
func lockDir(dir string) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o600)
}
