package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"
)

// An fsync of the WAL that fails for lack of space (ENOSPC, EDQUOT: a real
// block device with delayed allocation, thin provisioning or a network
// filesystem reports it at fsync rather than at write) no longer stops the
// WAL until a restart. After a failed fsync the kernel may have dropped the
// unsynced pages, so the records written since the last good fsync cannot be
// trusted: they are cut off (the segment is truncated back to the last good
// fsync), every commit waiting for them fails (none was acknowledged), and
// the next append starts a new segment — sequence numbers are never reused,
// so a late waiter for a cut-off record can never be told it is durable. A
// retry by the client then writes the rows once. Other fsync errors (EIO)
// stay sticky.

func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

func (w *wal) syncFile(f *os.File) error {
	if w.fsync != nil {
		return w.fsync(f)
	}
	return f.Sync()
}

// cutOff returns an error if record seq was cut off by rollbackUnsynced.
func (w *wal) cutOff(seq uint64) error {
	if !w.failedAny.Load() {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range w.failed {
		if seq >= r[0] && seq < r[1] {
			return fmt.Errorf("fsync WAL: record %d was rolled back after a failed fsync: %w", seq, syscall.ENOSPC)
		}
	}
	return nil
}

// rollbackUnsynced truncates the active segment back to the last good fsync
// and marks the records after it as cut off. Callers hold w.mu and lead the group commit (wal.syncLeader).
func (w *wal) rollbackUnsynced(cause error) error {
	seg := w.cur
	lo := w.synced.Load() + 1 // first record not known durable
	hi := w.next
	if err := seg.f.Truncate(seg.syncedOff); err != nil {
		return err
	}
	if _, err := seg.f.Seek(seg.syncedOff, 0); err != nil {
		return err
	}
	if err := w.syncFile(seg.f); err != nil {
		return err
	}
	if lo < hi {
		w.failed = append(w.failed, [2]uint64{lo, hi})
		w.failedAny.Store(true)
	}
	seg.lastSeq = min(seg.lastSeq, lo-1)
	w.written = lo - 1
	seg.writtenOff = seg.syncedOff
	w.needSeg = true
	w.publish()
	if w.log != nil {
		w.log.Error("WAL fsync failed for lack of space; unsynced records rolled back and refused, ingestion continues when space returns",
			slog.String("workspace_id", w.wsID), slog.Uint64("first_seq", lo), slog.Uint64("next_seq", hi), slog.String("error", cause.Error()))
	}
	// Start the new segment now if space allows; otherwise append retries.
	if err := w.startSegmentLocked(); err != nil && w.log != nil {
		w.log.Warn("new WAL segment after a failed fsync: will retry on the next append", slog.String("error", err.Error()))
	}
	return nil
}

// startSegmentLocked replaces the active segment by a new one starting at
// w.next. Callers hold w.mu.
func (w *wal) startSegmentLocked() error {
	seg, err := w.createSegment(context.Background(), w.next)
	if err != nil {
		return err
	}
	old := w.cur
	old.f.Close()
	old.f = nil
	w.old = append(w.old, old)
	w.cur = seg
	w.written = w.next - 1
	w.needSeg = false
	w.publish()
	return nil
}
