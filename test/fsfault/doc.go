// Package fsfault gives fault tests small, real filesystems that run out of
// space: a tmpfs of a few megabytes, an ext4 image on a loop device, and a
// thin-provisioned XFS volume (a loop device over a sparse image on a small
// tmpfs, so that writes succeed and fsync fails with ENOSPC when the pool is
// full), plus Fill, which writes a ballast file until the filesystem
// refuses. Every helper unmounts at the test's cleanup.
//
// They need root (mount, loop devices) and, for the block filesystems,
// mkfs.ext4 (e2fsprogs) and mkfs.xfs (xfsprogs); test/install-fstools.sh
// installs them. Without them a helper fails the test saying what is
// missing — it never skips. The e2e disk-full tests and the store's
// background-flush test use this package; it imports only the standard
// library.
package fsfault
