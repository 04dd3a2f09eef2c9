package identity

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Password hashing: argon2id (RFC 9106) with the parameters of RFC 9106's
// second recommended option (64 MiB, 3 passes, 4 lanes), stored as a PHC
// string: $argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash> (base64 without
// padding). Verification recomputes with the stored parameters and compares
// in constant time.

// Argon2Params are the argon2id cost parameters.
type Argon2Params struct {
	MemoryKiB uint32
	Time      uint32
	Threads   uint8
}

// DefaultArgon2 are the parameters new password hashes use.
var DefaultArgon2 = Argon2Params{MemoryKiB: 64 * 1024, Time: 3, Threads: 4}

// Password rules.
const (
	MinPasswordLength = 12
	MaxPasswordLength = 256
)

// Bounds on stored parameters, so that a tampered hash cannot make
// verification allocate or spin without limit.
const (
	maxArgonMemoryKiB = 1 << 20 // 1 GiB
	maxArgonTime      = 16
	maxArgonThreads   = 16
)

// ErrWeakPassword is returned by HashPassword for a password that breaks
// the password rules.
var ErrWeakPassword = errors.New("identity: password does not meet the rules")

// CheckPasswordRules reports whether pw is acceptable: 12 to 256
// characters of valid UTF-8 with no control characters.
func CheckPasswordRules(pw string) error {
	n := utf8.RuneCountInString(pw)
	if !utf8.ValidString(pw) || n < MinPasswordLength || len(pw) > MaxPasswordLength {
		return fmt.Errorf("%w: use %d to %d characters", ErrWeakPassword, MinPasswordLength, MaxPasswordLength)
	}
	for _, r := range pw {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: control characters are not allowed", ErrWeakPassword)
		}
	}
	return nil
}

// HashPassword checks the password rules and returns the argon2id PHC
// string of pw with a random 16-byte salt from rand.
func HashPassword(rand io.Reader, pw string, p Argon2Params) (string, error) {
	if err := CheckPasswordRules(pw); err != nil {
		return "", err
	}
	salt := make([]byte, 16)
	if _, err := io.ReadFull(rand, salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	h := argon2.IDKey([]byte(pw), salt, p.Time, p.MemoryKiB, p.Threads, 32)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.Time, p.Threads,
		enc.EncodeToString(salt), enc.EncodeToString(h)), nil
}

// parsePHC decodes an argon2id PHC string.
func parsePHC(s string) (Argon2Params, []byte, []byte, error) {
	var p Argon2Params
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, errors.New("not an argon2id v19 hash")
	}
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || err != nil {
			return p, nil, nil, errors.New("bad argon2id parameters")
		}
		switch k {
		case "m":
			p.MemoryKiB = uint32(n)
		case "t":
			p.Time = uint32(n)
		case "p":
			if n > 255 {
				return p, nil, nil, errors.New("bad argon2id parallelism")
			}
			p.Threads = uint8(n)
		default:
			return p, nil, nil, errors.New("unknown argon2id parameter")
		}
	}
	if p.MemoryKiB < 8 || p.MemoryKiB > maxArgonMemoryKiB || p.Time < 1 || p.Time > maxArgonTime || p.Threads < 1 || p.Threads > maxArgonThreads {
		return p, nil, nil, errors.New("argon2id parameters out of bounds")
	}
	enc := base64.RawStdEncoding
	salt, err := enc.DecodeString(parts[4])
	if err != nil || len(salt) < 8 || len(salt) > 64 {
		return p, nil, nil, errors.New("bad argon2id salt")
	}
	hash, err := enc.DecodeString(parts[5])
	if err != nil || len(hash) < 16 || len(hash) > 64 {
		return p, nil, nil, errors.New("bad argon2id hash")
	}
	return p, salt, hash, nil
}

// VerifyPassword reports whether pw matches the PHC string phc, comparing
// in constant time. A malformed phc never matches.
func VerifyPassword(phc, pw string) bool {
	p, salt, want, err := parsePHC(phc)
	if err != nil || len(pw) > MaxPasswordLength {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.MemoryKiB, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}
