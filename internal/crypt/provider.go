package crypt

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Rewrapper is implemented by key providers that can re-wrap a wrapped key
// under their current key version without revealing it to the caller (Vault
// Transit's rewrap). Callers fall back to UnwrapKey then WrapKey.
type Rewrapper interface {
	RewrapKey(ctx context.Context, wrapped, aad []byte) ([]byte, error)
}

// Rewrap re-wraps wrapped (made by p under aad) under p's current key version.
func Rewrap(ctx context.Context, p KeyProvider, wrapped, aad []byte) ([]byte, error) {
	if p == nil {
		return nil, ErrSealed
	}
	if r, ok := p.(Rewrapper); ok {
		return r.RewrapKey(ctx, wrapped, aad)
	}
	raw, err := p.UnwrapKey(ctx, wrapped, aad)
	if err != nil {
		return nil, err
	}
	defer Wipe(raw)
	return p.WrapKey(ctx, raw, aad)
}

// aadDigestSize is the size of the AAD digest that remote providers append
// to the key before sending it to a KMS whose API has no associated data.
const aadDigestSize = sha256.Size

// bindAAD returns key || SHA-256("custos-kek-aad\x00" || aad). A KMS that only
// encrypts (Transit without associated data, RSA-OAEP in Key Vault, a
// PKCS#11 mechanism) then still binds the wrapped key to its use: the digest
// is inside the authenticated ciphertext and checked by unbindAAD.
func bindAAD(key, aad []byte) []byte {
	h := sha256.New()
	h.Write([]byte("custos-kek-aad\x00"))
	h.Write(aad)
	return h.Sum(append(make([]byte, 0, len(key)+aadDigestSize), key...))
}

// unbindAAD checks and strips the digest that bindAAD appended.
func unbindAAD(plain, aad []byte) ([]byte, error) {
	if len(plain) != KeySize+aadDigestSize {
		Wipe(plain)
		return nil, fmt.Errorf("%w: unwrapped %d bytes, want %d", ErrMalformed, len(plain), KeySize+aadDigestSize)
	}
	want := bindAAD(plain[:KeySize], aad)
	defer Wipe(want)
	if subtle.ConstantTimeCompare(want[KeySize:], plain[KeySize:]) != 1 {
		Wipe(plain)
		return nil, fmt.Errorf("unwrap key: %w: wrapped for another use", ErrAuth)
	}
	return plain[:KeySize], nil
}

// FileKey is a customer-style key-encryption key kept in a 0600 file outside
// the data directory (on a removable volume, a mounted secret, a file an
// operator controls). Unlike PlatformKey it reads the file on every wrap and
// unwrap, so removing the file, or taking away its owner's read bit
// (chmod 000: "disabled"), revokes the key at once, and restoring it
// restores access. Safe for concurrent use.
type FileKey struct {
	path string
	id   string
}

var _ KeyProvider = (*FileKey)(nil)

const fileKeyIDContext = "custos file key id v1\x00"

// CreateFileKey writes a new random 256-bit key to path (which must not
// exist), mode 0600, and opens it.
func CreateFileKey(path string) (*FileKey, error) {
	raw, err := createKeyFile(path)
	if err != nil {
		return nil, err
	}
	defer Wipe(raw)
	return &FileKey{path: path, id: fileKeyID(raw)}, nil
}

// OpenFileKey opens an existing key file. Its ID is derived from the key
// material, so a file replaced by another key is detected.
func OpenFileKey(path string) (*FileKey, error) {
	raw, err := readFileKey(path)
	if err != nil {
		return nil, err
	}
	defer Wipe(raw)
	return &FileKey{path: path, id: fileKeyID(raw)}, nil
}

func fileKeyID(raw []byte) string {
	sum := sha256.Sum256(append([]byte(fileKeyIDContext), raw...))
	return "file-" + hex.EncodeToString(sum[:8])
}

func readFileKey(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		return nil, fmt.Errorf("file key %s: %w: %w", path, ErrKeyUnavailable, err)
	}
	if err != nil {
		return nil, fmt.Errorf("file key %s: %w: %w", path, ErrKeyUnavailable, err)
	}
	if st.Mode().IsRegular() && st.Mode().Perm()&0o400 == 0 {
		return nil, fmt.Errorf("file key %s: %w: disabled (mode %04o)", path, ErrKeyUnavailable, st.Mode().Perm())
	}
	raw, err := readKeyFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
			return nil, fmt.Errorf("file key: %w: %w", ErrKeyUnavailable, err)
		}
		return nil, fmt.Errorf("file key: %w", err)
	}
	return raw, nil
}

// load reads the key and checks that it is still the key this FileKey was
// opened with.
func (f *FileKey) load() (*Key, error) {
	raw, err := readFileKey(f.path)
	if err != nil {
		return nil, err
	}
	defer Wipe(raw)
	if fileKeyID(raw) != f.id {
		return nil, fmt.Errorf("file key %s: %w: the file now holds another key", f.path, ErrKeyUnavailable)
	}
	return NewKey(f.id, raw)
}

// KeyID implements KeyProvider.
func (f *FileKey) KeyID() string { return f.id }

// Path returns the key file's path.
func (f *FileKey) Path() string { return f.path }

// String never reveals key material.
func (f *FileKey) String() string { return "crypt.FileKey(" + f.id + ")" }

// WrapKey implements KeyProvider.
func (f *FileKey) WrapKey(ctx context.Context, key, aad []byte) ([]byte, error) {
	k, err := f.load()
	if err != nil {
		return nil, err
	}
	defer k.Destroy()
	return k.WrapKey(ctx, key, aad)
}

// UnwrapKey implements KeyProvider.
func (f *FileKey) UnwrapKey(ctx context.Context, wrapped, aad []byte) ([]byte, error) {
	k, err := f.load()
	if err != nil {
		return nil, err
	}
	defer k.Destroy()
	return k.UnwrapKey(ctx, wrapped, aad)
}
