package crypt

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// PlatformKey is the key-encryption key generated at first start and kept in
// a 0600 file. It wraps workspace keys (KeyProvider) and seals small secrets
// stored in the catalog (Seal, Open). Safe for concurrent use.
type PlatformKey struct {
	key  *Key
	path string
}

var _ KeyProvider = (*PlatformKey)(nil)

const platformKeyIDContext = "custos platform key id v1\x00"

// OpenPlatformKey loads the 256-bit platform key from path, creating the file
// with fresh random bytes and mode 0600 when it does not exist. It refuses a
// file that is not a regular file, that group or others may access
// (ErrUnsafeKeyFile), or that does not hold exactly KeySize bytes.
func OpenPlatformKey(path string) (*PlatformKey, error) {
	raw, err := readKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		raw, err = createKeyFile(path)
		if errors.Is(err, fs.ErrExist) { // lost a creation race: read the winner's key
			raw, err = readKeyFile(path)
		}
	}
	if err != nil {
		return nil, err
	}
	defer Wipe(raw)
	sum := sha256.Sum256(append([]byte(platformKeyIDContext), raw...))
	k, err := NewKey("platform-"+hex.EncodeToString(sum[:8]), raw)
	if err != nil {
		return nil, fmt.Errorf("open platform key %s: %w", path, err)
	}
	return &PlatformKey{key: k, path: path}, nil
}

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open platform key %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("open platform key %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("open platform key %s: %w: not a regular file", path, ErrUnsafeKeyFile)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("open platform key %s: %w: mode %04o, want 0600", path, ErrUnsafeKeyFile, perm)
	}
	if st.Size() != KeySize {
		return nil, fmt.Errorf("open platform key %s: file is %d bytes, want %d", path, st.Size(), KeySize)
	}
	raw := make([]byte, KeySize)
	if _, err := io.ReadFull(f, raw); err != nil {
		return nil, fmt.Errorf("open platform key %s: %w", path, err)
	}
	return raw, nil
}

// createKeyFile writes a new key to a temporary file, fsyncs it and links it
// into place, so a crash never leaves a short key file under path.
func createKeyFile(path string) ([]byte, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create platform key %s: %w", path, err)
	}
	raw := make([]byte, KeySize)
	if _, err := io.ReadFull(rand.Reader, raw); err != nil {
		return nil, fmt.Errorf("create platform key %s: read random: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, ".platform-key-*")
	if err != nil {
		Wipe(raw)
		return nil, fmt.Errorf("create platform key %s: %w", path, err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.Write(raw)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmpName, path) // fails with ErrExist if another process won
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		Wipe(raw)
		return nil, fmt.Errorf("create platform key %s: %w", path, err)
	}
	return raw, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// KeyID implements KeyProvider. It is derived from the key by a one-way hash.
func (p *PlatformKey) KeyID() string { return p.key.id }

// WrapKey implements KeyProvider.
func (p *PlatformKey) WrapKey(ctx context.Context, key, aad []byte) ([]byte, error) {
	return p.key.WrapKey(ctx, key, aad)
}

// UnwrapKey implements KeyProvider.
func (p *PlatformKey) UnwrapKey(ctx context.Context, wrapped, aad []byte) ([]byte, error) {
	return p.key.UnwrapKey(ctx, wrapped, aad)
}

// Seal encrypts a small secret (a client secret, a signing key) for storage in
// the catalog, bound to aad (for example the record's ID and field name).
func (p *PlatformKey) Seal(plaintext, aad []byte) ([]byte, error) {
	out, err := p.key.Seal(nil, plaintext, aad)
	if err != nil {
		return nil, fmt.Errorf("platform key: %w", err)
	}
	return out, nil
}

// Open decrypts what Seal produced with the same aad.
func (p *PlatformKey) Open(ciphertext, aad []byte) ([]byte, error) {
	out, err := p.key.Open(nil, ciphertext, aad)
	if err != nil {
		return nil, fmt.Errorf("platform key: %w", err)
	}
	return out, nil
}

// Path returns the key file's path.
func (p *PlatformKey) Path() string { return p.path }

// String never reveals key material.
func (p *PlatformKey) String() string { return "crypt.PlatformKey(" + p.key.id + ")" }

// Destroy wipes the key from memory (best effort).
func (p *PlatformKey) Destroy() { p.key.Destroy() }
