package store

import (
	"errors"
	"fmt"
)

// Errors returned by the store. Classify them with errors.Is.
var (
	// ErrTableNotFound is returned by Appender, Querier and DropTable for a
	// table that EnsureTable has not created (or that was dropped).
	ErrTableNotFound = errors.New("store: table not found")
	// ErrInvalidName is returned for a workspace ID, table or column name
	// that the store cannot accept.
	ErrInvalidName = errors.New("store: invalid name")
	// ErrSchema is returned when a batch or a schema does not fit the table:
	// an unknown column, a type mismatch, a changed column type.
	ErrSchema = errors.New("store: schema mismatch")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("store: closed")
	// ErrAppenderDone is returned when an Appender is used after Commit or Rollback.
	ErrAppenderDone = errors.New("store: appender already committed or rolled back")
	// ErrKeyUnavailable is wrapped by every *KeyUnavailableError: the
	// workspace's customer-managed key refuses (disabled, access removed,
	// KMS unreachable). Retryable; nothing was written.
	ErrKeyUnavailable = errors.New("store: workspace key unavailable")
	// ErrCorrupt is wrapped by every *CorruptionError.
	ErrCorrupt = errors.New("store: data corrupt or tampered with")
)

// CorruptionError reports a block, footer or WAL record that failed its
// integrity check (GCM authentication, checksum, or a bad length). The query or
// open that met it fails; the store never returns rows it cannot verify. It
// wraps ErrCorrupt and the underlying cause.
type CorruptionError struct {
	Path   string // the part or WAL segment file
	Part   string // part ID, if a part
	Block  int    // block index, or -1
	Column string // column, if a column block
	Err    error
}

func (e *CorruptionError) Error() string {
	where := e.Path
	if e.Part != "" {
		where = "part " + e.Part + " (" + e.Path + ")"
	}
	if e.Block >= 0 {
		where += fmt.Sprintf(" block %d", e.Block)
	}
	if e.Column != "" {
		where += " column " + e.Column
	}
	return "store: corrupt data in " + where + ": " + e.Err.Error()
}

// Unwrap returns ErrCorrupt and the cause.
func (e *CorruptionError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }
