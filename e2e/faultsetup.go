package e2e

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"custos/test/fsfault"
)

// StartServer is the set-up the fault and portal tests share: it fills in
// o.DataDir and o.LogPath under a new t.TempDir() when they are empty, starts
// the server (bounded by ctx and o.StartTimeout), and returns it with an
// admin client (NewClient on the server's admin.json). At cleanup the
// server is killed if it still runs, the client's idle connections are
// closed, and, if the test failed, the end of the server's log is printed.
// Any failure before that ends the test with t.Fatal. Register cleanups that
// must run before the server is killed (restoring a file the server needs,
// say) before calling StartServer: cleanups run last-registered first.
func StartServer(t testing.TB, ctx context.Context, o Options) (*Server, *Client) {
	t.Helper()
	if o.DataDir == "" || o.LogPath == "" {
		root := t.TempDir()
		if o.DataDir == "" {
			o.DataDir = filepath.Join(root, "data")
		}
		if o.LogPath == "" {
			o.LogPath = filepath.Join(root, "server.log")
		}
	}
	s, err := NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		if t.Failed() {
			t.Logf("server log tail:\n%s", s.logTail(6000))
		}
	})
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	adm, err := ReadAdmin(s.DataDir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(adm)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.HTTP.CloseIdleConnections)
	return s, c
}

// MountStoreVolume gives the server's store (<dataDir>/store) a volume of its
// own: a tmpfs of sizeMB megabytes mounted there (mode 0700) before the
// server first starts, unmounted at cleanup (registered before the server's
// cleanups, so it runs after the server is killed). The catalog, the keys
// and the TLS files stay on the data directory's filesystem, so filling the
// store's volume fails only the store's writes — the part writes of a
// flush, a merge or a purge — and not the catalog the purge queue lives in.
// It needs root (or CAP_SYS_ADMIN); without it the test fails saying so.
func MountStoreVolume(t testing.TB, dataDir string, sizeMB int) string {
	t.Helper()
	dir := storeDir(t, dataDir)
	mountAt(t, dir, "a %d MB tmpfs", sizeMB, "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm,mode=0700", sizeMB), "tmpfs", dir)
	return dir
}

// MountStoreVolumeExt4 is MountStoreVolume with an ext4 filesystem of sizeMB
// megabytes (mkfs.ext4 -m 0, no reserved blocks) in an image file on a loop
// device: ENOSPC comes from ext4's block allocator (delayed allocation, the
// journal), not from tmpfs's page accounting. It needs root, loop devices
// and mkfs.ext4 (e2fsprogs; test/install-fstools.sh installs it).
func MountStoreVolumeExt4(t testing.TB, dataDir string, sizeMB int) string {
	t.Helper()
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		t.Fatalf("mkfs.ext4 is not installed (%v): install e2fsprogs (apt-get install e2fsprogs, or test/install-fstools.sh) so that the disk-full test can give the store a small ext4 filesystem", err)
	}
	img := filepath.Join(t.TempDir(), "store-ext4.img")
	f, err := os.Create(img)
	if err == nil {
		err = f.Truncate(int64(sizeMB) << 20)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(mkfs, "-q", "-F", "-m", "0", "-E", "lazy_itable_init=0,lazy_journal_init=0", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4 %s: %v: %s", img, err, strings.TrimSpace(string(out)))
	}
	dir := storeDir(t, dataDir)
	mountAt(t, dir, "a %d MB ext4 image on a loop device", sizeMB, "-t", "ext4", "-o", "loop", img, dir)
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// storeDir creates <dataDir>/store (and dataDir), mode 0700.
func storeDir(t testing.TB, dataDir string) string {
	t.Helper()
	dir := filepath.Join(dataDir, "store")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// mountAt runs mount with args and unmounts dir at cleanup; what (with
// sizeMB) names the filesystem in the failure message.
func mountAt(t testing.TB, dir, what string, sizeMB int, args ...string) {
	t.Helper()
	out, err := exec.Command("mount", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("mount %s at %s for a disk-full test: %v: %s (run the test as root, with loop devices available for ext4, so that it can give the store a small filesystem)",
			fmt.Sprintf(what, sizeMB), dir, err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
			_ = exec.Command("umount", "-l", dir).Run()
		}
	})
}

// storeVolume is a filesystem the store-volume disk-full tests give the
// store: Mount mounts it at <dataDir>/store and returns that directory and
// the directory whose filesystem a ballast file must fill to exhaust it (the
// same, or the pool of a thin-provisioned volume).
type storeVolume struct {
	Name  string
	Mount func(t testing.TB, dataDir string, sizeMB int) (store, pool string)
}

// storeVolumes are the filesystems the store-volume disk-full tests run on.
var storeVolumes = []storeVolume{
	{"tmpfs", func(t testing.TB, d string, mb int) (string, string) { v := MountStoreVolume(t, d, mb); return v, v }},
	{"ext4", func(t testing.TB, d string, mb int) (string, string) {
		v := MountStoreVolumeExt4(t, d, mb)
		return v, v
	}},
}

// LeaveFree fills the filesystem of ballast (a file on it) and then gives
// back free bytes of it (rounded up to whole 4 KiB pages by tmpfs), so that
// writes of up to about free bytes succeed and larger ones meet ENOSPC. It
// returns the bytes the filesystem then reports available.
func LeaveFree(t testing.TB, ballast string, free int64) uint64 {
	t.Helper()
	// Fill, sync, fill again: a sync forces the log of a filesystem
	// mounted with discard (the thin XFS volume), whose discards of
	// recently deleted files give their blocks back to the pool only then.
	fsfault.Fill(t, ballast)
	syscall.Sync()
	time.Sleep(200 * time.Millisecond)
	fsfault.Fill(t, ballast)
	fi, err := os.Stat(ballast)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(ballast, max(0, fi.Size()-free)); err != nil {
		t.Fatal(err)
	}
	return fsfault.Free(t, filepath.Dir(ballast))
}

// StoreFiles lists the finished parts (<id>.part) and the unfinished writes
// (.tmp-*) of one table under <dataDir>/store, by file name.
func StoreFiles(t testing.TB, dataDir, table string) (parts, tmp []string) {
	t.Helper()
	err := filepath.WalkDir(filepath.Join(dataDir, "store"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() || filepath.Base(filepath.Dir(path)) != table {
			return nil
		}
		switch n := d.Name(); {
		case strings.HasPrefix(n, ".tmp-"):
			tmp = append(tmp, n)
		case strings.HasSuffix(n, ".part"):
			parts = append(parts, n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(parts)
	slices.Sort(tmp)
	return parts, tmp
}

// WaitLog waits up to d for the server's log, from byte offset from on, to
// hold a line containing every one of subs, and returns that line; it fails
// the test (quoting the log's end) if none comes.
func WaitLog(t testing.TB, s *Server, from int, d time.Duration, subs ...string) string {
	t.Helper()
	for deadline := time.Now().Add(d); ; time.Sleep(100 * time.Millisecond) {
		b, err := s.Log()
		if err != nil {
			t.Fatal(err)
		}
		if from <= len(b) {
			for line := range strings.Lines(string(b[from:])) {
				ok := true
				for _, sub := range subs {
					ok = ok && strings.Contains(line, sub)
				}
				if ok {
					return strings.TrimSpace(line)
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no server log line with %q within %v; log tail:\n%s", subs, d, s.logTail(3000))
		}
	}
}

// LogLen returns the current length of the server's log, an offset for
// WaitLog.
func LogLen(t testing.TB, s *Server) int {
	t.Helper()
	b, err := s.Log()
	if err != nil {
		t.Fatal(err)
	}
	return len(b)
}
