package crypt

import (
	"crypto/subtle"
	"fmt"
	"io"
	"log/slog"
)

const redacted = "REDACTED"

// Secret holds secret bytes (a client secret, a private key). It never
// reveals them when logged or formatted: String, GoString, every fmt verb,
// LogValue and MarshalJSON all produce "REDACTED". Use Bytes to get the value.
type Secret []byte

// Bytes returns the secret value.
func (s Secret) Bytes() []byte { return []byte(s) }

// String implements fmt.Stringer.
func (s Secret) String() string { return redacted }

// GoString implements fmt.GoStringer.
func (s Secret) GoString() string { return redacted }

// Format implements fmt.Formatter so that %x, %q and %v are redacted too.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON keeps secrets out of JSON output.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// Equal compares two secrets in constant time (for equal lengths).
func (s Secret) Equal(o Secret) bool { return subtle.ConstantTimeCompare(s, o) == 1 }

// Wipe overwrites the secret with zeros (best effort).
func (s Secret) Wipe() { clear(s) }
