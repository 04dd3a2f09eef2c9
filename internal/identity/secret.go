package identity

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
	"time"
)

// Client secrets.
//
// A secret is 32 bytes from crypto/rand (256 bits), written in an Azure-like
// text form: the first three characters of the base64url text, "8Q~", then
// the rest (46 characters). Only a hash is stored:
//
//	Hash = 0x01 || SHA-256("custos client secret v1" || 0x00 || secret)
//
// A fast unsalted hash is sound here, unlike for passwords: the secret has
// 256 bits of entropy, so neither a dictionary nor a brute-force search over
// the input space is possible, and a salt (which defends against precomputed
// tables over low-entropy inputs) adds nothing. SHA-256's preimage resistance
// is all that protects a leaked hash, and it suffices. The leading byte
// versions the construction; the prefix separates the domain from any other
// SHA-256 use. Verification compares hashes with crypto/subtle.

const secretHashVersion = 1

const secretHashContext = "custos client secret v1\x00"

const secretRandomBytes = 32

// generateSecret returns a new client secret in text form.
func generateSecret(r io.Reader) (string, error) {
	var raw [secretRandomBytes]byte
	if _, err := fullRead(r, raw[:]); err != nil {
		return "", fmt.Errorf("generate client secret: %w", err)
	}
	s := base64.RawURLEncoding.EncodeToString(raw[:])
	clear(raw[:])
	return s[:3] + "8Q~" + s[3:], nil
}

// hashSecret returns the stored hash of a client secret.
func hashSecret(secret string) []byte {
	h := sha256.New()
	h.Write([]byte(secretHashContext))
	h.Write([]byte(secret))
	return h.Sum([]byte{secretHashVersion})
}

// secretMatch is the outcome of checking a presented secret.
type secretMatch int

const (
	secretNoMatch secretMatch = iota
	secretValid
	secretExpired
)

// checkSecret compares secret with every stored secret of the principal in
// constant time per comparison, without stopping at the first match.
func checkSecret(secrets []ClientSecret, secret string, now time.Time) secretMatch {
	h := hashSecret(secret)
	valid, expired := 0, 0
	for _, cs := range secrets {
		eq := subtle.ConstantTimeCompare(h, cs.Hash)
		if cs.Expires.IsZero() || now.Before(cs.Expires) {
			valid |= eq
		} else {
			expired |= eq
		}
	}
	switch {
	case valid == 1:
		return secretValid
	case expired == 1:
		return secretExpired
	}
	return secretNoMatch
}

// fullRead fills b from r.
func fullRead(r io.Reader, b []byte) (int, error) {
	return io.ReadFull(r, b)
}

// newGUID returns a random (version 4) GUID in lower-case text form.
func newGUID(r io.Reader) (string, error) {
	var b [16]byte
	if _, err := fullRead(r, b[:]); err != nil {
		return "", fmt.Errorf("generate GUID: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	const hexd = "0123456789abcdef"
	out := make([]byte, 0, 36)
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hexd[c>>4], hexd[c&0xf])
	}
	return string(out), nil
}

// isGUID reports whether s is a GUID in 8-4-4-4-12 hex form.
func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}
