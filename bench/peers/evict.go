package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"
)

// evictDir drops the page cache of every regular file under dir: each file
// is synced (a dirty page cannot be dropped) and advised POSIX_FADV_DONTNEED
// over its whole length, which is what `vmtouch -e` does. It is the harness's
// "drop the page cache before the cold run" (ClickBench's rule for systems
// with local on-disk storage) limited to the measured system's own files, so
// that other work on a shared machine keeps its cache. Pages a process has
// mapped and touched stay resident; the harness calls it right after a
// restart, before the system has read its data for a query.
//
// It returns the bytes that were resident before and after, from mincore,
// so the report can show that the eviction took.
func evictDir(dir string) (before, after int64, err error) {
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, werr error) error {
		if werr != nil {
			if errors.Is(werr, fs.ErrNotExist) { // a file merged away meanwhile
				return nil
			}
			return werr
		}
		if !d.Type().IsRegular() {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		defer f.Close()
		b, _ := resident(f)
		before += b
		if err := f.Sync(); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EBADF) {
			return fmt.Errorf("evict %s: sync: %w", path, err)
		}
		if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
			return fmt.Errorf("evict %s: fadvise: %w", path, err)
		}
		a, _ := resident(f)
		after += a
		return nil
	})
	return before, after, err
}

// resident returns how many bytes of f are in the page cache (mincore over a
// read-only mapping; an empty file is 0).
func resident(f *os.File) (int64, error) {
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return 0, err
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return 0, err
	}
	defer unix.Munmap(m)
	page := os.Getpagesize()
	vec := make([]byte, (len(m)+page-1)/page)
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		return 0, e
	}
	var n int64
	for _, v := range vec {
		if v&1 != 0 {
			n += int64(page)
		}
	}
	return n, nil
}
