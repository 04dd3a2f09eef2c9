// Package queue is custos-agent's bounded on-disk FIFO: collected batches wait
// here, fsynced, until the Logs Ingestion API acknowledges them.
//
// Layout of a queue directory:
//
//	<20-digit id>.seg   segment files, appended in id order
//	cursor              JSON {"segment","offset","dropped","droppedBytes"}: the
//	                    first unacknowledged entry, replaced atomically
//
// A segment is a sequence of entries, each
//
//	uint32 little-endian payload length | uint32 CRC-32C of the payload | payload
//
// Append returns only after the entry is fsynced, so an entry whose Append
// returned survives SIGKILL and power loss. A torn entry at the end of the last
// segment (a crash during Append) is cut off at Open. The consumer reads with
// Next, which returns the same entry until Ack; Ack persists the cursor, so
// delivery is at-least-once across restarts. When the total size would pass
// MaxBytes, whole segments are dropped from the head (oldest first), and the
// entries lost are counted in Stats.
//
// Damage is skipped, never a reason to stop delivering: Open verifies every
// entry of the last segment and cuts it at the first bad one, and checks
// only the headers of the others; an entry found damaged when it is read (a
// checksum mismatch or a length out of range) gives up the rest of its
// segment, counted as dropped and logged at ERROR, and reading goes on with
// the next segment (a new one if the damage is in the last). A length over
// MaxEntryBytes is damage, so a corrupt header never causes a large
// allocation. FuzzSegments checks all of this on arbitrary segment files.
//
// The package imports only the standard library.
package queue
