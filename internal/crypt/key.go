package crypt

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
)

// KeySize is the size in bytes of every key in the hierarchy (AES-256).
const KeySize = 32

// Envelope format constants.
const (
	// Version is the current envelope format version (the first byte).
	Version = 1
	// NonceSize is the GCM nonce size.
	NonceSize = 12
	// TagSize is the GCM authentication tag size.
	TagSize = 16
	// MaxKeyIDLen bounds key IDs so their length fits in one byte.
	MaxKeyIDLen = 255
)

// Errors returned by this package. Callers classify them with errors.Is.
var (
	// ErrSealed is returned when no key provider is configured: without keys
	// nothing is read or written.
	ErrSealed = errors.New("crypt: sealed: no key provider")
	// ErrMalformed is returned when a ciphertext or wrapped key is not a
	// well-formed envelope (truncated, wrong version, bad lengths).
	ErrMalformed = errors.New("crypt: malformed ciphertext")
	// ErrAuth is returned when GCM authentication fails: the ciphertext, its
	// AAD or its key ID was changed, or the wrong key was used.
	ErrAuth = errors.New("crypt: message authentication failed")
	// ErrKeyMismatch is returned when a ciphertext names a key ID other than
	// the key asked to open it.
	ErrKeyMismatch = errors.New("crypt: ciphertext is for another key")
	// ErrUnsafeKeyFile is returned when a key file is readable or writable by
	// anyone but its owner, or is not a regular file.
	ErrUnsafeKeyFile = errors.New("crypt: unsafe key file")
	// ErrKeyUnavailable is wrapped by a KeyProvider's errors when the
	// key-encryption key cannot be used right now: it is disabled or deleted,
	// access to it was removed, or the KMS cannot be reached. It is
	// retryable: restoring the key or the access restores service.
	ErrKeyUnavailable = errors.New("crypt: key-encryption key unavailable")
)

// KeyProvider wraps and unwraps data keys under a key-encryption key it never
// reveals. The platform key implements it, and so do the customer-managed key
// providers: FileKey, Transit (HashiCorp Vault / OpenBao), AzureKeyVault and,
// behind the pkcs11 build tag, PKCS11. aad binds the wrapped key to its use
// (for example "workspace key of workspace X"); the same aad must be given to
// UnwrapKey. A wrapped key records the KEK version it was wrapped with, so
// UnwrapKey works across rotations. Errors that mean "the key cannot be used
// now" (disabled, access removed, KMS unreachable) wrap ErrKeyUnavailable.
// Implementations must be safe for concurrent use.
type KeyProvider interface {
	// KeyID identifies the key-encryption key currently used for wrapping.
	KeyID() string
	WrapKey(ctx context.Context, key, aad []byte) ([]byte, error)
	UnwrapKey(ctx context.Context, wrapped, aad []byte) ([]byte, error)
}

// Key is one AES-256-GCM key with an ID. It seals and opens envelopes and, as
// a KeyProvider, wraps the keys below it in the hierarchy (a workspace key
// wraps part keys). Safe for concurrent use; after Destroy it must not be used.
type Key struct {
	id   string
	raw  []byte
	aead cipher.AEAD
}

var _ KeyProvider = (*Key)(nil)

// GenerateKey returns a new random key with the given ID, read from crypto/rand.
func GenerateKey(id string) (*Key, error) {
	return generateKey(rand.Reader, id)
}

func generateKey(r io.Reader, id string) (*Key, error) {
	raw := make([]byte, KeySize)
	if _, err := io.ReadFull(r, raw); err != nil {
		return nil, fmt.Errorf("generate key: read random: %w", err)
	}
	k, err := NewKey(id, raw)
	Wipe(raw)
	return k, err
}

// NewKey returns a key with the given ID and raw bytes. raw is copied; the
// caller should Wipe its own copy.
func NewKey(id string, raw []byte) (*Key, error) {
	if len(id) == 0 || len(id) > MaxKeyIDLen {
		return nil, fmt.Errorf("new key: key ID length %d not in 1..%d", len(id), MaxKeyIDLen)
	}
	if len(raw) != KeySize {
		return nil, fmt.Errorf("new key: key is %d bytes, want %d", len(raw), KeySize)
	}
	k := &Key{id: id, raw: append([]byte(nil), raw...)}
	block, err := aes.NewCipher(k.raw)
	if err != nil {
		return nil, fmt.Errorf("new key: %w", err)
	}
	if k.aead, err = cipher.NewGCM(block); err != nil {
		return nil, fmt.Errorf("new key: %w", err)
	}
	return k, nil
}

// ID returns the key's ID, which every envelope sealed by it carries.
func (k *Key) ID() string { return k.id }

// KeyID implements KeyProvider.
func (k *Key) KeyID() string { return k.id }

// String never reveals key material.
func (k *Key) String() string { return "crypt.Key(" + k.id + ")" }

// Destroy wipes the key material (best effort: the AES key schedule inside the
// cipher cannot be reached). The key must not be used afterwards.
func (k *Key) Destroy() {
	if k != nil {
		Wipe(k.raw)
	}
}

// Overhead is the number of bytes Seal adds to a plaintext.
func (k *Key) Overhead() int { return 2 + len(k.id) + NonceSize + TagSize }

// Seal encrypts plaintext with a random nonce, binding it to aad, and appends
// the envelope to dst.
func (k *Key) Seal(dst, plaintext, aad []byte) ([]byte, error) {
	start := len(dst)
	dst = append(dst, Version, byte(len(k.id)))
	dst = append(dst, k.id...)
	hdrEnd := len(dst)
	dst = append(dst, make([]byte, NonceSize)...)
	nonce := dst[hdrEnd:]
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return dst[:start], fmt.Errorf("seal: read nonce: %w", err)
	}
	fullAAD := make([]byte, 0, hdrEnd-start+len(aad))
	fullAAD = append(append(fullAAD, dst[start:hdrEnd]...), aad...)
	return k.aead.Seal(dst, nonce, plaintext, fullAAD), nil
}

// Open authenticates and decrypts an envelope sealed by this key with the same
// aad, appending the plaintext to dst. It returns ErrMalformed, ErrKeyMismatch
// or ErrAuth (wrapped) when the envelope cannot be opened.
func (k *Key) Open(dst, ciphertext, aad []byte) ([]byte, error) {
	h, err := ParseEnvelope(ciphertext)
	if err != nil {
		return dst, err
	}
	if h.KeyID != k.id {
		return dst, fmt.Errorf("open: %w: envelope key %q, have %q", ErrKeyMismatch, h.KeyID, k.id)
	}
	fullAAD := make([]byte, 0, h.HeaderLen+len(aad))
	fullAAD = append(append(fullAAD, ciphertext[:h.HeaderLen]...), aad...)
	nonce := ciphertext[h.HeaderLen : h.HeaderLen+NonceSize]
	out, err := k.aead.Open(dst, nonce, ciphertext[h.HeaderLen+NonceSize:], fullAAD)
	if err != nil {
		return dst, fmt.Errorf("open: %w", ErrAuth)
	}
	return out, nil
}

// WrapKey implements KeyProvider: it seals a child key under k.
func (k *Key) WrapKey(_ context.Context, key, aad []byte) ([]byte, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("wrap key: key is %d bytes, want %d", len(key), KeySize)
	}
	return k.Seal(nil, key, aad)
}

// UnwrapKey implements KeyProvider.
func (k *Key) UnwrapKey(_ context.Context, wrapped, aad []byte) ([]byte, error) {
	raw, err := k.Open(nil, wrapped, aad)
	if err != nil {
		return nil, fmt.Errorf("unwrap key: %w", err)
	}
	if len(raw) != KeySize {
		Wipe(raw)
		return nil, fmt.Errorf("unwrap key: %w: key is %d bytes", ErrMalformed, len(raw))
	}
	return raw, nil
}

// Envelope describes the header of a sealed envelope.
type Envelope struct {
	Version   byte
	KeyID     string
	HeaderLen int // bytes before the nonce
}

// ParseEnvelope validates the framing of an envelope without decrypting it.
// It never panics; any truncation or bad length yields ErrMalformed.
func ParseEnvelope(b []byte) (Envelope, error) {
	if len(b) < 2 {
		return Envelope{}, fmt.Errorf("%w: %d bytes", ErrMalformed, len(b))
	}
	if b[0] != Version {
		return Envelope{}, fmt.Errorf("%w: unknown version %d", ErrMalformed, b[0])
	}
	idLen := int(b[1])
	if idLen == 0 {
		return Envelope{}, fmt.Errorf("%w: empty key ID", ErrMalformed)
	}
	hdr := 2 + idLen
	if len(b) < hdr+NonceSize+TagSize {
		return Envelope{}, fmt.Errorf("%w: %d bytes, need at least %d", ErrMalformed, len(b), hdr+NonceSize+TagSize)
	}
	return Envelope{Version: b[0], KeyID: string(b[2:hdr]), HeaderLen: hdr}, nil
}

// WrapNewKey generates a key with the given ID and wraps it with p under aad.
// It returns the key and its wrapped form, which the caller stores next to the
// data the key protects.
func WrapNewKey(ctx context.Context, p KeyProvider, id string, aad []byte) (*Key, []byte, error) {
	if p == nil {
		return nil, nil, ErrSealed
	}
	k, err := GenerateKey(id)
	if err != nil {
		return nil, nil, err
	}
	wrapped, err := p.WrapKey(ctx, k.raw, aad)
	if err != nil {
		k.Destroy()
		return nil, nil, fmt.Errorf("wrap new key %s: %w", id, err)
	}
	return k, wrapped, nil
}

// UnwrapKey unwraps a key that WrapNewKey wrapped with p under aad and gives
// it the ID id.
func UnwrapKey(ctx context.Context, p KeyProvider, id string, wrapped, aad []byte) (*Key, error) {
	if p == nil {
		return nil, ErrSealed
	}
	raw, err := p.UnwrapKey(ctx, wrapped, aad)
	if err != nil {
		return nil, fmt.Errorf("unwrap key %s: %w", id, err)
	}
	defer Wipe(raw)
	return NewKey(id, raw)
}

// Wipe overwrites b with zeros (best effort; the runtime may hold copies).
func Wipe(b []byte) {
	clear(b)
}

// WrapWith wraps this key's material with p under aad, without revealing it
// to the caller: a workspace key is moved under a customer-managed key this
// way (linking, rotation) while the data it protects stays as it is.
func (k *Key) WrapWith(ctx context.Context, p KeyProvider, aad []byte) ([]byte, error) {
	if p == nil {
		return nil, ErrSealed
	}
	w, err := p.WrapKey(ctx, k.raw, aad)
	if err != nil {
		return nil, fmt.Errorf("wrap key %s: %w", k.id, err)
	}
	return w, nil
}

// SameMaterialAs reports, in constant time, whether k and o hold the same
// key material (their IDs may differ).
func (k *Key) SameMaterialAs(o *Key) bool {
	return k != nil && o != nil && subtle.ConstantTimeCompare(k.raw, o.raw) == 1
}
